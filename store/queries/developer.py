"""The Developer view's queries: unfixed failures, a page of personal build history (authors: selection.py).

A developer is a GitHub login; their runs are those `Filters(author=...)` selects (the run's
actor or its head commit's author).  Their metric cards are `store.queries.cards.metric_cards`.
"""
from __future__ import annotations  # `-> pd.DataFrame` stays unevaluated: pandas loads on first use

from dataclasses import replace

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from domain.state import FAILED
from store.lazymodules import pandas as pd
from store.queries import person
from store.queries.filters import Filters
from store.rows import run_select
from store.schema import branches, commits, person_runs, rollup_streaks, workflowruns

w = workflowruns.c
HISTORY_PAGE = 100
# Columns of the history grid that can be sorted and filtered server-side, by the grid's field name.
HISTORY_FIELDS = {
    "createtime": w.createtime, "repo": w.repo, "workflow": w.archivedworkflowname,
    "branch": w.archivedbranchname, "sha": w.archivedcommithash, "title": w.title, "event": w.event,
    "status": w.status, "conclusion": w.conclusion, "attempt": w.run_attempt, "runtime": w.runtime,
    "id": w.gitid,
}


def is_author(conn: Connection, login: str) -> bool:
    """Whether `login` has any run or commit in the store."""
    found = conn.execute(select(w.id).where(w.author == login).limit(1)).first()
    return found is not None or conn.execute(
        select(commits.c.id).where(commits.c.author == login).limit(1)).first() is not None


def unfixed_failures(conn: Connection, filters: Filters) -> pd.DataFrame:
    """The author's failed runs that are still the newest decisive result of their workflow on their branch.

    Whatever the time window (a failure stays unfixed until a newer run settles it); branches
    GitHub reported deleted are left out.  Newest first; columns of `store.rows.RUN_COLUMNS`.
    The writer keeps each pair's newest decisive run when it failed (`rollup_streaks.unfixed_run`).
    """
    s = rollup_streaks.c
    scope = filters.without_window()
    if scope.author is not None:  # the person's runs first: fewer than the unfixed runs of all pairs
        p = person_runs.c
        unfixed = (select(p.run).join(rollup_streaks, s.unfixed_run == p.run)
                   .where(p.person == scope.author, p.status == "completed", p.conclusion.in_(FAILED)))
        scope = replace(scope, author=None)
    else:
        unfixed = select(s.unfixed_run).where(s.unfixed_run.is_not(None))
    deleted = select(branches.c.id).where(branches.c.id == w.branch, branches.c.deletetime.is_not(None)).exists()
    query = (run_select()
             .where(w.id.in_(unfixed), *scope.conditions(), w.status == "completed", w.conclusion.in_(FAILED),
                    ~deleted)
             .order_by(w.createtime.desc(), w.gitid.desc()))
    result = conn.execute(query)
    return pd.DataFrame.from_records([tuple(r) for r in result.all()], columns=list(result.keys()))


def _filter_condition(column, model: dict):
    """One AG Grid column filter (text or number) as SQL; None when not understood."""
    kind, value = model.get("type"), model.get("filter")
    if value in (None, ""):
        return None
    if model.get("filterType") == "number":
        ops = {"equals": column == value, "notEqual": column != value, "greaterThan": column > value,
               "greaterThanOrEqual": column >= value, "lessThan": column < value, "lessThanOrEqual": column <= value}
        return ops.get(kind)
    text = str(value).lower()
    lowered = func.lower(column)
    ops = {"contains": lowered.contains(text, autoescape=True), "notContains": ~lowered.contains(text, autoescape=True),
           "equals": lowered == text, "notEqual": lowered != text,
           "startsWith": lowered.startswith(text, autoescape=True), "endsWith": lowered.endswith(text, autoescape=True)}
    return ops.get(kind)


def grid_conditions(filter_model: dict | None) -> list:
    """AG Grid's `filterModel` (known columns, simple or two-condition filters) as SQL conditions."""
    out = []
    for field, model in (filter_model or {}).items():
        column = HISTORY_FIELDS.get(field)
        if column is None or not isinstance(model, dict):
            continue
        if "conditions" in model or "condition1" in model:
            parts = model.get("conditions") or [model.get("condition1"), model.get("condition2")]
            parts = [c for c in (_filter_condition(column, p) for p in parts if isinstance(p, dict)) if c is not None]
            if parts:
                out.append(or_(*parts) if model.get("operator") == "OR" else and_(*parts))
        else:
            condition = _filter_condition(column, model)
            if condition is not None:
                out.append(condition)
    return out


def history(conn: Connection, filters: Filters, *, start: int = 0, end: int = HISTORY_PAGE,
            sort_model=None, filter_model=None) -> tuple[list[dict], int]:
    """Rows `start`..`end` of the author's runs (latest attempts), newest first unless `sort_model` says;
    and how many rows match in all.  Rows are `RUN_COLUMNS` dicts."""
    conditions = [*filters.conditions(), *grid_conditions(filter_model)]
    order = []
    for sort in sort_model or []:
        column = HISTORY_FIELDS.get(sort.get("colId"))
        if column is not None:
            order.append(column.desc() if sort.get("sort") == "desc" else column.asc())
    order += [w.createtime.desc(), w.gitid.desc()]
    start, end = max(int(start), 0), max(int(end), 0)
    query = run_select().where(*conditions).order_by(*order)
    if person.served(filters) and len(order) == 2:
        # Newest first: walk the person's rows in their (person, createtime) order, each run by
        # its id, until the page is full, instead of reading and sorting all their runs.
        p = person_runs.c
        query = (run_select().join(person_runs, p.run == w.id)
                 .where(*replace(filters, author=None).conditions(), *grid_conditions(filter_model),
                        *person.conditions(filters))
                 .order_by(p.createtime.desc(), w.gitid.desc()))
    query = query.offset(start).limit(max(end - start, 0))
    rows = [dict(r) for r in conn.execute(query).mappings().all()]
    if person.served(filters) and not grid_conditions(filter_model):
        total = person.run_count(conn, filters)  # an index range of the person's rows, not run by run
    else:
        total = conn.execute(select(func.count()).select_from(workflowruns).where(*conditions)).scalar_one()
    return rows, total
