"""failure intelligence: the log capture queue and each failed job's failure lines

`job_logs` is the queue of failed jobs whose annotations and log the fetcher
(`ingest/joblogs.py`) reads, with the outcome and the kept excerpt;
`failure_lines` the lines the rules (`failures/`) found in them.  Failed jobs
already stored are queued, newest first to be fetched.  The failed runs' index
by time grows, and a partial index of the failed jobs by run is added, to cover
what the failure groups read (`store/queries/failures.py`: a window's failed
runs, then their failed jobs).

Revision ID: 0011
Revises: 0010
"""
import time

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'completed' AND conclusion IN ('failure', 'timed_out', 'startup_failure')")
BY_TIME = ["conclusion", "status", "createtime", "repo", "archivedworkflowname", "fail_job", "fail_step",
           "fail_step_number", "commitid", "fail_author"]
COVERING = ["gitid", "run_attempt", "archivedbranchname", "author"]
FAILED_JOB = sa.text("conclusion IN ('failure', 'timed_out')")


def upgrade() -> None:
    op.create_table(
        "job_logs",
        sa.Column("job", sa.BigInteger(), primary_key=True),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("queued", sa.Float(), nullable=False),
        sa.Column("next_try", sa.Float(), nullable=False),
        sa.Column("fetched", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("source", sa.Text()),
        sa.Column("log_bytes", sa.BigInteger()),
        sa.Column("truncated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("excerpt", sa.LargeBinary()),
    )
    op.create_index("idx_job_logs_due", "job_logs", ["state", "next_try"])
    op.create_table(
        "failure_lines",
        sa.Column("job", sa.BigInteger(), primary_key=True),
        sa.Column("ordinal", sa.Integer(), primary_key=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("class", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("path", sa.Text()),
        sa.Column("line", sa.Integer()),
        sa.Column("fallback", sa.Integer(), nullable=False, server_default="0"),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_failure_lines_fingerprint", "failure_lines", ["fingerprint", "job"])
    op.drop_index("idx_workflowruns_failed_time", table_name="workflowruns")
    op.create_index("idx_workflowruns_failed_time", "workflowruns", BY_TIME + COVERING, sqlite_where=FAILED,
                    postgresql_where=FAILED)
    op.create_index("idx_jobs_failed", "jobs", ["run_gitid", "run_attempt", "conclusion", "gitid", "name", "url"],
                    sqlite_where=FAILED_JOB, postgresql_where=FAILED_JOB)
    # Failed jobs stored before: queued, due now (the fetcher takes the newest first).
    now = time.time()
    op.execute(sa.text(
        "INSERT INTO job_logs (job, repo, state, tries, queued, next_try, truncated)"
        " SELECT gitid, repo, 'pending', 0, :now, :now, 0 FROM jobs"
        " WHERE status = 'completed' AND conclusion IN ('failure', 'timed_out')").bindparams(now=now))


def downgrade() -> None:
    op.drop_index("idx_jobs_failed", table_name="jobs")
    op.drop_index("idx_workflowruns_failed_time", table_name="workflowruns")
    op.create_index("idx_workflowruns_failed_time", "workflowruns", BY_TIME, sqlite_where=FAILED,
                    postgresql_where=FAILED)
    op.drop_table("failure_lines")
    op.drop_table("job_logs")
