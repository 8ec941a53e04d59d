"""A person's saved views and pins: `/api/views` (list, save, delete) and `/api/pins` (read, set one repository's),
and the share link `/v/<slug>`, which opens a saved view for anyone who may read the dashboard.

They belong to whoever the request is (a signed-in login, a dashboard login, a token, or "local" on an
unprotected server's own host); an anonymous reader of an unprotected server has none (403)."""
from flask import Blueprint, has_request_context, jsonify, redirect, request

from dashapp.api import _services, bp
from dashapp.api.params import ApiError, check_known, json_object, path_id
from dashapp.security import identity
from dashapp.signin import message_page
from domain.text import is_relative_link
from store import savedviews
from store.engine import writing

MAX_NAME = 100
MAX_LINK = 2000
NOT_PAGES = ("/api/", "/_dash", "/ws", "/metrics", "/assets/", "/v/", "/signin", "/signout", "/signed-out", "/webhook")
share = Blueprint("share", __name__)


def owner() -> str | None:
    """Whose views and pins this request reads and writes; None for an anonymous reader (or no request)."""
    if not has_request_context():
        return None
    who = identity()
    return None if who.via == "anonymous" else who.actor


def _owner() -> str:
    found = owner()
    if found is None:
        raise ApiError("saved views and pins belong to a person: sign in, or send a token", 403)
    return found


def check_view(name, path, search) -> tuple[str, str, str]:
    """(name, path, search) of a view to save, or ValueError saying what is wrong."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME or not name.isprintable():
        raise ValueError(f"name: 1 to {MAX_NAME} printable characters")
    search = "" if search in (None, "", "?") else search
    if not isinstance(path, str) or not path.isprintable() or not is_relative_link(path) or "?" in path or "#" in path \
            or path.startswith(NOT_PAGES):
        raise ValueError("path: a page of the dashboard, e.g. /triage")
    if not isinstance(search, str) or (search and (not search.startswith("?") or not search.isprintable()
                                                   or not is_relative_link("/" + search))):
        raise ValueError('search: the page\'s query string, "?..." (or empty)')
    if len(path) + len(search) > MAX_LINK:
        raise ValueError(f"path and search: at most {MAX_LINK} characters together")
    return name.strip(), path, search


@bp.get("/views")
def list_views():
    """This person's saved views, by name, each with its `link` to share."""
    check_known(request.args, ())
    with _services().engine.connect() as conn:
        items = savedviews.views(conn, _owner())
    return jsonify(items=[{**item, "link": f"/v/{item['slug']}"} for item in items], count=len(items))


@bp.post("/views")
def save_view():
    """Save a view: `{"name": "webapp failures", "path": "/triage", "search": "?repo=acme/webapp"}` (a name
    saved again is replaced, its link kept)."""
    check_known(request.args, ())
    body = json_object(shape='{"name": "...", "path": "/triage", "search": "?repo=..."}')
    unknown = sorted(set(body) - {"name", "path", "search"})
    if unknown:
        raise ApiError(f"unknown field(s): {', '.join(unknown)}; allowed: name, path, search")
    who = _owner()
    if not isinstance(body.get("search", ""), str):
        raise ApiError('search: the page\'s query string, "?..." (or empty)')
    try:
        name, path, search = check_view(body.get("name"), body.get("path"), body.get("search", ""))
        with writing(_services().engine) as conn:
            saved = savedviews.save(conn, who, name, path, search)
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    return jsonify({**saved, "link": f"/v/{saved['slug']}"}), 201


@bp.delete("/views/<view_id>")
def delete_view(view_id: str):
    check_known(request.args, ())
    number = path_id(view_id, "view_id", "a saved view")
    who = _owner()
    with writing(_services().engine) as conn:
        if not savedviews.remove(conn, who, number):
            raise ApiError(f"you have no saved view {view_id}", 404)
    return "", 204


@bp.get("/pins")
def list_pins():
    """This person's pinned repositories and workflows (per repository)."""
    check_known(request.args, ())
    with _services().engine.connect() as conn:
        return jsonify(savedviews.pinned(conn, _owner()))


@bp.put("/pins")
def set_pins():
    """Set one repository's pins: `{"repo": "acme/webapp", "pinned": true, "workflows": ["CI"]}`."""
    check_known(request.args, ())
    body = json_object(shape='{"repo": "owner/name", "pinned": true, "workflows": ["CI"]}')
    repo, pinned, workflows = body.get("repo"), body.get("pinned", False), body.get("workflows", [])
    if set(body) - {"repo", "pinned", "workflows"}:
        raise ApiError("allowed fields: repo, pinned, workflows")
    if not isinstance(repo, str) or repo.count("/") != 1 or not repo.isprintable() or len(repo) > 200:
        raise ApiError("repo: owner/name")
    if not isinstance(pinned, bool):
        raise ApiError("pinned: true or false")
    if not isinstance(workflows, list) or not all(isinstance(w, str) and 0 < len(w) <= 200 for w in workflows):
        raise ApiError("workflows: a list of workflow names")
    who = _owner()
    try:
        with writing(_services().engine) as conn:
            savedviews.set_pins(conn, who, repo, pinned, workflows)
            found = savedviews.pinned(conn, who)
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    return jsonify(found)


@share.get("/v/<slug>")
def open_shared(slug: str):
    """A saved view's share link: to the page with its filters."""
    with _services().engine.connect() as conn:
        found = savedviews.by_slug(conn, slug[:64])
    if found is None:
        return message_page(404, "No such view", "This saved view was deleted, or its link is not whole.",
                            ("/", "Open the dashboard"))
    return redirect(found["path"] + found["search"], code=302)
