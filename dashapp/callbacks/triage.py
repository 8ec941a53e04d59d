"""The Triage view's callbacks: selection in, query, frame, table out.

`register()` is called by the page module, once per app.
"""
import time
from dataclasses import replace

from dash import Input, Output, callback

from dashapp import inputs, urlstate
from dashapp.inputs import checker
from dashapp.rawhtml import compact
from dashapp.callbacks.filters import ALL, filters_to_url  # noqa: F401 (ALL: the pages read it here)
from dashapp.components import empty_state
from dashapp.failure_tables import NEWEST_SHOWN, capture_note, flaky_jobs_table, groups_table
from dashapp.shell import services
from dashapp.triage_tables import analysis_table, broken_main_table, failure_table, flaky_counts_list, flaky_grid
from store.queries import failures as fq
from store.queries import flakes
from store.queries import triage as q
from store.queries.streaks import broken_main
from store.queries.filters import Filters

# The sample and bound of the flaky-jobs table: the defaults of `flaky_jobs`, which `/api/flaky` uses too.
FLAKE_SAMPLE = {"min_runs": flakes.MIN_RUNS, "threshold": flakes.THRESHOLD, "confidence": flakes.CONFIDENCE}
FLAKY_JOBS_SHOWN = 50
# The flaky-jobs table reads one row per run of its window (`rollup_run_jobs`): 7 days cost ~60 ms at 100k and
# 1M runs alike, 30 days ~250 ms (BENCHMARKS.md), so a wider window shows the last 7 days' flake rates and says so.
FLAKY_JOBS_DAYS = 7
# Failure groups drawn at first, newest first (the section's box shows ~15 rows; each row is ~50 elements,
# ~0.7 ms of the server's time); `?groups=all` (the table's "show all" link) draws up to GROUPS_ALL.
GROUPS_SHOWN = 50
GROUPS_ALL = 1000


def selection_filters(sel: dict, *, now: float | None = None) -> Filters:
    seconds = urlstate.window_seconds(sel.get("window"))
    now = time.time() if now is None else now
    return Filters(repo=sel.get("repo"), branch=sel.get("branch"), workflow=sel.get("workflow"),
                   since=None if seconds is None else now - seconds)


def _blocked(sel: dict, element_id: str):
    """The empty state every section shows for an empty store or an unknown repository, else None."""
    if sel.get("empty"):
        return empty_state("No builds yet.", id=element_id)
    if not sel.get("known", True):
        return empty_state(f"Nothing to show: unknown repository “{sel.get('repo')}”.", id=element_id)
    return None


def _window_label(sel: dict) -> str:
    return {v: label for v, label, _s in urlstate.WINDOWS}.get(sel.get("window"), "this window").lower()


def broken_section(sel: dict, *, now: float | None = None):
    blocked = _blocked(sel, "tr-broken-empty")
    if blocked:
        return blocked
    now = time.time() if now is None else now
    with services().engine.connect() as conn:
        frame = broken_main(conn, selection_filters(sel, now=now), now=now)
    if frame.empty:
        return empty_state("Every default branch is green.", hint="No workflow's newest decisive result on "
                           "main/master is a failure.", id="tr-broken-empty", className="empty-state empty-compact")
    return broken_main_table(frame)


def _frame_section(sel: dict, section: str, query, empty: str, render):
    """A section that is one query's frame: the empty state when it has no rows, else `render(frame)`."""
    blocked = _blocked(sel, f"{section}-empty")
    if blocked:
        return blocked
    with services().engine.connect() as conn:
        frame = query(conn, selection_filters(sel))
    if frame.empty:
        return empty_state(empty.format(window=_window_label(sel)), id=f"{section}-empty",
                           className="empty-state empty-compact")
    return render(frame, show_repo=not sel.get("repo"))


def causes_section(sel: dict, *, now: float | None = None):
    """Failed jobs grouped by their failure line (its fingerprint), with what the log capture waits for."""
    svc = services()
    with svc.engine.connect() as conn:
        status = fq.capture_status(conn, token=bool(svc.config.github_token))
        blocked = _blocked(sel, "tr-causes-empty")
        limit = GROUPS_ALL if sel.get("groups") == "all" else GROUPS_SHOWN
        # One more than drawn: whether there are more to offer.
        groups = [] if blocked else fq.groups(conn, selection_filters(sel, now=now), limit=limit + 1,
                                              newest=NEWEST_SHOWN)
    note = capture_note(status, have_groups=bool(groups))
    if blocked:
        return [note, blocked]
    if not groups:
        hint = ("Failed jobs appear here grouped by the line their log failed on, once their logs are read."
                if status.get("token") or status.get("pending") else None)
        return [note, empty_state(f"No failure lines in the {_window_label(sel)}.", hint=hint, id="tr-causes-empty",
                                  className="empty-state empty-compact")]
    more = urlstate.href("/triage", **{k: sel.get(k) for k in ("repo", "branch", "workflow", "window")},
                         groups="all") if len(groups) > limit and limit == GROUPS_SHOWN else None
    return [note, groups_table(groups[:limit], sel, now=now, show_repo=not sel.get("repo"), more_href=more)]


def failures_section(sel: dict):
    return _frame_section(sel, "tr-failures", q.failure_groups, "No failed builds in the {window}.",
                          failure_table)


def analysis_section(sel: dict):
    return _frame_section(sel, "tr-analysis", q.build_analysis, "No runs in the {window}.", analysis_table)


def flaky_section(sel: dict):
    blocked = _blocked(sel, "tr-flaky-empty")
    if blocked:
        return blocked
    filters = selection_filters(sel)
    recent = time.time() - FLAKY_JOBS_DAYS * 86400
    capped = filters.since is None or filters.since < recent
    with services().engine.connect() as conn:
        jobs = flakes.flaky_jobs(conn, replace(filters, since=recent) if capped else filters,
                                 limit=FLAKY_JOBS_SHOWN, **FLAKE_SAMPLE)
        counts = q.flaky_counts(conn, filters)
        runs = q.flaky_runs(conn, filters) if len(counts) else None
    show_repo = not sel.get("repo")
    out = [flaky_jobs_table(jobs, show_repo=show_repo, days=FLAKY_JOBS_DAYS if capped else None, **FLAKE_SAMPLE)] \
        if jobs else []
    if counts.empty:
        return out + [empty_state(f"No flaky runs in the {_window_label(sel)}.", id="tr-flaky-empty",
                                  className="empty-state empty-compact")]
    return out + [flaky_counts_list(counts, show_repo=show_repo), flaky_grid(runs)]


# `tr-selection` as the page's `resolve` writes it; a callback given anything else answers 400.
SELECTION = {
    "repo": inputs.text, "known": inputs.flag(True), "empty": inputs.flag(), "branch": inputs.text,
    "workflow": inputs.text,
    "window": checker(inputs.choice, options=urlstate.WINDOW_VALUES, default=urlstate.DEFAULT_WINDOW),
    "branches": inputs.texts, "workflows": inputs.texts,
    "groups": checker(inputs.choice, options=("all",), default=None),
}


def selection(value) -> dict:
    return inputs.record(value, "tr-selection", SELECTION)


def register() -> None:
    for output, build in (("tr-broken", broken_section), ("tr-causes", causes_section),
                          ("tr-failures", failures_section),
                          ("tr-analysis", analysis_section), ("tr-flaky", flaky_section)):
        callback(Output(output, "children"), Input("tr-selection", "data"), Input("live-version", "data"))(
            _section_callback(build))

    filters_to_url("tr", selection)


def _section_callback(build):
    def _fill(sel, _version):
        return compact(build(selection(sel)))
    _fill.__name__ = f"_{build.__name__}"
    return _fill
