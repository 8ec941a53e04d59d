"""Each person's saved views and pins (tables `saved_views`, `pins`).

A saved view is a page of the dashboard with its query string (the filters live in the URL), under a name its
owner chose; saving a name again replaces it and keeps its share link.  The link (/v/<slug>) opens the view for
anyone who may read the dashboard.  Pins are repositories and workflows (per repository) a person cares about:
the Waterfall lists them first.
"""
import secrets
import time

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection

from store.schema import pins, saved_views
from store.sqlfunctions import insert

MAX_VIEWS = 200  # per person: a list a menu can show
MAX_PINS = 200
v = saved_views.c


def _row(row) -> dict:
    return {"id": row.id, "name": row.name, "path": row.path, "search": row.search, "slug": row.slug,
            "created": row.created}


def views(conn: Connection, owner: str) -> list[dict]:
    """The owner's saved views, by name."""
    return [_row(r) for r in conn.execute(select(saved_views).where(v.owner == owner).order_by(v.name, v.id))]


def save(conn: Connection, owner: str, name: str, path: str, search: str, *, now: float | None = None) -> dict:
    """Save (or replace, by name) a view; the saved row.  Raises ValueError past MAX_VIEWS."""
    now = time.time() if now is None else now
    found = conn.execute(select(saved_views).where(v.owner == owner, v.name == name)).first()
    if found is not None:
        conn.execute(update(saved_views).where(v.id == found.id).values(path=path, search=search, created=now))
        return {**_row(found), "path": path, "search": search, "created": now}
    if len(views(conn, owner)) >= MAX_VIEWS:
        raise ValueError(f"at most {MAX_VIEWS} saved views each: delete one first")
    slug = secrets.token_urlsafe(9)
    new_id = conn.execute(saved_views.insert().values(owner=owner, name=name, path=path, search=search, slug=slug,
                                                      created=now)).inserted_primary_key[0]
    return {"id": new_id, "name": name, "path": path, "search": search, "slug": slug, "created": now}


def remove(conn: Connection, owner: str, view_id: int) -> bool:
    """Delete one of the owner's views; False when they have none of that id."""
    return conn.execute(delete(saved_views).where(v.owner == owner, v.id == view_id)).rowcount > 0


def by_slug(conn: Connection, slug: str) -> dict | None:
    """The view a share link names (whoever saved it), or None."""
    row = conn.execute(select(saved_views).where(v.slug == slug)).first()
    return None if row is None else _row(row)


def pinned(conn: Connection, owner: str) -> dict:
    """{"repos": [repo, ...], "workflows": {repo: [workflow, ...]}}, each in name order."""
    out: dict = {"repos": [], "workflows": {}}
    for repo, workflow in conn.execute(select(pins.c.repo, pins.c.workflow).where(pins.c.owner == owner)
                                       .order_by(pins.c.repo, pins.c.workflow)):
        if workflow:
            out["workflows"].setdefault(repo, []).append(workflow)
        else:
            out["repos"].append(repo)
    return out


def set_pins(conn: Connection, owner: str, repo: str, pinned_repo: bool, workflows: list[str], *,
             now: float | None = None) -> None:
    """Make the owner's pins of `repo` exactly: the repository itself (or not) and `workflows`."""
    wanted = ({""} if pinned_repo else set()) | {w for w in workflows if w}
    have = set(conn.execute(select(pins.c.workflow).where(pins.c.owner == owner, pins.c.repo == repo)).scalars())
    elsewhere = conn.execute(select(func.count()).select_from(pins).where(pins.c.owner == owner,
                                                                          pins.c.repo != repo)).scalar()
    if elsewhere + len(wanted) > MAX_PINS:
        raise ValueError(f"at most {MAX_PINS} pins each")
    gone = have - wanted
    if gone:
        conn.execute(delete(pins).where(and_(pins.c.owner == owner, pins.c.repo == repo, pins.c.workflow.in_(gone))))
    new = sorted(wanted - have)
    if new:
        now = time.time() if now is None else now
        conn.execute(insert(conn, pins).on_conflict_do_nothing(),
                     [{"owner": owner, "repo": repo, "workflow": w, "created": now} for w in new])


def pinned_first(names: list[str], chosen) -> list[str]:
    """`names` with the `chosen` ones first, each group in its order."""
    chosen = set(chosen)
    return [n for n in names if n in chosen] + [n for n in names if n not in chosen]
