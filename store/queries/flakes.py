"""Flake statistics per job: how often a job fails and then passes, with a confidence bound.

A **job** here is a (repository, workflow, job base name): matrix legs such as
"test (ubuntu-latest, 3.11)" and "test (windows-latest, 3.12)" count as the
job "test" (`base_name`).  Over the runs `filters` selects (window on the
run's createtime), each run gives the job one **outcome**, from all the
attempts of that run:

- a *leg* (one exact job name) ends with the conclusion of its newest attempt
  in the run (GitHub's "re-run failed jobs" re-runs only some legs; the others
  keep the attempt they ran in); a leg **flaked** when it ended success and an
  earlier attempt of it failed (failure, timed_out or startup_failure);
- the job's outcome in the run is the first that applies: *pending* (a leg has
  not finished), **failed** (a leg ended failed), *cancelled* (a leg ended
  cancelled), *undecided* (a leg failed, then ended skipped or neutral),
  **flaky** (a leg flaked), **successful** (a leg ended success), *skipped*
  (every leg ended skipped or neutral).  Only failed, flaky and successful
  runs are counted;
- a failed run also counts as **flaky** when another selected run of the same
  workflow on the same commit ended the job successful or flaky (the job
  passed on another run of that commit, as the FLAKY verdict says); it stays
  counted as failed too.

Per job: `failed` = failed runs; `flaky` = flaky runs (of both kinds);
`successful` = successful runs; `runs` = flaky + successful, the sample: the
runs where the job ended up passing (metrics.md: flake rate = flaky ÷ (flaky +
successful)); `rate` = flaky ÷ runs; `wilson_low`, `wilson_high` = the Wilson
score interval of flaky out of runs at `confidence`; `quarantine` = runs ≥
`min_runs` and wilson_low > `threshold` (the lower bound exceeds it).

Cost: one read of the window's runs (through their createtime index), each
with its jobs as one string (`rollup_run_jobs`, kept by `store.derived`);
Python evaluates each distinct string once (a workflow's runs share a few
hundred at most), so its work grows with runs, not jobs.  The read is linear
in the window's runs: fine for days to weeks, slow for all of a large history
(figures in BENCHMARKS.md).
"""
from __future__ import annotations

import math
from collections import Counter
from statistics import NormalDist

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from domain.state import FAILED
from failures.extract import base_name  # matrix legs group as the fingerprints' job scope does
from store.derived import run_jobs
from store.queries.filters import Filters
from store.schema import rollup_run_jobs, workflowruns, workflows

MIN_RUNS = 20
THRESHOLD = 0.05
CONFIDENCE = 0.95
LIMIT = 500

w = workflowruns.c
rj = rollup_run_jobs.c

# Outcomes of a job in a run; only these three are counted.
FAILED_OUTCOME, FLAKY, SUCCESSFUL = "failed", "flaky", "successful"
# First that applies wins, over the job's legs in one run.
_PRECEDENCE = ("pending", FAILED_OUTCOME, "cancelled", "undecided", FLAKY, SUCCESSFUL, "skipped")
_RANK = {name: i for i, name in enumerate(_PRECEDENCE)}


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of the proportion k/n at `confidence` (two-sided); (0.0, 1.0) when n is 0."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k!r}, n={n!r}")
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    # At k = 0 or k = n the bound is exactly 0 or 1; rounding must not make it 1e-17 or 0.9999999.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return (low, high)


def _leg_outcome(attempts: list[tuple[int, str | None]]) -> str:
    """One leg's outcome over its (attempt, conclusion) rows in one run."""
    last = max(a for a, _ in attempts)
    finals = {c for a, c in attempts if a == last}
    failed_before = any(c in FAILED for a, c in attempts if a < last)
    if None in finals:  # not finished (a conclusion is set when the job completes)
        return "pending"
    if finals & set(FAILED):
        return FAILED_OUTCOME
    if "cancelled" in finals:
        return "cancelled"
    if "success" in finals:
        return FLAKY if failed_before else SUCCESSFUL
    return "undecided" if failed_before else "skipped"


def job_outcomes(rows) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{base name: (outcome, its legs' names sorted)} of one run from its jobs' (name, attempt, conclusion) rows.

    Pure: the definitions of the module docstring.
    """
    legs: dict[str, list] = {}
    for name, attempt, conclusion in rows:
        legs.setdefault(name, []).append((int(attempt), conclusion or None))
    by_base: dict[str, list] = {}
    for name, attempts in legs.items():
        by_base.setdefault(base_name(name), []).append((name, _leg_outcome(attempts)))
    return {base: (min((o for _, o in named), key=_RANK.__getitem__), tuple(sorted(n for n, _ in named)))
            for base, named in by_base.items()}


def _parse(signature: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """`job_outcomes` of the run whose jobs `signature` (`store.derived.run_jobs`) lists."""
    return job_outcomes(run_jobs.parse(signature))


def flaky_jobs(conn: Connection, filters: Filters, *, min_runs: int = MIN_RUNS, threshold: float = THRESHOLD,
               confidence: float = CONFIDENCE, limit: int = LIMIT) -> list[dict]:
    """The jobs that flaked in the runs `filters` selects, quarantine-worthy first, then by Wilson lower bound.

    Definitions: the module docstring.  Only jobs with at least one flaky run are listed, at most
    `limit`.  Each dict: repo, workflow, job (base name), names (its legs' exact names seen, sorted),
    runs, successful, flaky, failed, rate, wilson_low, wilson_high, quarantine (bool), last_flaky
    (createtime of the newest flaky run), last_flaky_url, last_flaky_run (its workflowruns.id).
    """
    if not isinstance(min_runs, int) or min_runs < 0:
        raise ValueError(f"min_runs must be a whole number >= 0, not {min_runs!r}")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be at least 0 and below 1, not {threshold!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    if limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit!r}")
    # A run with no jobs stored has no signature and no outcome: the inner join leaves it out.
    rows = conn.execute(
        select(w.id, w.workflow, w.commitid, w.createtime, rj.signature)
        .select_from(workflowruns.join(rollup_run_jobs, rj.run == w.gitid))
        .where(*filters.conditions()))
    parsed: dict[str, tuple] = {}  # signature -> (outcomes, flaky bases, failed bases)
    per_signature: Counter = Counter()  # (workflow, signature) -> runs
    newest: dict[tuple, tuple] = {}  # (workflow, base) -> (createtime, run id) of its newest flaky run
    failed: dict[tuple, list] = {}  # (workflow, commit, base) -> [(createtime, run id)] of its failed runs
    runs = []  # (workflow, commit, outcomes) of each run, for `_passed_elsewhere`; rows are not kept
    for run, workflow, commit, created, signature in rows:
        known = parsed.get(signature)
        if known is None:
            outcomes = _parse(signature)
            known = parsed[signature] = (outcomes, [b for b, (o, _) in outcomes.items() if o == FLAKY],
                                         [b for b, (o, _) in outcomes.items() if o == FAILED_OUTCOME])
        per_signature[(workflow, signature)] += 1
        runs.append((workflow, commit, known[0]))
        for base in known[1]:
            _newer(newest, (workflow, base), created, run)
        for base in known[2]:
            failed.setdefault((workflow, commit, base), []).append((created, run))
    totals: dict[tuple, Counter] = {}
    names: dict[tuple, set] = {}
    for (workflow, signature), n in per_signature.items():
        for base, (outcome, legs) in parsed[signature][0].items():
            totals.setdefault((workflow, base), Counter())[outcome] += n
            names.setdefault((workflow, base), set()).update(legs)
    # Failed runs whose job another run of their commit passed: flaky too ("crossed"), and still failed.
    for (workflow, _commit, base), found in _passed_elsewhere(runs, failed):
        for created, run in found:
            totals[(workflow, base)]["crossed"] += 1
            _newer(newest, (workflow, base), created, run)
    out = []
    for (workflow, base), counts in totals.items():
        flaky = counts[FLAKY] + counts["crossed"]
        if not flaky:
            continue
        sample = flaky + counts[SUCCESSFUL]
        low, high = wilson(flaky, sample, confidence)
        out.append({"workflow_id": workflow, "job": base, "names": sorted(names[(workflow, base)]), "runs": sample,
                    "successful": counts[SUCCESSFUL], "flaky": flaky, "failed": counts[FAILED_OUTCOME],
                    "rate": flaky / sample, "wilson_low": low, "wilson_high": high,
                    "quarantine": sample >= min_runs and low > threshold,
                    "last_flaky": newest[(workflow, base)][0], "last_flaky_run": newest[(workflow, base)][1]})
    return _finish(conn, out, limit)


def _newer(newest: dict, key, created: float | None, run: int) -> None:
    value = (created or 0.0, run)
    if key not in newest or value > newest[key]:
        newest[key] = value


def _passed_elsewhere(runs: list, failed: dict) -> list:
    """The items of `failed` ((workflow, commit, base) -> its failed runs) whose job another of `runs` passed."""
    if not failed:
        return []
    commits = {(workflow, commit) for workflow, commit, _ in failed}
    passed = set()
    for workflow, commit, outcomes in runs:
        if (workflow, commit) in commits:
            passed.update((workflow, commit, base) for base, (o, _) in outcomes.items() if o in (FLAKY, SUCCESSFUL))
    return [(key, found) for key, found in failed.items() if key in passed]


def _finish(conn: Connection, out: list[dict], limit: int) -> list[dict]:
    """Names and URLs for the listed jobs, ranked and cut to `limit`."""
    if not out:
        return []
    wf = dict((r[0], (r[1], r[2])) for r in conn.execute(
        select(workflows.c.id, workflows.c.repo, workflows.c.name)
        .where(workflows.c.id.in_(bindparam("ids", expanding=True))), {"ids": sorted({o["workflow_id"] for o in out})}))
    for o in out:
        o["repo"], o["workflow"] = wf.get(o.pop("workflow_id"), (None, None))
    out.sort(key=lambda o: (not o["quarantine"], -o["wilson_low"], -o["flaky"], o["repo"] or "", o["workflow"] or "",
                            o["job"]))
    out = out[:limit]
    urls = dict(conn.execute(select(w.id, w.url).where(w.id.in_(bindparam("ids", expanding=True))),
                             {"ids": sorted({o["last_flaky_run"] for o in out})}).all()) if out else {}
    for o in out:
        o["last_flaky_url"] = urls.get(o["last_flaky_run"])
    return out
