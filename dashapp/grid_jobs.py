"""The commit grid's expanded workflows: a workflow's header toggles its job columns, drawn in place.

`expand=` in the URL lists the expanded workflows (comma-joined; a name holding a comma is matched
whole against the repository's workflows, see `expanded_names`).  The header of a workflow column
is a link to the same page with that workflow added to or removed from `expand=`
(`assets/gridexpand.js` follows it without reloading the page; the static first screen follows it
as a plain link).  Each expanded workflow is followed by one column per job group
(`store.queries.waterfall_jobs.job_groups`): the worst member's glyph, linked to that job, and a
hover naming every member with its result and, for a failed one, its failure line.

Markup only, escaped like the rest of the grid (`dashapp.tables._esc`).
"""
from dashapp.components import format_duration
from dashapp.shell import with_args
from dashapp.tables import (FAILED_GLYPHS, GLYPHS, HOVER_LINE, HOVER_NAME, TOKEN_NOTICE, VERDICT_WORDS, _attrs,
                            _clean, _esc, _glyph_markup)
from domain.text import clip, link_url, one_line

MAX_EXPANDED = 20  # workflows one URL may expand (a page shows a repository's few workflows)
HOVER_MEMBERS = 12  # members named in a job cell's hover


def expanded_names(values, known) -> list[str]:
    """The workflows `expand=` names (`values`: its value or values), in the order of `known`.

    Each value is split at commas, and consecutive pieces are joined back greedily (longest first)
    when they spell a known workflow, so "Build, test" survives being joined with "CI".  Names that
    are not workflows of the repository are left out.
    """
    known = list(known or [])
    names = set(known)
    if isinstance(values, str):
        values = [values]
    found = set()
    for value in values if isinstance(values, (list, tuple)) else []:
        if not isinstance(value, str):
            continue
        if value.strip() in names:
            found.add(value.strip())
            continue
        pieces, i = value.split(","), 0
        while i < len(pieces):
            for end in range(len(pieces), i, -1):
                name = ",".join(pieces[i:end]).strip()
                if name in names:
                    found.add(name)
                    i = end
                    break
            else:
                i += 1
    return [name for name in known if name in found][:MAX_EXPANDED]


def toggle_href(search: str | None, expanded: list[str], workflow: str) -> str:
    """The page with `workflow` added to (or, when expanded, removed from) `expand=`."""
    names = [n for n in expanded if n != workflow] if workflow in expanded else [*expanded, workflow]
    return "/" + with_args(search, expand=",".join(names) or None)


def header(workflow: str, href: str | None, is_open: bool) -> str:
    """A workflow column's header: its name, a link that expands or collapses it when `href` is given."""
    name = f'<div class="wf-col-name">{_esc(workflow)}</div>'
    if href is None:
        return f'<th{_attrs(title=workflow, class_="wf-col")}>{name}</th>'
    action = "Hide" if is_open else "Show"
    # The caret is drawn by CSS (`assets/waterfall.css`): the header's text stays the workflow's name.
    link = (f'<a{_attrs(href=href, class_="wf-expand", aria_expanded="true" if is_open else "false")}'
            f'{_attrs(data_workflow=workflow, title=f"{action} the jobs of {workflow}")}>'
            f'<span class="wf-col-name">{_esc(workflow)}</span></a>')
    css = "wf-col wf-col-open" if is_open else "wf-col"
    return f'<th{_attrs(class_=css)}>{link}</th>'


def job_headers(workflow: str, expanded: dict) -> str:
    """The headers of the job group columns of `expanded` (a `job_groups` entry), each hover naming the
    jobs seen in the group on the page."""
    members: dict = {}
    for (_commit, group), cell in expanded["cells"].items():
        members.setdefault(group, set()).update(job["name"] for job in cell["members"])
    out = []
    for i, group in enumerate(expanded["groups"]):
        names = sorted(members.get(group) or ())
        title = f"{workflow} / {group}" + (f": {', '.join(names)}" if names and names != [group] else "")
        css = "wf-job-col" + (" wf-job-first" if i == 0 else "")
        out.append(f'<th{_attrs(title=clip(title, 600), class_=css)}><div class="wf-col-name">{_esc(group)}</div></th>')
    return "".join(out)


def _member_line(job: dict, failed: dict) -> str:
    """"test (ubuntu) — failure — FAILED tests/test_x.py::test_y (new)": a member's result and line."""
    name = clip(one_line(job.get("name")) or "(unnamed job)", HOVER_NAME)
    state = GLYPHS.get(job.get("glyph"), job.get("glyph") or "") or "not run"
    text = f"{name} — {state}"
    if _clean(job.get("duration")) is not None and job.get("glyph") not in ("?", "Q", ""):
        text += f" ({format_duration(job['duration'])})"
    about = failed.get(job.get("job"))
    lines = (about or {}).get("lines") or []
    if lines:
        primary = min(lines, key=lambda line: line.get("ordinal") or 0)
        verdict = VERDICT_WORDS.get(((about or {}).get("verdict") or {}).get("kind"))
        text += f" — {clip(one_line(primary.get('text')), HOVER_LINE)}" + (f" ({verdict})" if verdict else "")
    return text


def job_title(workflow: str, group: str, cell: dict, failed: dict, *, no_token: bool = False) -> str:
    """The hover of a job group cell: the group's state, then one line per member (worst first)."""
    members = cell["members"]
    state = GLYPHS.get(cell["glyph"], cell["glyph"])
    head = f"{workflow} / {group}: {state}" + (f" · {len(members)} jobs" if len(members) > 1 else "")
    lines = [head, *(_member_line(job, failed) for job in members[:HOVER_MEMBERS])]
    if len(members) > HOVER_MEMBERS:
        lines.append(f"+{len(members) - HOVER_MEMBERS} more jobs")
    missing = any(job.get("glyph") in FAILED_GLYPHS and not (failed.get(job.get("job")) or {}).get("lines")
                  for job in members)
    if no_token and missing:
        lines.append(TOKEN_NOTICE)
    return "\n".join(lines)


def job_cells(workflow: str, groups: list[str], cells: dict, commitid, failed: dict, *,
              no_token: bool = False) -> str:
    """One commit's job group cells of `workflow`; `failed`: {job gitid: a `run_failures` job dict}."""
    out = []
    for i, group in enumerate(groups):
        cell = cells.get((commitid, group))
        css = "wf-cell wf-job-cell" + (" wf-job-first" if i == 0 else "")
        attrs = _attrs(class_=css, data_workflow=workflow, data_job=group)
        if cell is None:
            out.append(f'<td{attrs} title="{_esc(f"{workflow} / {group}: not run")}"></td>')
            continue
        glyph = cell["glyph"] or ""
        label = _esc(job_title(workflow, group, cell, failed, no_token=no_token))
        css_glyph, esc_glyph = _glyph_markup(glyph)
        url = link_url(_clean(cell["members"][0].get("url")))
        if url:
            content = (f'<a href="{_esc(url)}" target="_blank" rel="noopener" class="{css_glyph}" title="{label}" '
                       f'aria-label="{label}">{esc_glyph}</a>')
        else:
            content = f'<span class="{css_glyph}" title="{label}" aria-label="{label}">{esc_glyph}</span>'
        out.append(f'<td{attrs} data-glyph="{esc_glyph}">{content}</td>')
    return "".join(out)


def failed_jobs(failures: dict | None) -> dict:
    """{job gitid: job dict} of `run_failures`' {run: [failed jobs]}."""
    return {job.get("job"): job for jobs in (failures or {}).values() for job in jobs or []}


__all__ = ["expanded_names", "toggle_href", "header", "job_headers", "job_cells", "job_title", "failed_jobs",
           "MAX_EXPANDED"]
