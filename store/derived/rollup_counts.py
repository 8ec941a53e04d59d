"""Writing rollup counts by difference: per pair, per workflow-day and the duration histograms.

`store.derived.rollups` recomputes what a write touched and hands the differences here; each is an
upsert that adds to the stored count (and deletes a row that falls to zero), in statements
compiled once per dialect (`store.prepared`).
"""
from functools import lru_cache

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import Connection

from store.prepared import execute_prepared
from store.schema import ROLLUP_COUNTS as COUNTS, rollup_days, rollup_hist, rollup_pairs, rollup_workflow_days


@lru_cache(maxsize=4)
def _count_statements(dialect_name: str):
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if dialect_name == "postgresql" else sqlite
    out = {}
    for name, table, keys in (("pair", rollup_pairs, ("branch", "workflow")),
                              ("workflow_day", rollup_workflow_days, ("workflow", "day"))):
        ins = dialect.insert(table)
        out[name] = ins.on_conflict_do_update(index_elements=[table.c[k] for k in keys],
                                              set_={c: table.c[c] + ins.excluded[c] for c in COUNTS})
    p = rollup_pairs.c
    out["pair_last_run"] = (rollup_pairs.update()
                            .where(p.branch == bindparam("b"), p.workflow == bindparam("wf"))
                            .values(last_run=select(func.max(rollup_days.c.last_run))
                                    .where(rollup_days.c.branch == bindparam("b"),
                                           rollup_days.c.workflow == bindparam("wf")).scalar_subquery()))
    out["pair_empty"] = delete(rollup_pairs).where(p.branch == bindparam("b"), p.workflow == bindparam("wf"),
                                                   p.runs <= 0)
    wd = rollup_workflow_days.c
    out["workflow_day_empty"] = delete(rollup_workflow_days).where(wd.workflow == bindparam("wf"),
                                                                   wd.day == bindparam("dd"), wd.runs <= 0)
    return out


def add_counts(conn: Connection, branch: int, workflow: int, day: int, old_row, new_row) -> None:
    """Move the pair's and the workflow-day's totals by the change of one day row."""
    delta = {c: (new_row[c] if new_row else 0) - (old_row[c] if old_row else 0) for c in COUNTS}
    repo = (new_row or old_row)["repo"]
    s = _count_statements(conn.dialect.name)
    if any(delta.values()):
        execute_prepared(conn, "rollup_pair", s["pair"], {"branch": branch, "workflow": workflow, "repo": repo,
                                                          **delta})
        execute_prepared(conn, "rollup_workflow_day", s["workflow_day"],
                         {"workflow": workflow, "day": day, "repo": repo, **delta})
        execute_prepared(conn, "rollup_pair_empty", s["pair_empty"], {"b": branch, "wf": workflow})
        execute_prepared(conn, "rollup_workflow_day_empty", s["workflow_day_empty"], {"wf": workflow, "dd": day})
    execute_prepared(conn, "rollup_pair_last_run", s["pair_last_run"], {"b": branch, "wf": workflow})


@lru_cache(maxsize=4)
def _hist_statements(dialect_name: str):
    from sqlalchemy.dialects import postgresql, sqlite

    h = rollup_hist.c
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    ins = dialect.insert(rollup_hist)
    add = ins.on_conflict_do_update(index_elements=list(rollup_hist.primary_key.columns),
                                    set_={"n": rollup_hist.c.n + ins.excluded.n})
    empty = delete(rollup_hist).where(h.span == bindparam("s"), h.branch == bindparam("br"),
                                      h.workflow == bindparam("wf"), h.kind == bindparam("k"),
                                      h.period == bindparam("p"), h.bucket == bindparam("b"), h.n <= 0)
    return add, empty


def add_hist(conn: Connection, branch: int, rows: dict) -> None:
    """Add {(span, workflow, kind, period, bucket): n} to `branch`'s histogram rows."""
    if not rows:
        return
    add, empty = _hist_statements(conn.dialect.name)
    execute_prepared(conn, "rollup_hist_add", add,
                     [{"span": s, "branch": branch, "workflow": wf, "kind": k, "period": p, "bucket": b, "n": n}
                      for (s, wf, k, p, b), n in rows.items()])
    shrunk = [{"s": s, "br": branch, "wf": wf, "k": k, "p": p, "b": b}
              for (s, wf, k, p, b), n in rows.items() if n < 0]
    if shrunk:
        execute_prepared(conn, "rollup_hist_empty", empty, shrunk)
