"""saved_views and pins: each person's named views and pinned repositories and workflows

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as store.schema.ID


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("id", ID, primary_key=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("search", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False, unique=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.UniqueConstraint("owner", "name", name="uq_saved_views_owner_name"),
    )
    op.create_table(
        "pins",
        sa.Column("owner", sa.Text(), primary_key=True),
        sa.Column("repo", sa.Text(), primary_key=True),
        sa.Column("workflow", sa.Text(), primary_key=True),
        sa.Column("created", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("pins")
    op.drop_table("saved_views")
