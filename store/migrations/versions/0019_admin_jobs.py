"""admin_jobs: backfills started from the Admin page, with their progress

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as store.schema.ID


def upgrade() -> None:
    op.create_table(
        "admin_jobs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("finished", sa.Float()),
        sa.Column("progress", sa.Text()),
        sa.Column("error", sa.Text()),
    )
    op.create_index("idx_admin_jobs_started", "admin_jobs", ["started"])


def downgrade() -> None:
    op.drop_table("admin_jobs")
