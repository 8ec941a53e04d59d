"""keyset indexes for the build history (/api/builds, CSV export)

Newest-first pages are ordered by (createtime DESC, gitid DESC), and with
every attempt listed by (createtime DESC, gitid DESC, attempt DESC); these
indexes make each page a range scan.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflowruns", schema=None) as batch_op:
        batch_op.create_index("idx_workflowruns_createtime_gitid", ["createtime", "gitid"], unique=False)
    with op.batch_alter_table("runattempts", schema=None) as batch_op:
        batch_op.create_index("idx_runattempts_createtime_gitid", ["createtime", "gitid", "attempt"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runattempts", schema=None) as batch_op:
        batch_op.drop_index("idx_runattempts_createtime_gitid")
    with op.batch_alter_table("workflowruns", schema=None) as batch_op:
        batch_op.drop_index("idx_workflowruns_createtime_gitid")
