"""A commit's builds and a pull request's drawn: header, runs with every attempt's jobs, trunk's neighbours.

Pure functions of what `store.queries.commit` returns (no queries).  Every stored text goes into Dash
components as children or attribute values after `as_text` (React writes them as text); links are made
only from `link_url` URLs or from this site's own paths (`commit_href`, `pull_href`, `failure_href`),
whose variable parts are checked first.
"""
from __future__ import annotations

import time
from urllib.parse import quote

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp.components import format_duration
from dashapp.failure_tables import evidence_links, failure_href, link, verdict_badge
# SHA, commit_href: the commit page and its tests import them from here (they live in dashapp.tables: every table
# links shas).
from dashapp.tables import SHA, ago, commit_href, commit_url, pull_href, short_sha_link, utc  # noqa: F401
from domain.text import as_text, clip, link_url, one_line
from store.queries.waterfall import GLYPHS

NAME = 80  # characters of a workflow, job, branch or runner name drawn (the title has it all)
LINE = 240  # characters of a failure line drawn (CSS cuts it further; the title has it all)
FAILED_GLYPHS = ("X", "T")
CAPTURE_WORDS = {"pending": "waiting for its log", "failed": "its log could not be read", "gone": "GitHub has no log",
                 "done": "no failure line found"}


def _text(value) -> str:
    return as_text(value).strip()


def _name(value, limit: int = NAME) -> str:
    return clip(one_line(value), limit)


def github_pull_url(repo, number, repo_url=None) -> str | None:
    base = link_url(repo_url) or (f"https://github.com/{quote(str(repo), safe='/')}" if repo else None)
    return link_url(f"{base.rstrip('/')}/pull/{int(number)}") if base else None


def glyph(value, title: str | None = None, url=None, **kwargs):
    """A state glyph (letter and colour), linking to `url` on GitHub when it is an http(s) URL."""
    value = value if value in GLYPHS else "N"
    css = "wf-glyph glyph-" + {"?": "R", "": "N"}.get(value, value)
    label = title or GLYPHS.get(value, "")
    href = link_url(url)
    if href:
        return html.A(value or "·", href=href, target="_blank", rel="noopener", className=css, title=label,
                      **{"aria-label": label}, **kwargs)
    return html.Span(value or "·", className=css, title=label, **{"aria-label": label}, **kwargs)


def _when(epoch, now: float, **kwargs) -> html.Span:
    return html.Span(ago(epoch, now), title=utc(epoch), className="fi-when", **kwargs)


def _title(message) -> str:
    lines = _text(message).splitlines()
    return lines[0].strip() if lines else ""


def _fact(label: str, value, **kwargs) -> html.Div:
    return html.Div([html.Div(label, className="fi-fact-label"), html.Div(value, className="fi-fact-value")],
                    className="fi-fact", **kwargs)


def _joined(items, sep=", ") -> list:
    out = []
    for item in items:
        if out:
            out.append(sep)
        out.append(item)
    return out


# -- the commit page ------------------------------------------------------------------------------------

def commit_header(commit: dict, runs: list[dict], *, repo_url=None, now: float | None = None) -> html.Div:
    """The commit: its title and message, sha (linked to GitHub), author, time, repository, the branches its runs
    ran on, the pull requests they ran for, and its runs' glyphs by workflow."""
    now = time.time() if now is None else now
    repo, sha = _text(commit.get("repo")), _text(commit.get("sha"))
    message = _text(commit.get("message"))
    title, body = _title(message), "\n".join(message.splitlines()[1:]).strip()
    branches = sorted({_text(r.get("branch")) for r in runs if _text(r.get("branch"))})
    pulls = sorted({n for r in runs for n in r.get("pulls") or []})
    states = [html.Span([glyph(r.get("glyph"), f"{_name(r.get('workflow'))}: {GLYPHS.get(r.get('glyph'), '')}",
                               r.get("url")), " ", _name(r.get("workflow"), 40)], className="cm-state me-3")
              for r in runs]
    pull_links = [dcc.Link(f"#{n}", href=pull_href(repo, n), className="cm-pull") if pull_href(repo, n) else f"#{n}"
                  for n in pulls]
    facts = [
        _fact("Repository", _name(repo, 120) or "—", id="cm-repo"),
        _fact("Author", _name(commit.get("author")) or "—", id="cm-author"),
        _fact("Committed", _when(commit.get("time"), now), id="cm-time"),
        _fact("Branches", _joined(_name(b) for b in branches) or "—", id="cm-branches"),
        _fact("Pull requests", _joined(pull_links) or "—", id="cm-pulls"),
    ]
    return html.Div([
        html.Div(title or "(no message)", className="cm-title fw-semibold mb-1", id="cm-title", title=message or None),
        html.Details([html.Summary("Full message", className="small"),
                      html.Pre(clip(body, 20_000), className="cm-body")], className="mb-2") if body else None,
        html.Div([html.Code(sha, className="cm-sha me-2", id="cm-sha"),
                  link("on GitHub ↗", commit_url(repo, sha, repo_url), className="small", id="cm-github")],
                 className="mb-2"),
        html.Div(facts, className="fi-facts mb-2"),
        html.Div(states or html.Span("No runs on this commit yet.", className="text-muted"),
                 className="cm-states small", id="cm-states"),
    ], className="p-3", id="cm-summary")


JOB_HEADS = ("", "Job", "Duration", "Queued", "Runner", "Failing step", "Failure line", "Verdict")


def _runner(job: dict):
    name = _name(job.get("runner_name"))
    labels = [_name(x, 40) for x in job.get("labels") or []]
    group = _name(job.get("runner_group"))
    detail = " · ".join(x for x in (", ".join(labels), f"group {group}" if group else "") if x)
    if not name and not detail:
        return "—"
    return [html.Div(name or "(not assigned yet)", className="cm-runner-name"),
            html.Div(detail, className="small text-muted cm-runner-labels") if detail else None]


def _failure_cells(job: dict) -> list:
    failure = job.get("failure")
    if failure is None:
        return [html.Td("—" if job.get("glyph") in FAILED_GLYPHS else None), html.Td(None)]
    lines = failure.get("failure_lines") or []
    if not lines:
        word = CAPTURE_WORDS.get(failure.get("capture"), "no failure line yet")
        return [html.Td(html.Span(word, className="text-muted small cm-capture")), html.Td("—")]
    text = _text(lines[0].get("text"))
    shown = clip(" ".join(text.split()), LINE) or "(empty line)"
    href = failure_href(failure.get("fingerprint"))
    line = (dcc.Link(shown, href=href, className="fi-line cm-line", title=text) if href
            else html.Span(shown, className="fi-line cm-line", title=text))
    verdict = failure.get("verdict")
    return [html.Td(line, className="cm-line-cell"),
            html.Td([verdict_badge(verdict, className="cm-verdict") or "—", " ",
                     *_joined(evidence_links(verdict, limit=2), " ")], className="cm-verdict-cell")]


def jobs_table(jobs: list[dict], element_id: str | None = None) -> html.Div:
    """An attempt's jobs: glyph (linked to the job on GitHub), name, duration, queue time, runner (name, labels,
    group), failing step, and for a failed job its primary failure line (linked to its failure's page) and
    verdict."""
    if not jobs:
        return html.Div("No jobs reported for this attempt.", className="small text-muted px-3 py-2")
    body = []
    for job in jobs:
        name = _name(job.get("name")) or "(unnamed job)"
        step = job.get("failing_step")
        state = GLYPHS.get(job.get("glyph"), "")
        failed = job.get("glyph") in FAILED_GLYPHS
        body.append(html.Tr([
            html.Td(glyph(job.get("glyph"), f"{name}: {state}", job.get("url"))),
            html.Td(link(name, job.get("url"), className="cm-job-name", title=_text(job.get("name")))),
            html.Td(format_duration(job.get("runtime")), className="text-end text-nowrap"),
            html.Td(format_duration(job.get("queuetime")), className="text-end text-nowrap"),
            html.Td(_runner(job), className="cm-runner"),
            html.Td(f"{step['number']}. {_name(step.get('name'))}" if step else ("—" if failed else None),
                    className="cm-step"),
            *_failure_cells(job),
        ], className="cm-job" + (" cm-job-failed" if failed else ""),
            **{"data-job": _text(job.get("job")), "data-name": _text(job.get("name"))}))
    head = html.Thead(html.Tr([html.Th(h, className="text-end" if h in ("Duration", "Queued") else None)
                               for h in JOB_HEADS]))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True,
                              className="mb-0 align-middle fi-table cm-jobs-table", id=element_id),
                    className="table-responsive")


def _attempt_line(a: dict, *, latest: bool) -> list:
    state = GLYPHS.get(a.get("glyph"), "")
    parts = [f"Attempt {a.get('attempt')}" + (" (latest)" if latest else ""), _text(a.get("conclusion")) or state,
             f"{len(a.get('jobs') or [])} jobs"]
    if a.get("runtime") is not None:
        parts.append(f"took {format_duration(a.get('runtime'))}")
    if a.get("queuetime") is not None:
        parts.append(f"queued {format_duration(a.get('queuetime'))}")
    if a.get("author"):
        parts.append(f"by {_name(a.get('author'))}")
    return [glyph(a.get("glyph"), state, a.get("url")), " ", " · ".join(p for p in parts if p)]


def run_block(run: dict, index: int, *, repo=None) -> html.Div:
    """A run: its glyph and workflow (linked to the run on GitHub), branch, event, attempts; its latest attempt's
    jobs, and each earlier attempt's in a collapsed `<details>`."""
    attempts = run.get("attempts") or []
    workflow = _name(run.get("workflow")) or "(unnamed workflow)"
    meta = [x for x in (f"#{run['run_number']}" if run.get("run_number") else "", _name(run.get("event")),
                        f"on {_name(run.get('branch'))}" if run.get("branch") else "",
                        f"{len(attempts)} attempts" if len(attempts) > 1 else "") if x]
    pulls = [dcc.Link(f"#{n}", href=pull_href(repo, n)) for n in run.get("pulls") or [] if pull_href(repo, n)]
    head = html.Div([
        glyph(run.get("glyph"), f"{workflow}: {GLYPHS.get(run.get('glyph'), '')}", run.get("url")),
        html.Span(link(workflow, run.get("url"), title="the run on GitHub"), className="fw-semibold ms-2 cm-workflow"),
        html.Span(" · ".join(meta), className="small text-muted ms-2"),
        html.Span(["for ", *_joined(pulls)], className="small ms-2") if pulls else None,
    ], className="d-flex align-items-center flex-wrap px-3 py-2 border-bottom cm-run-head")
    blocks = []
    for i, a in enumerate(attempts):
        table = jobs_table(a.get("jobs") or [], element_id=f"cm-jobs-{index}-{a.get('attempt')}")
        if i == 0:
            blocks += [html.Div(_attempt_line(a, latest=True), className="small px-3 py-1 cm-attempt-line"), table]
        else:  # the summary holds the line itself: its marker stays on the same line
            blocks.append(html.Details([html.Summary(_attempt_line(a, latest=False),
                                                     className="small px-3 py-1 cm-attempt-summary"), table],
                                       className="cm-attempt-earlier border-top"))
    return html.Div([head, *blocks], className="card mb-3 section cm-run",
                    **{"data-workflow": _text(run.get("workflow")), "data-glyph": _text(run.get("glyph")),
                       "data-run": _text(run.get("gitid"))})


def run_order(runs: list[dict]) -> list[dict]:
    """Failed runs first (what the reader came for), then running, then the rest; by workflow within each."""
    rank = {"X": 0, "T": 0, "F": 1, "?": 2, "Q": 2}
    return sorted(runs, key=lambda r: rank.get(r.get("glyph"), 3))


def runs_section(runs: list[dict], *, repo=None):
    if not runs:
        return html.Div("No workflow has run on this commit.", className="text-muted p-3", id="cm-no-runs")
    return html.Div([run_block(r, i, repo=repo) for i, r in enumerate(run_order(runs))], id="cm-runs")


def _side(side: dict | None, repo, now: float):
    if side is None:
        return html.Span("no run", className="text-muted small")
    commit = side.get("commit") or {}
    state = GLYPHS.get(side.get("glyph"), "")
    failed = side.get("failed") or []
    same = side.get("same_jobs") or []
    out = [html.Div([glyph(side.get("glyph"), state, side.get("url")), " ",
                     short_sha_link(repo, commit.get("sha"), className="font-monospace cm-nb-sha"), " ",
                     html.Span(clip(_title(commit.get("message")), 60), className="cm-nb-title",
                               title=_title(commit.get("message")) or None),
                     html.Span([" · ", _when(commit.get("time"), now)], className="small text-muted")],
                    className="text-nowrap cm-nb-commit")]
    if failed:
        names = ", ".join(_name(f.get("name"), 40) for f in failed[:3])
        names += f" +{len(failed) - 3}" if len(failed) > 3 else ""
        out.append(html.Div(f"failed: {names}", className="small text-muted cm-nb-failed"))
    if same or side.get("same_lines"):
        what = "the same failure line" if side.get("same_lines") else "the same job"
        out.append(html.Span(f"fails the same way: {what}", className="fi-verdict fi-verdict-trunk cm-same",
                             title=", ".join(_text(n) for n in same) or None))
    return out


def neighbours_table(found: dict, repo, *, now: float | None = None):
    """Per workflow: the default branch's result just before this commit's run, this commit's, and just after;
    a neighbour failing in the same job or with the same failure line says so."""
    now = time.time() if now is None else now
    branch = _name(found.get("branch"))
    if not found.get("branch"):
        return html.Div("The repository's default branch is not known: no neighbours to compare with.",
                        className="text-muted p-3", id="cm-neighbours-none")
    if not found.get("workflows"):
        return html.Div("No workflow has run on this commit.", className="text-muted p-3", id="cm-neighbours-none")
    body = []
    for wf in found["workflows"]:
        own = wf.get("failed") or []
        own_names = ", ".join(_name(f.get("name"), 40) for f in own[:3])
        body.append(html.Tr([
            html.Td(_name(wf.get("workflow")), className="fw-semibold"),
            html.Td(_side(wf.get("older"), repo, now), className="cm-nb-older"),
            html.Td([glyph(wf.get("glyph")), html.Div(f"failed: {own_names}", className="small text-muted")
                     if own_names else None], className="cm-nb-own"),
            html.Td(_side(wf.get("newer"), repo, now), className="cm-nb-newer"),
        ], className="cm-nb-row", **{"data-workflow": _text(wf.get("workflow"))}))
    head = html.Thead(html.Tr([html.Th("Workflow"), html.Th(f"Before, on {branch}"), html.Th("This commit"),
                               html.Th(f"After, on {branch}")]))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", className="mb-0 align-middle fi-table",
                              id="cm-neighbours-table"), className="table-responsive")


def choices(found: list[dict], given: str, *, now: float | None = None) -> html.Div:
    """An ambiguous sha: every commit it names, each linking to its own page."""
    now = time.time() if now is None else now
    rows = [html.Li([short_sha_link(c.get("repo"), c.get("sha"), className="font-monospace me-2"),
                     html.Span(_name(c.get("repo"), 120), className="me-2"),
                     html.Span(clip(_title(c.get("message")), 100), className="me-2"),
                     html.Span([_name(c.get("author")), " · ", _when(c.get("time"), now)], className="text-muted")],
                    className="cm-choice") for c in found]
    return html.Div([html.Div(f"“{clip(given, 80)}” names {len(found)} commits: pick one.",
                              className="fw-semibold mb-2"),
                     html.Ul(rows, className="mb-0")], className="p-3", id="cm-choices")


# -- the pull-request page ------------------------------------------------------------------------------

def pull_header(repo, number: int, commits: list[dict], *, repo_url=None) -> html.Div:
    """The pull request: a link to it on GitHub, its head branches and authors, how many commits and runs."""
    branches = sorted({_text(b) for g in commits for b in g.get("branches") or [] if _text(b)})
    authors = sorted({_text(g.get("author")) for g in commits if _text(g.get("author"))})
    runs = sum(r.get("runs") or 0 for g in commits for r in g.get("runs") or [])
    newest = commits[0] if commits else {}
    facts = [
        _fact("Repository", _name(repo, 120), id="pl-repo"),
        _fact("Head branches", _joined(_name(b) for b in branches) or "—", id="pl-branches"),
        _fact("Authors", _joined(_name(a) for a in authors) or "—", id="pl-authors"),
        _fact("Commits built", f"{len(commits):,}", id="pl-commits"),
        _fact("Runs", f"{runs:,}", id="pl-runs"),
    ]
    latest = [html.Span([glyph(r.get("glyph"), f"{_name(r.get('workflow'))}: {GLYPHS.get(r.get('glyph'), '')}",
                               r.get("url")), " ", _name(r.get("workflow"), 40)], className="cm-state me-3")
              for r in newest.get("runs") or []]
    return html.Div([
        html.Div(link(f"#{number} on GitHub ↗", github_pull_url(repo, number, repo_url), id="pl-github"),
                 className="small mb-2"),
        html.Div(facts, className="fi-facts mb-2"),
        html.Div([html.Span("Head commit: ", className="text-muted"), *latest], className="cm-states small",
                 id="pl-latest") if latest else None,
    ], className="p-3", id="pl-summary")


def _pull_cell(run: dict | None):
    if run is None:
        return html.Td(glyph("", "not run"), className="text-center")
    name = _name(run.get("workflow"))
    parts = [f"{name}: {GLYPHS.get(run.get('glyph'), '')}"]
    if (run.get("attempt") or 1) > 1:
        parts.append(f"{run['attempt']} attempts")
    if run.get("runtime") is not None:
        parts.append(f"took {format_duration(run.get('runtime'))}")
    if (run.get("runs") or 1) > 1:
        parts.append(f"the newest of {run['runs']} runs on this commit")
    failed = [_name(f.get("name"), 60) + (f" — {clip(one_line(f.get('text')), 160)}" if f.get("text") else "")
              for f in run.get("failed") or []]
    title = "\n".join([" · ".join(parts), *failed])
    return html.Td(glyph(run.get("glyph"), title, run.get("url")), className="text-center pl-cell",
                   **{"data-workflow": _text(run.get("workflow")), "data-glyph": _text(run.get("glyph"))})


def pull_table(repo, commits: list[dict], *, now: float | None = None) -> html.Div:
    """One row per head commit, pushed last first, linking to its commit page; one glyph column per workflow:
    its latest run on that commit (hover: attempts, duration, failed jobs and their lines)."""
    now = time.time() if now is None else now
    workflows = sorted({_text(r.get("workflow")) for g in commits for r in g.get("runs") or []})
    body = []
    for g in commits:
        runs = {_text(r.get("workflow")): r for r in g.get("runs") or []}
        body.append(html.Tr([
            html.Td([short_sha_link(repo, g.get("sha"), className="font-monospace me-2 pl-sha"),
                     html.Span(clip(_title(g.get("message")), 90) or "(no message)", title=_title(g.get("message")))],
                    className="pl-commit"),
            html.Td(_name(g.get("author")) or "—", className="text-nowrap"),
            html.Td(_when(g.get("pushed"), now), className="text-nowrap"),
            *(_pull_cell(runs.get(name)) for name in workflows),
        ], className="pl-commit-row", **{"data-sha": _text(g.get("sha"))}))
    head = html.Thead(html.Tr([html.Th("Commit"), html.Th("Author"), html.Th("Pushed"),
                               *(html.Th(_name(n, 30), title=n, className="text-center") for n in workflows)]))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0 align-middle fi-table",
                              id="pl-commits-table"), className="table-responsive")
