"""Markup the server built, drawn by the browser in one piece: `RawHtml`, and `compact` for whole trees.

The Dash renderer's cost grows faster than the number of components it mounts: a Triage table of 3,000
html.* components (100 failure groups) took 9 s to draw in Chromium while its answer came in 0.5 s, and
the same table as one string draws in milliseconds.  So what is only markup (html.* elements and
dcc.Link whose ids, if any, no callback names) travels as escaped HTML inside one component, and the
renderer keeps what it must own: callbacks' inputs and outputs, charts, grids, dropdowns, Bootstrap widgets.
"""
import flask
from dash.development.base_component import Component

from dashapp.components import static_html


class RawHtml(Component):
    """A `<tag>` (a div by default) holding `html` as markup (`assets/rawhtml.js`).

    Unlike dcc.Markdown it needs no lazily loaded Markdown parser.  Never give it text that is not
    escaped: `static_html` and the commit grid's builders (`dashapp.tables`) escape every text.
    """
    _namespace = "buildmon_components"
    _type = "RawHtml"
    _prop_names = ["id", "html", "className", "tag", "style", "title"]
    _valid_wildcard_attributes = []
    available_properties = _prop_names
    available_wildcard_properties = []
    _base_nodes = []
    _children_props = []

    def __init__(self, html=None, id=None, className=None, tag=None, style=None, title=None,  # noqa: A002
                 **kwargs):
        given = {"html": html, "id": id, "className": className, "tag": tag, "style": style, "title": title}
        super().__init__(**{k: v for k, v in given.items() if v is not None}, **kwargs)


# What an element may carry and still become markup: the props `RawHtml` draws on the outer tag, the
# ones `static_html` draws (`components._HTML_ATTRS`), and Dash's own bookkeeping.
_OUTER = {"children", "className", "style", "title", "id"}
_DASH_ONLY = {"n_clicks", "n_clicks_timestamp", "disable_n_clicks", "key", "loading_state"}
# Below this many components a subtree stays as it is (the renderer draws a few quickly, and a
# small change then re-renders in place instead of replacing markup).
MIN_COMPONENTS = 30


def compact(node, min_components: int = MIN_COMPONENTS):
    """`node` with every largest subtree of markup of at least `min_components` components replaced by a
    `RawHtml` of the same tag, id, classes and style: the same document, a fraction of the components.
    The tree is changed in place (the callers' trees are built for one answer)."""
    return _compact(node, min_components, _callback_ids())[0]


def _callback_ids() -> frozenset | None:
    """The string ids the app serving this request names in its callbacks (inputs, states, outputs), or None
    outside one (then no element with an id becomes markup)."""
    app = flask.current_app.extensions.get("buildmon.dash") if flask.has_app_context() else None
    if app is None:
        return None
    found = getattr(app, "_buildmon_callback_ids", None)
    if found is None or found[0] != len(app.callback_map):
        ids = set()
        for output, spec in app.callback_map.items():
            for part in output.strip(".").split("..."):  # "id.prop", or "..a.p...b.q.." for several
                ids.add(part.rsplit(".", 1)[0])
            for dep in (spec.get("inputs") or []) + (spec.get("state") or []):
                ids.add(dep.get("id") if isinstance(dep, dict) else None)
        found = (len(app.callback_map), frozenset(i for i in ids if isinstance(i, str)))
        app._buildmon_callback_ids = found
    return found[1]


def _compact(node, least, used):
    """(node compacted, components in it if it is all markup else None)."""
    if isinstance(node, (list, tuple)):
        parts = [_compact(item, least, used) for item in node]
        static = all(size is not None for _item, size in parts)
        return [item for item, _size in parts], (sum(size for _item, size in parts) if static else None)
    if node is None or isinstance(node, (str, int, float, bool)):
        return node, 0
    if not isinstance(node, Component):
        return node, None
    children, size = _compact(getattr(node, "children", None), least, used)
    if children is not None:
        node.children = children
    if size is None or not _markup(node, used):
        return node, None
    size += 1
    if node._namespace == "dash_html_components" and size >= least and _outer_only(node):
        props = {k: getattr(node, k, None) for k in ("id", "className", "style", "title")}
        return RawHtml(html=static_html(children, ids=True), tag=node._type.lower(), **props), size
    return node, size


def _markup(node, used) -> bool:
    """Is `node` plain markup (`static_html` draws it as the renderer would, and no callback names it)?"""
    given = getattr(node, "id", None)
    if given is not None and (used is None or not isinstance(given, str) or given in used):
        return False
    if node._namespace == "dash_core_components":
        return node._type == "Link"
    return node._namespace == "dash_html_components"


def _outer_only(node) -> bool:
    """Has `node` no attribute `RawHtml` would not carry over to the outer tag?"""
    given = {k for k in node._prop_names if getattr(node, k, None) is not None}
    extra = [k for k in vars(node) if k.startswith(("data-", "aria-")) or k == "role"]
    return not extra and given <= _OUTER | _DASH_ONLY
