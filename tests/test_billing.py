"""Billable-minute arithmetic (`domain.billing`) against values computed by hand."""
import pytest

from domain import billing
from domain.billing import LINUX, MACOS, UNKNOWN, WINDOWS

DEFAULTS = billing.parse_multipliers(billing.DEFAULT_MULTIPLIERS)


@pytest.mark.parametrize("seconds, minutes", [
    (None, 0), (float("nan"), 0), (-5, 0), (0, 0), (0.001, 1), (1, 1), (59.9, 1), (60, 1), (60.0001, 2), (61, 2),
    (119, 2), (120, 2), (121, 3), (3600, 60), (3601, 61),
])
def test_bl001_each_job_is_rounded_up_to_the_whole_minute(seconds, minutes):
    assert billing.minutes(seconds) == minutes


@pytest.mark.parametrize("labels, os, self_hosted", [
    (("ubuntu-latest",), LINUX, False), (("ubuntu-22.04",), LINUX, False), (("ubuntu-24.04-arm",), LINUX, False),
    (("windows-latest",), WINDOWS, False), (("windows-2022",), WINDOWS, False),
    (("macos-14",), MACOS, False), (("macos-latest-xlarge",), MACOS, False),
    (("self-hosted", "Linux", "X64"), LINUX, True), (("self-hosted", "macOS", "ARM64"), MACOS, True),
    (("Self-Hosted",), UNKNOWN, True),
    (("my-big-runner",), UNKNOWN, False), ((), UNKNOWN, False),
    (("ubuntu-latest", "windows-latest"), UNKNOWN, False),  # two OSes named: neither is believed
])
def test_bl002_runner_os_and_hosting_come_from_the_labels(labels, os, self_hosted):
    assert billing.runner_os(labels) == os
    assert billing.is_self_hosted(labels) is self_hosted


def test_bl003_billable_minutes_of_a_set_of_jobs_by_hand():
    jobs = [  # (labels, seconds): by hand, rounded per job, then × multiplier
        (("ubuntu-latest",), 61),        # 2 min × 1 = 2
        (("ubuntu-latest",), 59),        # 1 min × 1 = 1   (Linux: 3 min, 3 billable; not ceil(120/60) = 2)
        (("windows-latest",), 90),       # 2 min × 2 = 4
        (("windows-latest",), 600),      # 10 min × 2 = 20 (Windows: 12 min, 24 billable)
        (("macos-14",), 1),              # 1 min × 10 = 10
        (("macos-14",), 125),            # 3 min × 10 = 30 (macOS: 4 min, 40 billable)
        (("self-hosted", "Linux"), 3600),  # 60 min, self-hosted: not billed
        (("gpu-large",), 30),            # 1 min × 1 (unknown OS, hosted: the unknown multiplier, 1)
        (("ubuntu-latest",), None),      # never ran: 0
    ]
    charges = [billing.job_charge(labels, seconds, DEFAULTS) for labels, seconds in jobs]
    assert [c.minutes for c in charges] == [2, 1, 2, 10, 1, 3, 60, 1, 0]
    assert [c.billable for c in charges] == [2, 1, 4, 20, 10, 30, 0, 1, 0]
    hosted = [c for c in charges if not c.self_hosted]
    assert sum(c.billable for c in hosted) == 3 + 24 + 40 + 1 == 68
    assert sum(c.minutes for c in charges if c.self_hosted) == 60
    by_os = {os: sum(c.billable for c in hosted if c.os == os) for os in billing.OS_NAMES}
    assert by_os == {LINUX: 3, WINDOWS: 24, MACOS: 40, UNKNOWN: 1}


def test_bl004_a_group_of_jobs_is_charged_as_the_sum_of_its_jobs():
    # `charge` takes the sum of the per-job rounded minutes (what the query adds up in SQL).
    seconds = [61, 59, 1, 120]
    per_job = sum(billing.job_charge(("windows-latest",), s, DEFAULTS).billable for s in seconds)
    grouped = billing.charge(("windows-latest",), sum(map(billing.minutes, seconds)), len(seconds), DEFAULTS)
    assert per_job == grouped.billable == (2 + 1 + 1 + 2) * 2 == 12
    assert grouped.jobs == 4 and grouped.multiplier == 2


def test_bl005_multipliers_are_configurable():
    rates = billing.parse_multipliers("linux=1, Windows=1.5 ,macos=8,unknown=0")
    assert rates == {LINUX: 1.0, WINDOWS: 1.5, MACOS: 8.0, UNKNOWN: 0.0}
    assert billing.job_charge(("windows-latest",), 61, rates).billable == 3.0
    assert billing.job_charge(("gpu-large",), 61, rates).billable == 0.0  # unknown OS excluded when set to 0
    assert billing.parse_multipliers("") == billing.parse_multipliers(None) == DEFAULTS
    assert billing.parse_multipliers("macos=12") == {**DEFAULTS, MACOS: 12.0}
    assert DEFAULTS == {LINUX: 1.0, WINDOWS: 2.0, MACOS: 10.0, UNKNOWN: 1.0}


@pytest.mark.parametrize("text", ["linux", "linux=", "linux=-1", "linux=abc", "solaris=3", "linux=1e3",
                                  "linux=\u0663", "linux=inf", "linux=5000", "=2"])
def test_bl006_a_bad_multipliers_setting_says_what_is_wrong(text):
    with pytest.raises(ValueError, match="billing multipliers"):
        billing.parse_multipliers(text)


def test_bl007_label_sets_are_sorted_labels():
    assert billing.label_set(("self-hosted", "linux", "x64", "perf")) == "linux, perf, self-hosted, x64"
    assert billing.label_set(()) == billing.NO_LABELS
    assert billing.parse_labels('["b", "a"]') == ("b", "a")
    assert billing.parse_labels("not json") == billing.parse_labels('{"a": 1}') == billing.parse_labels(None) == ()
    assert billing.parse_labels('["a", 3, null]') == ("a",)
