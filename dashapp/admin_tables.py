"""The Admin page's tables, from its queries' rows: repositories' webhook health, dead letters, tokens and the
audit log.  Pure functions of rows (no queries)."""
import json

import dash_bootstrap_components as dbc
from dash import html

from dashapp.components import format_duration
from dashapp.tables import ago, utc
from domain.text import clip

SHOWN = 120


def _when(epoch, now: float):
    return html.Span(ago(epoch, now), title=utc(epoch)) if epoch else "—"


def health_table(rows: list[dict], *, now: float) -> dbc.Table:
    numeric = {"Processed (24 h)", "Ignored (24 h)", "Failed (24 h)", "Processing lag (24 h)"}
    head = html.Thead(html.Tr([html.Th(h, className="text-end" if h in numeric else None)
                               for h in ("Repository", "Last delivery", "Processed (24 h)", "Ignored (24 h)",
                                         "Failed (24 h)", "Last failure", "Processing lag (24 h)")]))
    body = [html.Tr([
        html.Td(clip(r["repo"], SHOWN) if r["repo"] else html.I("none named (pings, ...)"), title=r["repo"]),
        html.Td(_when(r["last"], now)),
        html.Td(f"{r['processed']:,}", className="text-end"), html.Td(f"{r['ignored']:,}", className="text-end"),
        html.Td(f"{r['failed']:,}", className="text-end" + (" text-danger fw-semibold" if r["failed"] else "")),
        html.Td(_when(r["last_failed"], now)),
        html.Td(format_duration(r["lag"]) if r["lag"] is not None else "—", className="text-end"),
    ], className="ad-repo-row", **{"data-repo": r["repo"] or ""}) for r in rows]
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0 align-middle",
                     id="ad-health-table")


def dead_letters_table(rows: list[dict], *, now: float, can_replay: bool) -> dbc.Table:
    head = html.Thead(html.Tr([html.Th(h, className="text-end" if h == "Size" else None)
                               for h in ("Received", "Event", "Repository", "Error", "Size", "")]))
    body = []
    for r in rows:
        actions = [html.A("payload", href=f"/api/deliveries/{r['guid']}", target="_blank", rel="noopener",
                          className="me-2")]
        if can_replay:
            actions.append(dbc.Button("Replay", id={"type": "ad-replay", "guid": r["guid"]}, size="sm",
                                      color="primary", outline=True, className="ad-replay"))
        event = r["event"] + (f".{r['action']}" if r["action"] else "")
        body.append(html.Tr([
            html.Td(_when(r["received"], now)), html.Td(event), html.Td(clip(r["repo"] or "—", SHOWN)),
            html.Td(clip(r["error"] or "", 2 * SHOWN), title=r["error"] or "", className="small"),
            html.Td(f"{r['size']:,} B", className="text-end text-nowrap"), html.Td(actions, className="text-nowrap"),
        ], className="ad-dead-row", **{"data-guid": r["guid"]}))
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0 align-middle",
                     id="ad-dead-table")


def tokens_table(rows: list[dict], *, now: float) -> dbc.Table:
    """Every token issued, each live one with its Revoke button."""
    head = html.Thead(html.Tr([html.Th(h) for h in ("Id", "Name", "Role", "Issued", "By", "Expires", "State", "")]))
    body = []
    for t in rows:
        state = t["state"]
        revoke = dbc.Button("Revoke", id={"type": "ad-revoke", "id": t["id"]}, size="sm", color="danger",
                            outline=True, className="ad-revoke") if state == "live" else None
        body.append(html.Tr([
            html.Td(str(t["id"])), html.Td(clip(t["name"], SHOWN)), html.Td(t["role"]),
            html.Td(_when(t["created"], now)), html.Td(t["created_by"]),
            html.Td(utc(t["expires"]) if t["expires"] else "never"),
            html.Td(html.Span(state, className="badge " + {"live": "text-bg-success", "expired": "text-bg-secondary",
                                                           "revoked": "text-bg-danger"}[state])),
            html.Td(revoke),
        ], className="ad-token-row", **{"data-id": str(t["id"]), "data-state": state}))
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0 align-middle",
                     id="ad-tokens-table")


def audit_table(rows: list[dict], *, now: float) -> dbc.Table:
    head = html.Thead(html.Tr([html.Th(h) for h in ("When", "Who", "Role", "Action", "Target", "Detail",
                                                   "Client")]))
    body = [html.Tr([
        html.Td(_when(e["at"], now)), html.Td(clip(e["actor"], SHOWN)), html.Td(e["role"]), html.Td(e["action"]),
        html.Td(clip(e["target"] or "", SHOWN)),
        html.Td(clip(json.dumps(e["detail"], sort_keys=True), SHOWN) if e["detail"] else "", className="small"),
        html.Td(e["client"] or ""),
    ], className="ad-audit-row") for e in rows]
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0 align-middle",
                     id="ad-audit-table")


def jobs_table(rows: list[dict], *, now: float) -> dbc.Table:
    """Backfills and reconciles, newest first: state, what was written so far, when, by whom."""
    numeric = {"Runs written", "Already stored", "Jobs"}
    head = html.Thead(html.Tr([html.Th(h, className="text-end" if h in numeric else None)
                               for h in ("Repository", "Kind", "State", "Runs written", "Already stored", "Jobs",
                                         "Started", "By", "Took")]))
    badge = {"running": "text-bg-primary", "done": "text-bg-success", "failed": "text-bg-danger",
             "interrupted": "text-bg-warning"}
    body = []
    for j in rows:
        p = j["progress"] or {}
        took = (j["finished"] or now) - j["started"]
        state = html.Span(j["state"], className=f"badge {badge.get(j['state'], 'text-bg-secondary')}",
                          title=j["error"] or None)
        body.append(html.Tr([
            html.Td(j["target"]), html.Td(j["kind"]), html.Td([state, html.Div(clip(j["error"], SHOWN), className="small text-danger")
                                           if j["error"] else None]),
            html.Td(f"{p.get('runs', 0):,}", className="text-end ad-job-runs"),
            html.Td(f"{p.get('skipped', 0):,}", className="text-end"), html.Td(f"{p.get('jobs', 0):,}",
                                                                               className="text-end"),
            html.Td(_when(j["started"], now)), html.Td(j["actor"]), html.Td(format_duration(took)),
        ], className="ad-job-row", **{"data-job": str(j["id"]), "data-state": j["state"], "data-kind": j["kind"]}))
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0 align-middle",
                     id="ad-jobs-table")


def archives_table(months: list[dict]) -> dbc.Table:
    """The archived months (store.archive.months): rows per kind and the files' size."""
    columns = (("Runs", "workflowruns"), ("Jobs", "jobs"), ("Steps", "steps"), ("Deliveries", "deliveries"))
    head = html.Thead(html.Tr([html.Th("Month"), html.Th("Batches", className="text-end")]
                              + [html.Th(label, className="text-end") for label, _name in columns]
                              + [html.Th("Size", className="text-end")]))
    body = [html.Tr([html.Td(m["month"]), html.Td(f"{m['parts']:,}", className="text-end")]
                    + [html.Td(f"{m['rows'].get(name, 0):,}", className="text-end") for _label, name in columns]
                    + [html.Td(f"{m['bytes'] / 1e6:,.1f} MB", className="text-end text-nowrap")],
                    className="ad-archive-row", **{"data-month": m["month"]}) for m in months]
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0 align-middle",
                     id="ad-archives-table")
