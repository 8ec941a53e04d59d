"""archive_parts: the batches retention moved out of the store into Parquet files

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as store.schema.ID


def upgrade() -> None:
    op.create_table(
        "archive_parts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
    )
    op.create_index("idx_archive_parts_month", "archive_parts", ["month"])
    op.create_index("idx_archive_parts_horizon", "archive_parts", ["horizon"])


def downgrade() -> None:
    op.drop_table("archive_parts")
