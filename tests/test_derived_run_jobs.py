"""`store.derived.run_jobs`: a run's jobs as one string, and back."""
from store.derived.run_jobs import parse, signature


def test_signature_lists_every_job_and_parses_back():
    rows = [("build", 1, "success"), ("test (3.11)", 1, "failure"), ("test (3.11)", 2, "success"),
            ("lint: strict", 2, None), ("deploy", 1, "skipped")]
    back = parse(signature(rows))
    assert sorted(back) == sorted(rows)


def test_signature_is_the_same_in_any_order_and_short_for_first_attempt_passes():
    rows = [("b", 1, "success"), ("a", 1, "success"), ("c", 3, "cancelled")]
    assert signature(rows) == signature(list(reversed(rows)))
    assert signature([("a", 1, "success")]) == "a"  # nearly every job: its name alone
    assert signature([("a", 1, "failure")]) != signature([("a", 1, "success")])
