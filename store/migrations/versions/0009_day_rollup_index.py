"""a covering index for the rollup of a workflow's day

`store/derived/rollups.py` sums a workflow's UTC day on a branch in SQL
instead of reading its runs into Python; this index holds every column those
aggregates test, so SQLite reads a day as one range of it (about 60 bytes a
run).

Revision ID: 0009
Revises: 0008
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ["workflow", "branch", "createtime", "id", "status", "conclusion", "runtime", "starttime", "queuetime",
           "run_attempt"]  # store.schema.DAY_ROLLUP, spelled out: a migration must not change with the schema


def upgrade() -> None:
    op.create_index("idx_workflowruns_day_rollup", "workflowruns", COLUMNS)


def downgrade() -> None:
    op.drop_index("idx_workflowruns_day_rollup", table_name="workflowruns")
