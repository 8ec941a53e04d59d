"""Schema migrations: bring any database made by this project up to date.

Alembic (about 11 MB of a server's memory, kept once imported) is imported
only when a store needs upgrading: `upgrade` first compares the revision the
store is stamped with (plain SQL) with the newest revision of the scripts in
`migrations/versions` (their `revision` and `down_revision` assignments, read
with `ast`), and leaves a store already at that revision alone.  Anything
unclear (no stamp, several heads, a script it cannot read) goes to Alembic.
"""
import ast
import fcntl
import os
from contextlib import contextmanager

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from store.engine import writer_options

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")
VERSIONS = os.path.join(MIGRATIONS, "versions")


def alembic_config(url: str = ""):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def target_metadata(dialect: str) -> list:
    """The tables the migrations build on a dialect: the build store's (`store.schema`), and on a server
    database the live messages in transit between its processes (`store.livechannel`)."""
    from store import livechannel
    from store.schema import metadata

    return [metadata] if dialect == "sqlite" else [metadata, livechannel.metadata]


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def scripts_head() -> str | None:
    """The head revision of the version scripts, without Alembic; None unless exactly one."""
    revisions, parents = set(), set()
    for name in sorted(os.listdir(VERSIONS)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(VERSIONS, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        values = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                  for target in node.targets if isinstance(target, ast.Name)}
        try:
            revision, down = ast.literal_eval(values["revision"]), ast.literal_eval(values["down_revision"])
        except (KeyError, ValueError):
            return None
        revisions.add(revision)
        parents.update(down if isinstance(down, (tuple, list)) else (down,))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stamped(engine: Engine) -> str | None:
    """The store's one stamped revision (None when unstamped or on several branches)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return versions[0] if len(versions) == 1 else None


def upgrade(engine: Engine) -> None:
    """Create the tables, or upgrade them in place; never drops data."""
    stamped = _stamped(engine)
    if stamped is not None and stamped == scripts_head():
        return
    with schema_lock(engine):
        from alembic import command

        if current_revision(engine) == head_revision():
            return
        cfg = alembic_config()
        with engine.connect().execution_options(**writer_options()) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()


SCHEMA_LOCK = 0x6275696C64736368  # "buildsch": PostgreSQL's advisory lock key of `schema_lock`


@contextmanager
def schema_lock(engine: Engine):
    """Held while a process creates or upgrades tables: the server's processes start together on a new
    store, and two creating the same table failed to boot (SQLite: "table already exists"; PostgreSQL:
    a duplicate key in its catalog, transactional DDL notwithstanding).  One migrates, the others then
    find the store current.  SQLite: a file lock beside the store; PostgreSQL: a session advisory lock
    on a connection of its own."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
                conn.commit()
        return
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    fd = os.open(path + ".migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
