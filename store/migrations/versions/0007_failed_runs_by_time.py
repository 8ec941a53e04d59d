"""failed runs by creation time, and each failed run's author

Triage's failure groups read a window's failed runs from a partial index led
by creation time (`idx_workflowruns_failed_time`) and each group's newest runs
from the group index, which now leads with the group; `workflowruns.fail_author`
(the commit's author, else the run's actor) spares a commit lookup per failed
run.  Existing failed runs get their author in place.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'completed' AND conclusion IN ('failure', 'timed_out', 'startup_failure')")
BY_GROUP = ["status", "repo", "archivedworkflowname", "fail_job", "fail_step", "createtime", "gitid", "conclusion",
            "commitid", "fail_author", "fail_step_number", "archivedbranchname", "archivedcommithash", "url"]
BY_TIME = ["conclusion", "status", "createtime", "repo", "archivedworkflowname", "fail_job", "fail_step",
           "fail_step_number", "commitid", "fail_author"]
OLD_BY_GROUP = ["conclusion", "status", "repo", "archivedworkflowname", "fail_job", "fail_step", "createtime", "gitid",
                "commitid", "author", "fail_step_number", "archivedbranchname", "archivedcommithash", "url"]


def upgrade() -> None:
    op.add_column("workflowruns", sa.Column("fail_author", sa.Text(), nullable=True))
    op.execute(sa.text(
        "UPDATE workflowruns SET fail_author = coalesce((SELECT author FROM commits WHERE commits.id = "
        "workflowruns.commitid), author) WHERE " + FAILED.text))
    op.drop_index("idx_workflowruns_failed", table_name="workflowruns")
    op.create_index("idx_workflowruns_failed", "workflowruns", BY_GROUP, unique=False, sqlite_where=FAILED,
                    postgresql_where=FAILED)
    op.create_index("idx_workflowruns_failed_time", "workflowruns", BY_TIME, unique=False, sqlite_where=FAILED,
                    postgresql_where=FAILED)


def downgrade() -> None:
    op.drop_index("idx_workflowruns_failed_time", table_name="workflowruns")
    op.drop_index("idx_workflowruns_failed", table_name="workflowruns")
    op.create_index("idx_workflowruns_failed", "workflowruns", OLD_BY_GROUP, unique=False, sqlite_where=FAILED,
                    postgresql_where=FAILED)
    op.drop_column("workflowruns", "fail_author")
