"""indexes for the Developer view (commit authors) and Triage streaks

`Filters(author=...)` looks commits up by author; the streak of a workflow
on a branch reads that pair's runs newest first.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.create_index("idx_commits_author", ["author"], unique=False)
    with op.batch_alter_table("workflowruns", schema=None) as batch_op:
        batch_op.create_index("idx_workflowruns_workflow_branch_createtime", ["workflow", "branch", "createtime"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workflowruns", schema=None) as batch_op:
        batch_op.drop_index("idx_workflowruns_workflow_branch_createtime")
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.drop_index("idx_commits_author")
