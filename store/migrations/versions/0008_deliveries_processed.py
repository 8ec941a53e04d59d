"""when each delivery was applied

Deliveries are accepted into the inbox (`store/inbox.py`) and applied later
by the processor; `deliveries.processed` is when the processor committed one,
so `processed - received` is its processing lag.  Deliveries logged before
the processor existed were applied on receipt: their `processed` is their
`received`.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("processed", sa.Float(), nullable=True))
    op.execute("UPDATE deliveries SET processed = received")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("processed")
