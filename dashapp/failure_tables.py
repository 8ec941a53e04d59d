"""Failure intelligence drawn: failure groups, flaky jobs, a group's header and its occurrences.

Pure functions of what `store.queries.failures` and `store.queries.flakes` return (no queries).
Every text here comes from logs or deliveries: it goes into Dash components as children or
attribute values (React writes them as text) after `as_text` (control and bidi characters
removed); no markup is ever built from it, and links are made only from `link_url` URLs or
from this site's own paths (`failure_href`, whose fingerprint is checked to be hex; `commit_href`, whose sha is
checked to be letters and digits).
"""
from __future__ import annotations

import re
import time

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp import urlstate
from dashapp.tables import ago, commit_href, short_sha_link, utc
from domain.text import as_text, clip, link_url, one_line

FINGERPRINT = re.compile(r"[0-9a-f]{16}")
LINE_SHOWN = 300  # characters of a failure line drawn in a table cell (CSS cuts it further; the title has it all)
NAME_SHOWN = 60  # characters of a branch, author or job name in a list
LIST_SHOWN = 2  # names of a list drawn before "+N" (a group's row stays two lines high)
NEWEST_SHOWN = 4  # newest runs linked from a group's row
EXCERPT_MAX = 64_000  # characters of a log excerpt drawn (the store keeps excerpts far smaller)
# CSS class of each verdict's badge (assets/app.css, "failure intelligence"): a word AND a colour.
VERDICT_CLASSES = {"NEW": "new", "BROKEN TRUNK": "trunk", "FLAKY": "flaky", "INFRA": "infra", "KNOWN": "known"}
VERDICT_HINTS = {
    "NEW": "not seen in any failed job in the 21 days before",
    "BROKEN TRUNK": "failing on the default branch's newest commits too",
    "FLAKY": "the same job passed on a re-run or on the neighbouring commits",
    "INFRA": "an infrastructure rule matched (runner, network, registry…)",
    "KNOWN": "seen before, not on trunk's newest commits, not flaky",
}
# GitHub's conclusions as short words for evidence links.
CONCLUSION_WORDS = {"success": "passed", "failure": "failed", "timed_out": "timed out", "cancelled": "cancelled"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _text(value) -> str:
    return as_text(value).strip()


def link(text, url, **kwargs):
    """`text` linking to `url` in a new tab when it is an http(s) URL (`domain.text.link_url`), else text alone."""
    url = link_url(url)
    return html.A(text, href=url, target="_blank", rel="noopener", **kwargs) if url else html.Span(text, **kwargs)


def failure_href(fingerprint, sel: dict | None = None) -> str | None:
    """This site's page of a failure group, carrying the selection (repo, branch, workflow, window); None when
    `fingerprint` is not 16 hex digits (nothing else may go into the path)."""
    if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
        return None
    sel = sel or {}
    return urlstate.href(f"/failure/{fingerprint}", **{k: sel.get(k) for k in ("repo", "branch", "workflow",
                                                                               "window")})


def verdict_badge(verdict: dict | None, **kwargs) -> html.Span | None:
    kind = (verdict or {}).get("kind")
    if kind not in VERDICT_CLASSES:
        return None
    kwargs.setdefault("title", _text((verdict or {}).get("reason")) or VERDICT_HINTS[kind])
    return html.Span(kind, className=f"fi-verdict fi-verdict-{VERDICT_CLASSES[kind]} {kwargs.pop('className', '')}"
                     .strip(), **kwargs)


def class_badge(klass, **kwargs) -> html.Span:
    return html.Span(_text(klass) or "unknown", className="fi-class", title="class of the rule that matched",
                     **kwargs)


def _when(epoch, now: float, **kwargs) -> html.Span:
    return html.Span(ago(epoch, now), title=utc(epoch), className="fi-when", **kwargs)


def _names(values, *, shown: int = LIST_SHOWN, empty: str = "—") -> html.Span:
    """The first `shown` names, one a line (CSS cuts a long one), the last ending "+N" for the rest; the whole list
    is the title."""
    names = [one_line(v) for v in values or [] if one_line(v)]
    if not names:
        return html.Span(empty, className="text-muted")
    items = [html.Span(html.Span(clip(n, NAME_SHOWN), className="fi-name-text"), className="fi-name")
             for n in names[:shown]]
    if len(names) > shown:
        items[-1].children = [items[-1].children, html.Span(f"+{len(names) - shown}", className="fi-name-more")]
    return html.Span(items, title=clip(", ".join(names), 2000), className="fi-name-list")


def _inline_names(values, *, shown: int = 12) -> html.Span:
    """Names on one wrapping line, comma-separated: the first `shown`, "+N more" for the rest (all in the title)."""
    names = [one_line(v) for v in values or [] if one_line(v)]
    if not names:
        return html.Span("—", className="text-muted")
    more = f" +{len(names) - shown} more" if len(names) > shown else ""
    return html.Span(", ".join(clip(n, NAME_SHOWN) for n in names[:shown]) + more, title=clip(", ".join(names), 4000))


def _sha(value) -> str:
    return _text(value)[:7]


def evidence_links(verdict: dict | None, *, limit: int = 5) -> list:
    """The runs that justify a verdict: "abc1234 passed", the sha linking to its commit's page here and the word to
    the run (or job) on GitHub (branch, attempt and time on its hover).  Evidence names no repository (a known
    failure's may be another's): the commit page finds the sha wherever it is.  A sha that cannot be linked
    stays in the run's link ("#123 passed" when there is none)."""
    out = []
    for ev in ((verdict or {}).get("evidence") or [])[:limit]:
        if not isinstance(ev, dict):
            continue
        word = CONCLUSION_WORDS.get(ev.get("conclusion"), _text(ev.get("conclusion")))
        hover = " · ".join(x for x in (clip(one_line(ev.get("branch")), NAME_SHOWN),
                                       f"attempt {ev.get('attempt')}" if ev.get("attempt") else "",
                                       utc(ev.get("createtime"))) if x)
        if commit_href(None, _text(ev.get("sha"))):
            parts = [short_sha_link(None, ev.get("sha")), " ", link(word or "run", ev.get("url"), title=hover)]
        else:
            label = " ".join(x for x in (_sha(ev.get("sha")) or f"#{_text(ev.get('run_gitid'))}", word) if x)
            parts = [link(label, ev.get("url"), title=hover)]
        out.append(html.Span(parts, className="fi-evidence"))
    return out


# -- Triage: failures by cause ---------------------------------------------------------------

GROUP_HEADS = ("Failure line", "Class", "Verdict", "Jobs", "Runs", "First seen", "Last seen", "Branches", "Authors",
               "Newest runs")


def _newest_links(occurrences) -> list:
    out = []
    for occ in (occurrences or [])[:NEWEST_SHOWN]:
        hover = " · ".join(x for x in (clip(one_line(occ.get("workflow")), NAME_SHOWN),
                                       clip(one_line(occ.get("job_name")), NAME_SHOWN),
                                       clip(one_line(occ.get("branch")), NAME_SHOWN), utc(occ.get("createtime")))
                           if x)
        if out:
            out.append(" ")
        # The run's commit page here (the run is on it, failed jobs first); else the run on GitHub.
        if commit_href(occ.get("repo"), _text(occ.get("sha"))):
            out.append(short_sha_link(occ.get("repo"), occ.get("sha"), className="font-monospace fi-run", title=hover))
        else:
            out.append(link(_sha(occ.get("sha")) or f"#{_text(occ.get('run_gitid'))}", occ.get("run_url"),
                            className="font-monospace fi-run", title=hover))
    return out


def _line_cell(group: dict, sel: dict, *, show_repo: bool) -> html.Td:
    text = _text(group.get("text"))
    shown = clip(" ".join(text.split()), LINE_SHOWN) or "(empty line)"
    href = failure_href(group.get("fingerprint"), sel)
    line = (dcc.Link(shown, href=href, className="fi-line", title=text) if href else
            html.Span(shown, className="fi-line", title=text))
    scope = [group.get("workflows"), group.get("job_names")]
    if show_repo:
        scope.insert(0, group.get("repos"))
    parts = [[one_line(n) for n in names or [] if one_line(n)] for names in scope]
    detail = " · ".join(", ".join(clip(n, NAME_SHOWN) for n in names[:LIST_SHOWN]) +
                        (f" +{len(names) - LIST_SHOWN}" if len(names) > LIST_SHOWN else "") for names in parts if names)
    return html.Td([line, html.Div(detail, className="fi-line-where small text-muted",
                                   title=clip(" · ".join(", ".join(names) for names in parts if names), 2000))],
                   className="fi-line-cell")


def groups_table(groups: list[dict], sel: dict, *, now: float | None = None, show_repo: bool = False,
                 more_href: str | None = None) -> html.Div:
    """One row per failure group (fingerprint), newest last seen first: its line links to its page.  With
    `more_href` (the window holds more groups than `groups`), a line under the table links to all of them."""
    now = time.time() if now is None else now
    body = []
    for g in groups:
        body.append(html.Tr([
            _line_cell(g, sel, show_repo=show_repo),
            html.Td(class_badge(g.get("klass"))),
            html.Td(verdict_badge(g.get("verdict")) or "—"),
            html.Td(f"{int(g.get('jobs') or 0):,}", className="text-end fi-jobs"),
            html.Td(f"{int(g.get('runs') or 0):,}", className="text-end fi-runs"),
            html.Td(_when(g.get("first_seen"), now)),
            html.Td(_when(g.get("last_seen"), now)),
            html.Td(_names(g.get("branches")), className="fi-names"),
            html.Td(_names(g.get("authors")), className="fi-names"),
            html.Td(_newest_links(g.get("newest")), className="fi-runs-cell"),
        ], className="fi-group-row", **{"data-fingerprint": _text(g.get("fingerprint"))}))
    head = html.Thead(html.Tr([html.Th(h, className="text-end" if h in ("Jobs", "Runs") else None)
                               for h in GROUP_HEADS]))
    table = html.Div(dbc.Table([head, html.Tbody(body)], className="mb-0 align-middle fi-table", size="sm",
                               hover=True, id="tr-causes-table"), className="table-responsive fi-scroll")
    if not more_href:
        return table
    return html.Div([table, html.Div([f"The {len(groups):,} groups that failed most recently. ",
                                      dcc.Link("Show all groups", href=more_href, id="tr-causes-more")],
                                     className="small text-muted px-2 py-1 border-top")])


def _alert(children, color: str, element_id: str, state: str) -> html.Div:
    # Bootstrap's alert as a plain Div: dbc.Alert takes no data-* attribute.
    return html.Div(children, className=f"alert alert-{color} mb-0 py-2 small rounded-0 border-0 border-bottom",
                    role="alert", id=element_id, **{"data-state": state})


def capture_note(status: dict | None, *, have_groups: bool, element_id: str = "tr-capture-note"):
    """What the capture of failure lines is waiting for, or None when nothing: no token, a rate-limit pause,
    jobs still to fetch.  Counts are over every repository (the queue is not per view)."""
    status = status or {}
    pending = int(status.get("pending") or 0)
    waiting = f"{pending:,} failed job{'s' if pending != 1 else ''}"
    wait = "waits for its log" if pending == 1 else "wait for their logs"
    if not status.get("token"):
        if not pending and have_groups:
            return None  # lines came another way (the demo, an earlier token): nothing waits
        lines = [html.Span("Failure lines need a GitHub token: set GITHUB_TOKEN (see README, Failure lines).",
                           className="fw-semibold")]
        if pending:
            lines.append(html.Span(f" {waiting} {wait}.", className="fi-pending"))
        return _alert(lines, "warning", element_id, "no-token")
    paused = status.get("paused_until")
    if paused and pending:
        return _alert(f"Log capture paused: GitHub rate-limited us until {utc(paused)}; {waiting} {wait}.", "info",
                      element_id, "paused")
    if pending:
        return html.Div(f"{waiting} still waiting for {'its log' if pending == 1 else 'their logs'}: "
                        f"{'its lines' if pending == 1 else 'their lines'} will appear here.",
                        className="small text-muted px-2 py-1 border-bottom", id=element_id,
                        **{"data-state": "pending"})
    return None


# -- Triage: flake statistics per job ---------------------------------------------------------

FLAKY_HEADS = ("Job", "Workflow", "Repository", "Runs", "Flaky", "Failed", "Flake rate", "Wilson lower bound", "")
NUMERIC = ("Runs", "Flaky", "Failed", "Flake rate", "Wilson lower bound")


def _rate(value) -> str:
    return "—" if value is None or value != value else f"{100 * float(value):.1f} %"


def flaky_jobs_table(rows: list[dict], *, min_runs: int, threshold: float, confidence: float,
                     show_repo: bool = True, days: int | None = None) -> html.Div:
    """Flake rate per job with its Wilson lower bound; a "quarantine" badge on the jobs `/api/flaky` lists.

    `rows` as `store.queries.flakes.flaky_jobs` gives them (jobs that flaked, quarantine first); `days`: the
    rows cover only the last `days` days of a wider window."""
    heads = [h for h in FLAKY_HEADS if show_repo or h != "Repository"]
    level = round(confidence * 100)
    body = []
    for r in rows:
        job = clip(one_line(r.get("job")), 120)
        runs = int(r.get("runs") or 0)
        small = runs < min_runs
        cells = [html.Td(link(job, r.get("last_flaky_url"), title="its newest flaky run") if
                         link_url(r.get("last_flaky_url")) else job, className="fi-flaky-job",
                         title=clip(", ".join(one_line(n) for n in r.get("names") or []), 2000) or None),
                 html.Td(clip(one_line(r.get("workflow")), 120))]
        if show_repo:
            cells.append(html.Td(clip(one_line(r.get("repo")), 120)))
        cells += [html.Td([f"{runs:,}", html.Span(" small sample", className="text-muted small") if small else None],
                          className="text-end", title=f"fewer than {min_runs} runs: no quarantine" if small else None),
                  html.Td(f"{int(r.get('flaky') or 0):,}", className="text-end"),
                  html.Td(f"{int(r.get('failed') or 0):,}", className="text-end"),
                  html.Td(_rate(r.get("rate")), className="text-end"),
                  html.Td(_rate(r.get("wilson_low")), className="text-end",
                          title=f"{level} % Wilson interval: {_rate(r.get('wilson_low'))} – "
                                f"{_rate(r.get('wilson_high'))}"),
                  html.Td(html.Span("quarantine", className="fi-verdict fi-verdict-flaky fi-quarantine")
                          if r.get("quarantine") else None)]
        body.append(html.Tr(cells, className="fi-flaky-row", **{"data-job": _text(r.get("job"))}))
    head = html.Thead(html.Tr([html.Th(h, className="text-end" if h in NUMERIC else None,
                                       title="runs where the job ended passing: flaky + successful"
                                       if h == "Runs" else None) for h in heads]))
    note = html.Div([
        f"Flaky jobs over the last {days} days (matrix legs together): " if days else
        "Flaky jobs (matrix legs together): ",
        "flake rate = flaky ÷ runs where the job ended passing. A job is to "
        f"quarantine when it has at least {min_runs} such runs (a smaller sample says too little) and the lower "
        f"bound of its {level} % Wilson interval exceeds {_rate(threshold)}; CI reads that list from ",
        html.A(html.Code("/api/flaky"), href="/api/flaky"), "."],
        className="small text-muted px-2 py-1", id="tr-flaky-jobs-note")
    table = dbc.Table([head, html.Tbody(body)], className="mb-0 align-middle fi-table", size="sm", hover=True,
                      id="tr-flaky-jobs-table")
    return html.Div([note, html.Div(table, className="table-responsive")], id="tr-flaky-jobs",
                    className="border-bottom")


# -- The failure group's page ------------------------------------------------------------------

def _fact(label: str, value, **kwargs) -> html.Div:
    return html.Div([html.Div(label, className="fi-fact-label"), html.Div(value, className="fi-fact-value")],
                    className="fi-fact", **kwargs)


def failure_header(summary: dict, newest: dict | None, *, now: float | None = None) -> html.Div:
    """The group: its line, class, rule, the newest occurrence's verdict with reason and evidence, and facts."""
    now = time.time() if now is None else now
    verdict = (newest or {}).get("verdict")
    badge = verdict_badge(verdict, id="fl-verdict")
    evidence = evidence_links(verdict)
    verdict_line = html.Div([
        badge or html.Span("no verdict yet", className="text-muted"),
        html.Span(_text((verdict or {}).get("reason")), className="ms-2", id="fl-reason"),
        html.Span([html.Span("Evidence: ", className="text-muted ms-2"), *_spaced(evidence)],
                  id="fl-evidence") if evidence else None,
    ], className="fi-verdict-line mb-2")
    facts = [
        _fact("Jobs", f"{int(summary.get('jobs') or 0):,}", id="fl-jobs"),
        _fact("Runs", f"{int(summary.get('runs') or 0):,}", id="fl-runs"),
        _fact("First seen", _when(summary.get("first_seen"), now)),
        _fact("Last seen", _when(summary.get("last_seen"), now)),
    ]
    lists = html.Dl([part for label, key in (("Repositories", "repos"), ("Branches", "branches"),
                                             ("Authors", "authors"), ("Workflows", "workflows"),
                                             ("Job names", "job_names"))
                     for part in (html.Dt(label), html.Dd(_inline_names(summary.get(key)), id=f"fl-{key}"))],
                    className="fi-lists mb-0")
    return html.Div([
        html.Pre(clip(_text(summary.get("text")), 2000) or "(empty line)", className="fi-headline", id="fl-line"),
        html.Div([class_badge(summary.get("klass")),
                  html.Span(["rule ", html.Code(clip(one_line(summary.get("rule")), 120))],
                            className="small text-muted ms-2", id="fl-rule")], className="mb-2"),
        verdict_line,
        html.Div(facts, className="fi-facts mb-2"),
        lists,
    ], className="p-3", id="fl-summary")


def _spaced(items) -> list:
    out = []
    for item in items:
        if out:
            out.append(" ")
        out.append(item)
    return out


OCCURRENCE_HEADS = ("When", "Repository", "Workflow", "Job", "Branch", "Commit", "Author", "Verdict")


def excerpt_block(excerpt, line_text=None, *, element_id=None) -> html.Details:
    """The kept log lines in a collapsed `<details>`, as text; the lines holding the failure line are marked."""
    text = as_text(_ANSI.sub("", excerpt or ""))
    cut = len(text) > EXCERPT_MAX
    text = text[:EXCERPT_MAX]
    needle = " ".join(_text(line_text).split())
    children, start, count = [], 0, text.count("\n") + 1
    if len(needle) >= 8:  # a short line would mark half the log
        pos = 0
        for row in text.splitlines(keepends=True):
            if needle in " ".join(row.split()):
                body = row.rstrip("\r\n")  # the mark spans the line's width (CSS), its line break stays text
                children += [text[start:pos], html.Mark(body, className="fi-mark")]
                start = pos + len(body)
            pos += len(row)
    children.append(text[start:])
    if cut:
        children.append("\n… (cut here)")
    summary = html.Summary(f"Log excerpt · {count:,} line{'s' if count != 1 else ''} kept")
    return html.Details([summary, html.Pre([c for c in children if c != ""], className="fi-excerpt")],
                        className="fi-excerpt-box", **({"id": element_id} if element_id else {}))


def occurrences_table(occurrences: list[dict], *, now: float | None = None, show_repo: bool = True) -> html.Div:
    """The group's failed jobs, newest first; under each, its kept log excerpt (collapsed)."""
    now = time.time() if now is None else now
    heads = [h for h in OCCURRENCE_HEADS if show_repo or h != "Repository"]
    body = []
    first = _text(occurrences[0].get("text")) if occurrences else ""
    for i, occ in enumerate(occurrences):
        job = clip(one_line(occ.get("job_name")), 120) or "(unnamed job)"
        attempt = occ.get("attempt")
        title = clip(one_line(occ.get("title")), 120)
        cells = [html.Td(_when(occ.get("createtime"), now))]
        if show_repo:
            cells.append(html.Td(clip(one_line(occ.get("repo")), 120)))
        cells += [
            html.Td(link(clip(one_line(occ.get("workflow")), 120) or "—", occ.get("run_url"), title="the run")),
            html.Td([link(job, occ.get("job_url"), className="fi-job-link", title="the job's log on GitHub"),
                     html.Span(f" · attempt {attempt}", className="text-muted small")
                     if isinstance(attempt, int) and attempt > 1 else None]),
            html.Td(clip(one_line(occ.get("branch")), NAME_SHOWN), title=one_line(occ.get("branch"))),
            html.Td([short_sha_link(occ.get("repo"), occ.get("sha"), className="font-monospace me-2"),
                     html.Span(title, title=_text(occ.get("title")))], className="fi-commit"),
            html.Td(clip(one_line(occ.get("author")), NAME_SHOWN) or "—"),
            html.Td([verdict_badge(occ.get("verdict")) or html.Span("—", className="text-muted"), " ",
                     *_spaced(evidence_links(occ.get("verdict"), limit=3))], className="fi-occ-verdict"),
        ]
        body.append(html.Tr(cells, className="fi-occ-row", **{"data-job": _text(occ.get("job"))}))
        own = _text(occ.get("text"))
        # The same fingerprint, yet the line may differ (numbers, paths...): shown when it is not the newest's.
        lines = [html.Div(clip(" ".join(own.split()), LINE_SHOWN), className="fi-occ-line", title=own)
                 if own != first else None]
        if occ.get("excerpt"):
            lines.append(excerpt_block(occ.get("excerpt"), own, element_id=f"fl-excerpt-{i}"))
        else:
            lines.append(html.Div("No log excerpt kept for this job.", className="small text-muted"))
        body.append(html.Tr(html.Td(lines, colSpan=len(heads), className="fi-occ-detail"),
                            className="fi-occ-detail-row"))
    head = html.Thead(html.Tr([html.Th(h) for h in heads]))
    return html.Div(dbc.Table([head, html.Tbody(body)], className="mb-0 align-middle fi-table fi-occ-table",
                              size="sm", id="fl-occurrences-table"), className="table-responsive")
