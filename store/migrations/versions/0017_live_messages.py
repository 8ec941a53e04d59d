"""live messages in transit between the processes of a PostgreSQL store

`live_messages` (store/livechannel.py): the batches of live messages each process publishes, read by
the other processes, on any host, after a NOTIFY of their id.  SQLite stores have no use for it (their
processes share one machine and pass messages over local sockets, live/bus.py).

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.create_table(
        "live_messages",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.drop_table("live_messages")
