"""alerts: the breaks of watched branches and the outbox of their messages

`alert_breaks` holds each alert episode (a watched workflow red on a branch, a
stuck run, an operator threshold), open or closed; `alert_messages` is the
outbox the sender (`alerts/sender.py`) delivers from, written in the same
transaction as the decision that causes each message.  Failed jobs' log
captures get an index by when they were queued: decisions held for their
failure lines are found by it.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPEN = sa.text("state = 'open'")


def upgrade() -> None:
    op.create_table(
        "alert_breaks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("repo", sa.Text()),
        sa.Column("workflow", sa.Integer()),
        sa.Column("branch", sa.Integer()),
        sa.Column("opened", sa.Float(), nullable=False),
        sa.Column("red_since", sa.Float()),
        sa.Column("first_bad", sa.Integer()),
        sa.Column("last_bad", sa.Integer()),
        sa.Column("last_green", sa.Integer()),
        sa.Column("red_count", sa.Integer()),
        sa.Column("fixed_by", sa.Integer()),
        sa.Column("closed", sa.Float()),
        sa.Column("quiet", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("detail", sa.Text()),
    )
    op.create_index("uq_alert_breaks_open", "alert_breaks", ["rule", "subject"], unique=True, sqlite_where=OPEN,
                    postgresql_where=OPEN)
    op.create_index("idx_alert_breaks_subject", "alert_breaks", ["rule", "subject", "opened"])
    op.create_index("idx_alert_breaks_closed", "alert_breaks", ["closed"])
    op.create_table(
        "alert_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("break_id", sa.Integer()),
        sa.Column("rule", sa.Text()),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_try", sa.Float()),
        sa.Column("last_error", sa.Text()),
        sa.Column("sent", sa.Float()),
        sa.Column("ref", sa.Text()),
        sa.UniqueConstraint("break_id", "channel", "kind", name="uq_alert_messages_once"),
    )
    op.create_index("idx_alert_messages_due", "alert_messages", ["state", "next_try"])
    op.create_index("idx_alert_messages_created", "alert_messages", ["created"])
    op.create_index("idx_job_logs_queued", "job_logs", ["queued"])


def downgrade() -> None:
    op.drop_index("idx_job_logs_queued", table_name="job_logs")
    op.drop_table("alert_messages")
    op.drop_table("alert_breaks")
