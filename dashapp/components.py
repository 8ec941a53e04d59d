"""Layout pieces every view shares: metric cards, empty states, filter bar, CSV link.

Pure functions of their arguments (no queries), so each view composes them
and tests can render them without a server.
"""
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp import urlstate
from domain.text import as_text, clip, html_text, is_relative_link, link_url

DASH = "—"


def format_duration(seconds) -> str:
    """`seconds` as "8m 12s" ("45s", "2h 05m", "3d 4h"); None or NaN as "—"."""
    if seconds is None:
        return DASH
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return DASH
    if seconds != seconds:  # NaN
        return DASH
    total = int(round(max(seconds, 0)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_rate(value) -> str:
    """A rate in [0, 1] as "93.2 %"; None (no decisive runs) as "—", never 0 %."""
    if value is None or value != value:
        return DASH
    return f"{value * 100:.1f} %"


def metric_card(title: str, value: str, detail: str | None = None, *, card_id: str | None = None,
                tone: str | None = None) -> dbc.Card:
    """One card: a small title, a big value, an optional detail line."""
    body = [html.Div(title, className="metric-title"), html.Div(value, className="metric-value")]
    if detail:
        body.append(html.Div(detail, className="metric-detail"))
    kwargs = {"id": card_id} if card_id else {}
    return dbc.Card(dbc.CardBody(body), className=f"metric-card h-100 {f'metric-{tone}' if tone else ''}".strip(),
                    **kwargs)


def metric_cards_row(cards: dict, extra: list | None = None) -> dbc.Row:
    """The cards of `store.queries.cards.metric_cards` (plus `extra` cards) as one responsive row."""
    cards = cards or {}
    decisive = cards.get("decisive") or 0
    failed_tone = "bad" if (cards.get("failure_rate") or 0) > 0 else None
    stale = cards.get("stale") or 0
    items = [
        metric_card("Success rate", format_rate(cards.get("success_rate")),
                    f"{cards.get('success', 0)} of {decisive} decisive runs", card_id="card-success-rate",
                    tone="good" if cards.get("success_rate") is not None else None),
        metric_card("Failure rate", format_rate(cards.get("failure_rate")),
                    f"{cards.get('failed', 0)} failed, {cards.get('cancelled', 0)} cancelled",
                    card_id="card-failure-rate", tone=failed_tone),
        metric_card("Average build time", format_duration(cards.get("build_time_avg")),
                    f"p50 {format_duration(cards.get('build_time_p50'))} · "
                    f"p90 {format_duration(cards.get('build_time_p90'))}", card_id="card-build-time"),
        metric_card("Active builds", str(cards.get("active", 0)),
                    f"+ {stale} stale" if stale else "none stale", card_id="card-active"),
        metric_card("Queue time p50", format_duration(cards.get("queue_time_p50")),
                    f"p90 {format_duration(cards.get('queue_time_p90'))}", card_id="card-queue-time"),
    ]
    items += list(extra or [])
    return dbc.Row([dbc.Col(item, xs=6, md=4, xl=True, className="mb-3") for item in items],
                   className="metric-cards g-3")


def empty_state(message: str, *, hint: str | None = None, **kwargs) -> html.Div:
    """A clear, friendly "nothing to show" block (never an empty chart or a traceback)."""
    children = [html.Div("∅", className="empty-icon", **{"aria-hidden": "true"}),
                html.Div(message, className="empty-message")]
    if hint:
        children.append(html.Div(hint, className="empty-hint text-muted"))
    kwargs.setdefault("className", "empty-state")
    return html.Div(children, **kwargs)


OPTION_LABEL = 120  # characters of a name a selector shows
OPTION_MAX = 1_000  # a longer name is no option: Dash's dropdown crashed the browser's tab on a 65,000-character one


def name_options(values) -> list[dict]:
    """Selector options for data-derived names: each labelled with its text clipped, the value whole; a name
    longer than `OPTION_MAX` is left out (it still shows everywhere else, it cannot be picked here)."""
    return [{"label": clip(as_text(v), OPTION_LABEL), "value": v} for v in values if option_value(v) is not None]


def option_value(value):
    """`value` as a selector's value: None (nothing picked) for a name too long to be an option."""
    return None if isinstance(value, str) and len(value) > OPTION_MAX else value


def filter_bar(prefix: str, *, branches=(), workflows=(), branch=None, workflow=None, window=None,
               extra: list | None = None) -> dbc.Row:
    """Branch, workflow and time-window selectors with ids `<prefix>-branch`, `-workflow`, `-window`."""
    window_options = [{"label": label, "value": value} for value, label, _s in urlstate.WINDOWS]
    cols = [
        dbc.Col([dbc.Label("Branch", html_for=f"{prefix}-branch", className="small mb-0"),
                 dcc.Dropdown(id=f"{prefix}-branch", options=name_options(branches), value=option_value(branch),
                              placeholder="Branch", clearable=False)], md=3),
        dbc.Col([dbc.Label("Workflow", html_for=f"{prefix}-workflow", className="small mb-0"),
                 dcc.Dropdown(id=f"{prefix}-workflow", options=name_options(workflows), value=option_value(workflow),
                              placeholder="All workflows", clearable=True)], md=3),
        dbc.Col([dbc.Label("Time window", html_for=f"{prefix}-window", className="small mb-0"),
                 dcc.Dropdown(id=f"{prefix}-window", options=window_options,
                              value=window or urlstate.DEFAULT_WINDOW, clearable=False)], md=2),
    ]
    cols += [dbc.Col(item, md="auto") for item in (extra or [])]
    return dbc.Row(cols, className="filter-bar g-2 mb-3 align-items-end")


def filters_query(filters) -> str:
    """`filters` (a `Filters` or a dict) as a query string, `since`/`until` included."""
    values = filters.as_dict() if hasattr(filters, "as_dict") else dict(filters or {})
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def download_csv_link(filters) -> html.A:
    """A link to `/api/builds.csv` for the same selection."""
    query = filters_query(filters)
    return html.A("Download CSV", href=f"/api/builds.csv?{query}" if query else "/api/builds.csv",
                  id="download-csv", className="btn btn-outline-secondary btn-sm")


# --- static HTML of a layout (the page's first screen, before its JavaScript runs) -------------

_VOID = {"input", "br", "hr", "img"}
# The html.* props drawn as attributes besides class, href, target, title, style, data-*, aria-* and role
# (React's name: the HTML one).  Nothing that runs script or loads from elsewhere.
_HTML_ATTRS = {"colSpan": "colspan", "rowSpan": "rowspan", "scope": "scope", "htmlFor": "for",
               "tabIndex": "tabindex", "hidden": "hidden", "open": "open", "dateTime": "datetime",
               "lang": "lang", "dir": "dir", "alt": "alt", "width": "width", "height": "height",
               "rel": "rel", "download": "download", "type": "type", "disabled": "disabled"}
_DBC_CLASSES = {
    "Card": "card", "CardHeader": "card-header", "CardBody": "card-body", "Row": "row",
    "Container": "container", "NavbarBrand": "navbar-brand", "NavItem": "nav-item", "NavLink": "nav-link",
    "Label": "form-label",
}
_DBC_TAGS = {"NavbarBrand": "a", "NavLink": "a", "Label": "label", "Nav": "ul", "NavItem": "li", "Navbar": "nav"}


def _href(value) -> str | None:
    """An href the static page may hold: an http(s) URL (`link_url`) or a path of this site; else none."""
    return value if is_relative_link(value) else link_url(value)


def _css(style: dict | None) -> str | None:
    if not style:
        return None
    return "; ".join(f"{''.join('-' + c.lower() if c.isupper() else c for c in k)}: {v}" for k, v in style.items())


def static_html(node, *, ids: bool = False) -> str:
    """`node` (Dash components, strings, lists) as HTML text that looks like what the renderer draws.

    For a first paint before the page's JavaScript has run: html.* elements, links, Bootstrap
    layout components and the app's raw-HTML tables become their HTML; interactive widgets
    become a static box showing their value; stores, graphs and grids become nothing (their
    sections fill in when the app starts).  Every text and attribute is escaped (`html_text`), an href
    is kept only when it is http(s) or a path of this site; ids are left out unless `ids` (the live
    page, drawn over this one later, owns them).
    """
    def esc(text) -> str:
        return html_text(text)

    def attrs(**values) -> str:
        return "".join(f' {name}="{esc(value)}"' for name, value in values.items()
                       if value not in (None, "", False))

    def render(item) -> str:
        if item is None or isinstance(item, bool):
            return ""
        if isinstance(item, (str, int, float)):
            return esc(item)
        if isinstance(item, (list, tuple)):
            return "".join(render(i) for i in item)
        namespace, kind = getattr(item, "_namespace", ""), getattr(item, "_type", "")
        given = vars(item)  # the props set (a missing one read through getattr costs an exception)
        props = {k: given[k] for k in getattr(item, "_prop_names", ()) if k in given}
        extra = {k: v for k, v in given.items() if k.startswith(("data-", "aria-")) or k == "role"}
        children = props.get("children")
        common = {"id": props.get("id") if ids and isinstance(props.get("id"), str) else None,
                  "title": props.get("title"), "style": _css(props.get("style")), **extra}
        cls = props.get("className") or props.get("class_name")
        if namespace == "dash_html_components":
            tag = kind.lower()
            href = _href(props.get("href"))
            more = {_HTML_ATTRS[k]: (_HTML_ATTRS[k] if v is True else v) for k, v in props.items()
                    if k in _HTML_ATTRS and v is not None and not isinstance(v, (dict, list))}
            tag_attrs = attrs(**{"class": cls}, href=href, target=props.get("target"), **more, **common)
            return f"<{tag}{tag_attrs}>" + ("" if tag in _VOID else f"{render(children)}</{tag}>")
        if namespace == "dash_core_components":
            if kind == "Link":
                # data-dash-link: inside the live page's raw HTML (`dashapp.compact`), `assets/rawhtml.js`
                # follows it in place as dcc.Link would; in the static first screen it is a plain link.
                link = attrs(href=_href(props.get("href")), **common, **{"data-dash-link": "1"})
                return f'<a{link}{attrs(**{"class": cls})}>{render(children)}</a>'
            if kind == "Markdown" and props.get("dangerously_allow_html"):
                # Only the app's own tables use raw HTML, and they escape every text themselves.
                markup = children if isinstance(children, str) else ""
                return f'<div{attrs(**{"class": cls})}>{markup}</div>'
            if kind == "Dropdown":
                value = props.get("value")
                label = next((o.get("label") for o in props.get("options") or []
                              if isinstance(o, dict) and o.get("value") == value), value)
                shown = label if value not in (None, "") else (props.get("placeholder") or "")
                box = ("static-select " + (cls or "")).strip()
                return (f'<div{attrs(**{"class": box})}>'
                        f'<span class="static-select-value">{esc(shown)}</span></div>')
            if kind == "Loading":
                return render(children)
            return ""
        if namespace == "dash_bootstrap_components":
            tag = _DBC_TAGS.get(kind, "div")
            classes = [_DBC_CLASSES.get(kind, "")]
            if kind == "Container" and props.get("fluid"):
                classes = ["container-fluid"]
            elif kind == "Col":
                sizes = [f"col-{bp}-{props[bp]}" if props.get(bp) not in (True, None) else
                         (f"col-{bp}" if props.get(bp) is True else "") for bp in ("sm", "md", "lg", "xl")]
                classes = [c.replace("col-xs-", "col-") for c in sizes if c] or ["col"]
                if props.get("xs") not in (None, True):
                    classes.insert(0, f"col-{props['xs']}")
            elif kind == "Alert":
                classes = ["alert", f"alert-{props.get('color') or 'primary'}"]
                common.setdefault("role", "alert")
            elif kind == "Navbar":
                classes = ["navbar", "navbar-expand-md", f"navbar-{'dark' if props.get('dark') else 'light'}",
                           f"bg-{props.get('color')}" if props.get("color") else ""]
            elif kind == "Nav":
                classes = ["nav", "navbar-nav" if props.get("navbar") else ""]
            elif kind == "NavLink" and props.get("active") is True:
                classes.append("active")
            elif kind == "Switch":
                label = props.get("label") or ""
                box = ("form-check form-switch " + (cls or "")).strip()
                return (f'<div{attrs(**{"class": box})}>'
                        f'<input type="checkbox" class="form-check-input" disabled>'
                        f'<label class="form-check-label">{esc(label)}</label></div>')
            classes.append(cls or "")
            href = _href(props.get("href")) if tag == "a" else None
            return (f'<{tag}{attrs(**{"class": " ".join(c for c in classes if c)}, href=href, **common)}>'
                    f'{render(children)}</{tag}>')
        if kind == "RawHtml":  # dashapp.rawhtml.RawHtml: the app's own escaped markup
            tag = props.get("tag") or "div"
            return f'<{tag}{attrs(**{"class": cls}, **common)}>{props.get("html") or ""}</{tag}>'
        return ""

    return render(node)


def section(title: str, body, *, hint: str = "", section_id: str):
    """A page's section: a card with its title and a hint of what it holds, `body` edge to edge."""
    header = dbc.CardHeader(html.Div([html.H2(title, className="h6 mb-0 me-2"),
                                      html.Span(hint, className="small text-muted")],
                                     className="d-flex align-items-baseline flex-wrap"))
    return dbc.Card([header, dbc.CardBody(body, className="p-0 section-body")], className="mb-3 section",
                    id=section_id)
