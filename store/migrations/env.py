"""Alembic environment: runs migrations on the connection `store.migrate` hands in."""
from alembic import context

from store.migrate import target_metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn):
    context.configure(
        connection=conn,
        target_metadata=target_metadata(conn.dialect.name),
        render_as_batch=True,  # SQLite cannot ALTER most things in place
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # `alembic` command line, e.g. `alembic revision --autogenerate`
    from store.engine import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
