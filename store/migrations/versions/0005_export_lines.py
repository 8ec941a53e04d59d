"""each run's CSV export line, kept formatted by SQLite triggers

`export_lines` holds each run's line of `/api/builds.csv`, formatted once when
the run (or its commit) is written instead of at every export; on SQLite,
triggers keep it current (`store/csvlines.py`) and existing stores are filled
in place (about 30 s of CPU per million runs).  Other databases get the empty
table, and their export formats every row.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from store import csvlines

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_lines",
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run"),
    )
    from store import derived  # the same code that keeps it

    derived.rebuild(op.get_bind(), parts=("export_lines",))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in csvlines.trigger_ddl():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("export_lines")
