"""The build store's tables, as SQLAlchemy Core metadata.

The seed's five tables keep their names, column names and meanings, so SQL
written against the seed keeps working; names are unique per repository,
`gitid` is GitHub's id, and every time is UTC epoch seconds.  Beyond the
seed: every attempt of a run (`runattempts`), jobs and their steps, and the
log of webhook deliveries.

The migrations in `store/migrations/versions` create exactly these tables;
a test compares the two.
"""
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
    UniqueConstraint,
)

from domain.state import ACTIVE_STATUSES

metadata = MetaData()

# Surrogate ids, the columns that refer to them and those holding GitHub's ids: 64-bit on PostgreSQL
# (GitHub's run and job ids passed 2^31 long ago, and an upsert's conflict still takes a sequence value).
# SQLite's integers are 64-bit whatever the declaration, and only "INTEGER PRIMARY KEY" is its rowid.
ID = BigInteger().with_variant(Integer(), "sqlite")

repos = Table(
    "repos",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False, unique=True),  # owner/name
    Column("default_branch", Text),
    Column("url", Text),
)

branches = Table(
    "branches",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("author", Text),
    Column("repo", Text, nullable=False),
    Column("createtime", Float),
    Column("deletetime", Float),  # set when GitHub says the branch was deleted
    UniqueConstraint("repo", "name", name="uq_branches_repo_name"),
)
Index("idx_branches_name", branches.c.name)

commits = Table(
    "commits",
    metadata,
    Column("id", ID, primary_key=True),
    Column("hash", Text, nullable=False),
    Column("author", Text),  # GitHub login when known, else the author's name
    Column("message", Text),
    Column("time", Float, nullable=False),
    Column("repo", Text, nullable=False),
    UniqueConstraint("repo", "hash", name="uq_commits_repo_hash"),
)
Index("idx_commits_repo_time", commits.c.repo, commits.c.time)
Index("idx_commits_author", commits.c.author)

workflows = Table(
    "workflows",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("repo", Text, nullable=False),
    Column("gitid", BigInteger),  # GitHub's workflow_id, when known
    Column("path", Text),
    UniqueConstraint("repo", "name", name="uq_workflows_repo_name"),
)

# One row per run: its latest attempt (the seed's table).
workflowruns = Table(
    "workflowruns",
    metadata,
    Column("id", ID, primary_key=True),
    Column("branch", ID, ForeignKey("branches.id"), nullable=False),
    Column("commitid", ID, ForeignKey("commits.id"), nullable=False),
    Column("workflow", ID, ForeignKey("workflows.id"), nullable=False),
    Column("author", Text),
    Column("runtime", Float, server_default="0.0"),
    Column("createtime", Float),
    Column("starttime", Float),
    Column("endtime", Float),
    Column("queuetime", Float, server_default="0.0"),
    Column("status", Text),
    Column("conclusion", Text),
    Column("url", Text),
    Column("gitid", BigInteger, nullable=False, unique=True),
    Column("archivedbranchname", Text),
    Column("archivedcommithash", Text),
    Column("archivedworkflowname", Text),
    Column("repo", Text, nullable=False),
    # Beyond the seed.
    Column("run_attempt", Integer, nullable=False, server_default="1"),
    Column("event", Text),
    Column("updatetime", Float),
    Column("run_number", Integer),
    Column("title", Text),
    Column("statekey", Text, nullable=False),  # see domain.state.state_key
    # The failing job and step of a failed latest attempt (metrics.md's "same failure"), kept by
    # the writer from the jobs table; None while unknown.
    Column("fail_job", Text),
    Column("fail_step", Text),
    Column("fail_step_number", Integer),
    Column("fail_author", Text),  # a failed run's author: its commit's, else the run's actor
)
Index("idx_workflowruns_createtime", workflowruns.c.createtime)
Index("idx_workflowruns_conclusion", workflowruns.c.conclusion)
Index("idx_workflowruns_repo_createtime", workflowruns.c.repo, workflowruns.c.createtime)
Index("idx_workflowruns_branch_commit", workflowruns.c.branch, workflowruns.c.commitid)
Index("idx_workflowruns_commit", workflowruns.c.commitid)
Index("idx_workflowruns_author_createtime", workflowruns.c.author, workflowruns.c.createtime)
Index("idx_workflowruns_workflow_createtime", workflowruns.c.workflow, workflowruns.c.createtime)
Index("idx_workflowruns_workflow_branch_createtime", workflowruns.c.workflow, workflowruns.c.branch,
      workflowruns.c.createtime)
Index("idx_workflowruns_status", workflowruns.c.status)
Index("idx_workflowruns_createtime_gitid", workflowruns.c.createtime, workflowruns.c.gitid)  # keyset pages
Index("idx_workflowruns_branch_createtime", workflowruns.c.branch, workflowruns.c.createtime)  # rollup refresh
# A workflow's day on a branch with every column its rollup tests (store/derived/rollups.py): SQLite
# sums a day from this index alone, in (createtime, id) order, without visiting the runs' rows.
DAY_ROLLUP = ("workflow", "branch", "createtime", "id", "status", "conclusion", "runtime", "starttime", "queuetime",
              "run_attempt")
Index("idx_workflowruns_day_rollup", *(workflowruns.c[name] for name in DAY_ROLLUP))
# Failed runs with what Triage's failure groups read, in two partial covering indexes: by group
# (each group's newest runs, and all time in group order) and by creation time (a window's
# failed runs).  Queries must spell the conditions as literals.
_FAILED_RUN = text("status = 'completed' AND conclusion IN ('failure', 'timed_out', 'startup_failure')")
FAILED_BY_GROUP = ("status", "repo", "archivedworkflowname", "fail_job", "fail_step", "createtime", "gitid",
                   "conclusion", "commitid", "fail_author", "fail_step_number", "archivedbranchname", "archivedcommithash",
                   "url")
FAILED_BY_TIME = ("conclusion", "status", "createtime", "repo", "archivedworkflowname", "fail_job", "fail_step",
                  "fail_step_number", "commitid", "fail_author", "gitid", "run_attempt", "archivedbranchname", "author")
Index("idx_workflowruns_failed", *(workflowruns.c[name] for name in FAILED_BY_GROUP),
      sqlite_where=_FAILED_RUN, postgresql_where=_FAILED_RUN)
Index("idx_workflowruns_failed_time", *(workflowruns.c[name] for name in FAILED_BY_TIME),
      sqlite_where=_FAILED_RUN, postgresql_where=_FAILED_RUN)
# The few unfinished runs (active and stale builds): a partial index, so that counting them
# never scans a repository's history.  Queries must spell the status list as literals.
Index("idx_workflowruns_active", workflowruns.c.repo, workflowruns.c.updatetime,
      sqlite_where=workflowruns.c.status.in_(ACTIVE_STATUSES),
      postgresql_where=workflowruns.c.status.in_(ACTIVE_STATUSES))

# Every attempt of every run, the latest included.
runattempts = Table(
    "runattempts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("run", ID, ForeignKey("workflowruns.id"), nullable=False),
    Column("gitid", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("author", Text),
    Column("status", Text),
    Column("conclusion", Text),
    Column("createtime", Float),
    Column("starttime", Float),
    Column("endtime", Float),
    Column("updatetime", Float),
    Column("runtime", Float),
    Column("queuetime", Float),
    Column("url", Text),
    Column("statekey", Text, nullable=False),
    UniqueConstraint("gitid", "attempt", name="uq_runattempts_gitid_attempt"),
)
Index("idx_runattempts_run", runattempts.c.run)
Index("idx_runattempts_createtime_gitid", runattempts.c.createtime, runattempts.c.gitid, runattempts.c.attempt)

jobs = Table(
    "jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("gitid", BigInteger, nullable=False, unique=True),
    Column("run_gitid", BigInteger, nullable=False),
    Column("run_attempt", Integer, nullable=False, server_default="1"),
    Column("repo", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("workflow_name", Text),
    Column("head_branch", Text),
    Column("head_sha", Text),
    Column("status", Text),
    Column("conclusion", Text),
    Column("createtime", Float),
    Column("starttime", Float),  # only once the job really started
    Column("endtime", Float),
    Column("queuetime", Float),
    Column("runtime", Float),
    Column("runner_name", Text),
    Column("runner_id", BigInteger),
    Column("labels", Text),  # JSON array of the runs-on labels
    Column("url", Text),
    Column("statekey", Text, nullable=False),
    Column("runner_group", Text),  # GitHub's runner_group_name, when told (NULL before migration 0013)
)
Index("idx_jobs_run", jobs.c.run_gitid, jobs.c.run_attempt)
# The failed jobs of each run with what the failure groups read of them (store/queries/failures.py): a
# partial index, ~16 MB at 1M runs where widening idx_jobs_run cost 137 MB.  Queries must spell the
# conclusions as literals.
_FAILED_JOB = text("conclusion IN ('failure', 'timed_out')")
Index("idx_jobs_failed", jobs.c.run_gitid, jobs.c.run_attempt, jobs.c.conclusion, jobs.c.gitid, jobs.c.name,
      jobs.c.url, sqlite_where=_FAILED_JOB, postgresql_where=_FAILED_JOB)

steps = Table(
    "steps",
    metadata,
    Column("id", ID, primary_key=True),
    Column("job", ID, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("status", Text),
    Column("conclusion", Text),
    Column("starttime", Float),
    Column("endtime", Float),
    UniqueConstraint("job", "number", name="uq_steps_job_number"),
)

# Every webhook delivery as received, so any can be inspected or replayed.
# The pull requests each run ran for (workflow_run.pull_requests): every report's numbers are kept, so any
# arrival order ends in the same rows.
run_pulls = Table(
    "run_pulls",
    metadata,
    Column("run", BigInteger, primary_key=True),  # workflowruns.gitid
    Column("number", Integer, primary_key=True),
    Column("repo", Text, nullable=False),
)
Index("idx_run_pulls_repo_number", run_pulls.c.repo, run_pulls.c.number)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("guid", Text, nullable=False, unique=True),
    Column("event", Text, nullable=False),
    Column("action", Text),
    Column("repo", Text),
    Column("received", Float, nullable=False),
    Column("outcome", Text, nullable=False),  # processed | ignored | failed (the dead letters)
    Column("error", Text),
    Column("body", LargeBinary, nullable=False),
    Column("processed", Float),  # when the processor committed it (store/inbox.py, ingest/processor.py)
)
Index("idx_deliveries_received", deliveries.c.received)
Index("idx_deliveries_outcome", deliveries.c.outcome)


# --- derived tables (store/derived/, one registry): kept current by every write, in its transaction

# Per UTC day (createtime // 86400) × workflow × branch: the counts of the cards and the
# analysis grid, and the exact daily p50/p90 the performance chart draws.
rollup_days = Table(
    "rollup_days",
    metadata,
    Column("branch", ID, primary_key=True),
    Column("workflow", ID, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("repo", Text, nullable=False),
    Column("runs", Integer, nullable=False),
    Column("decisive", Integer, nullable=False),
    Column("success", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("cancelled", Integer, nullable=False),
    Column("flaky", Integer, nullable=False),
    Column("successful", Integer, nullable=False),
    Column("build_n", Integer, nullable=False),
    Column("build_sum", Float, nullable=False),
    Column("last_run", Float),
    Column("build_p50", Float),
    Column("build_p90", Float),
    Column("queue_p50", Float),  # the run's queuetime, started runs (the chart's queue time)
    Column("queue_p90", Float),
    sqlite_with_rowid=False,  # clustered on the key: a pair's days, and all pairs in order, read in place
)
Index("idx_rollup_days_repo_day", rollup_days.c.repo, rollup_days.c.day)
# Every count by day: a window over all branches reads its days' range from this index alone
# (without it SQLite scanned the whole table rather than look each row up by its key).
Index("idx_rollup_days_day_counts", rollup_days.c.day, rollup_days.c.repo,
      *(rollup_days.c[c] for c in ("runs", "decisive", "success", "failed", "cancelled", "flaky", "successful",
                                   "build_n", "build_sum", "last_run")))
Index("idx_rollup_days_workflow_day", rollup_days.c.workflow, rollup_days.c.day)

ROLLUP_COUNTS = ("runs", "decisive", "success", "failed", "cancelled", "flaky", "successful")

# `rollup_days` summed over days: each (workflow, branch) pair's whole history (the analysis
# grid's all-time ranking reads its top rows through the index).
rollup_pairs = Table(
    "rollup_pairs",
    metadata,
    Column("branch", ID, primary_key=True),
    Column("workflow", ID, primary_key=True),
    Column("repo", Text, nullable=False),
    *(Column(name, Integer, nullable=False) for name in ROLLUP_COUNTS),
    Column("last_run", Float),
    sqlite_with_rowid=False,
)
Index("idx_rollup_pairs_failed_runs", rollup_pairs.c.failed, rollup_pairs.c.runs)

# `rollup_days` summed over branches: per workflow and day (flaky counts per workflow).
rollup_workflow_days = Table(
    "rollup_workflow_days",
    metadata,
    Column("workflow", ID, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("repo", Text, nullable=False),
    *(Column(name, Integer, nullable=False) for name in ROLLUP_COUNTS),
    sqlite_with_rowid=False,
)
Index("idx_rollup_workflow_days_day", rollup_workflow_days.c.day)

# Per workflow × UTC day (of the run's createtime) × stored runner labels × runner group ('' when not
# recorded): the jobs of every attempt, for the Runners page's long windows (`store/derived/runner_days.py`).
rollup_runner_days = Table(
    "rollup_runner_days",
    metadata,
    Column("workflow", ID, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("labels", Text, primary_key=True),
    Column("runner_group", Text, primary_key=True),
    Column("repo", Text, nullable=False),
    Column("jobs", Integer, nullable=False),
    Column("finished", Integer, nullable=False),  # with a duration (started and ended)
    Column("seconds", Float, nullable=False),  # their durations
    Column("minutes", Integer, nullable=False),  # each rounded up to the minute (`domain.billing.minutes`)
    Column("queue", Text, nullable=False),  # JSON [[whole seconds, jobs], ...] of the started jobs' queue times
    Column("hours", Text, nullable=False),  # JSON [[UTC hour of the week (Monday 00:00 = 0), jobs started], ...]
    sqlite_with_rowid=False,
)
Index("idx_rollup_runner_days_day", rollup_runner_days.c.day, rollup_runner_days.c.repo)

# Per run (every attempt), its jobs as one string: the flake statistics' input (`store/derived/run_jobs.py`).
rollup_run_jobs = Table(
    "rollup_run_jobs",
    metadata,
    Column("run", BigInteger, primary_key=True),  # workflowruns.gitid
    Column("signature", Text, nullable=False),
    sqlite_with_rowid=False,
)

# Time to signal of each commit on a branch, over one workflow's runs or all (workflow 0), once
# every first attempt completed; counted on the day of its first run (the `tts` histograms).
rollup_signals = Table(
    "rollup_signals",
    metadata,
    Column("branch", ID, primary_key=True),
    Column("commitid", ID, primary_key=True),
    Column("workflow", ID, primary_key=True),
    Column("day", Integer, nullable=False),
    Column("tts", Float, nullable=False),
    sqlite_with_rowid=False,
)

# Duration histograms ({bucket: n}, see store.metrics.bucket) per period × branch × workflow
# (0: all workflows) × kind (build, queue, tts); a period is a day ('day') or a calendar
# month ('month', the sum of its days), numbered by its first UTC day.
rollup_hist = Table(
    "rollup_hist",
    metadata,
    Column("span", Text, primary_key=True),
    Column("branch", ID, primary_key=True),
    Column("workflow", ID, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    sqlite_with_rowid=False,
)

# The current failure streak of each (workflow, branch) pair and its newest decisive run when
# that run failed (store/derived/streaks.py); only pairs that are red or have such a run.
rollup_streaks = Table(
    "rollup_streaks",
    metadata,
    Column("branch", ID, primary_key=True),
    Column("workflow", ID, primary_key=True),
    Column("repo", Text, nullable=False),
    Column("streak", Integer, nullable=False),  # failed cells in a row, newest first; 0: not red
    Column("first_bad", ID),  # commit id of the oldest failed cell of the streak
    Column("red_since", Float),
    Column("newest_run", ID),  # gitid of the newest failed cell's run
    Column("after", Text),  # conclusion of the decisive cell before the streak; None: history starts red
    Column("unfixed_run", ID),  # workflowruns.id of the newest decisive run, when it failed
    sqlite_with_rowid=False,
)
Index("idx_rollup_streaks_unfixed", rollup_streaks.c.unfixed_run)

# Each person's runs (store/derived/people.py): one row per run and person, a person being the
# run's actor or its commit's author, with what the Developer cards need of the run; and each
# person's time to signal per commit and branch (their own runs of it), by its first creation.
person_runs = Table(
    "person_runs",
    metadata,
    Column("person", Text, primary_key=True),
    Column("createtime", Float, primary_key=True),
    Column("run", ID, primary_key=True),
    Column("repo", Text, nullable=False),
    Column("status", Text),
    Column("conclusion", Text),
    Column("runtime", Float),
    Column("updatetime", Float),
    Column("queues", Text),  # every attempt's queue time, space-separated
    sqlite_with_rowid=False,
)
Index("idx_person_runs_run", person_runs.c.run)

person_signals = Table(
    "person_signals",
    metadata,
    Column("person", Text, primary_key=True),
    Column("first", Float, primary_key=True),
    Column("branch", ID, primary_key=True),
    Column("commitid", ID, primary_key=True),
    Column("repo", Text, nullable=False),
    Column("tts", Float, nullable=False),  # kept once every first attempt completed
    sqlite_with_rowid=False,
)
Index("idx_person_signals_commit", person_signals.c.commitid, person_signals.c.branch)

# Each run's CSV export line, kept formatted by SQLite triggers (store/csvlines.py); NULL when the
# export must format the run itself.  Derived data: `store.derived.rebuild` refills it.
export_lines = Table(
    "export_lines",
    metadata,
    Column("run", ID, primary_key=True),  # workflowruns.id
    Column("line", Text),
)


# --- failure intelligence (failures/, ingest/joblogs.py): what GitHub's logs of failed jobs said

# One row per failed job whose log and annotations are wanted: the capture queue and its outcome.
# Queued by the writer when a job completes failed or timed out (any write path); the fetcher
# (ingest/joblogs.py) fills it; the demo and tests fill it directly.
job_logs = Table(
    "job_logs",
    metadata,
    Column("job", BigInteger, primary_key=True),  # jobs.gitid (GitHub's job id = its check run's id)
    Column("repo", Text, nullable=False),
    Column("state", Text, nullable=False),  # pending | done | failed (gave up) | gone (GitHub has no log)
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("queued", Float, nullable=False),
    Column("next_try", Float, nullable=False),  # a pending row is due from then
    Column("fetched", Float),  # when it was last fetched (done, failed or gone)
    Column("error", Text),  # the last failure's reason
    Column("source", Text),  # log | annotations (no log could be read) | demo | excerpt (re-extracted)
    Column("log_bytes", BigInteger),  # bytes of the log read
    Column("truncated", Integer, nullable=False, server_default="0"),  # 1: read stopped at the cap
    Column("excerpt", LargeBinary),  # zlib of the kept lines (UTF-8): around each failure line, and the end
)
Index("idx_job_logs_due", job_logs.c.state, job_logs.c.next_try)
Index("idx_job_logs_queued", job_logs.c.queued)  # alerts: the decisions held for recent failures' lines

# The failure lines of each failed job, primary first (ordinal 0): what Triage groups by.
failure_lines = Table(
    "failure_lines",
    metadata,
    Column("job", BigInteger, primary_key=True),  # jobs.gitid
    Column("ordinal", Integer, primary_key=True),  # 0: the job's primary failure line
    Column("rule", Text, nullable=False),  # the rule that matched (failures/rules.toml or the user's file)
    Column("class", Text, nullable=False),  # test | build | lint | infra | timeout | unknown
    Column("text", Text, nullable=False),  # the failure line as shown (timestamp and ANSI removed)
    Column("fingerprint", Text, nullable=False),  # 16 hex digits of the normalised line (failures.fingerprint)
    Column("source", Text, nullable=False),  # log | annotation
    Column("path", Text),  # the annotation's file, when one
    Column("line", Integer),  # the line number in the log, or in the annotation's file
    Column("fallback", Integer, nullable=False, server_default="0"),  # 1: a last-resort rule (exit code, catch-all)
    sqlite_with_rowid=False,
)
Index("idx_failure_lines_fingerprint", failure_lines.c.fingerprint, failure_lines.c.job)


# --- alerts (alerts/): breaks of watched branches and the messages they cause

# One row per alert episode: a watched (workflow, branch) that turned red (`red`), a run stuck
# past the stale cutoff (`stale`), or an operator threshold crossed (`lag`, `failed_deliveries`).
# At most one open row per (rule, subject); closed rows are the history.
alert_breaks = Table(
    "alert_breaks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("rule", Text, nullable=False),  # the rule's name in ALERTS_CONFIG
    Column("kind", Text, nullable=False),  # red | stale | lag | failed_deliveries
    Column("subject", Text, nullable=False),  # what it is about: "workflow:branch" ids, "run:GITID", "lag"
    Column("state", Text, nullable=False),  # open | closed
    Column("repo", Text),
    Column("workflow", ID),  # workflows.id
    Column("branch", ID),  # branches.id
    Column("opened", Float, nullable=False),  # when it was decided
    Column("red_since", Float),  # createtime of the first bad run (or the stuck run's, the threshold's crossing)
    Column("first_bad", ID),  # commits.id: the first red commit
    Column("last_bad", ID),  # commits.id: the newest red commit
    Column("last_green", ID),  # commits.id: the green commit before the first bad (None: history starts red)
    Column("red_count", Integer),  # red commits in the episode
    Column("fixed_by", ID),  # commits.id of the first green commit after it
    Column("closed", Float),
    Column("quiet", Integer, nullable=False, server_default="0"),  # 1: recorded, not sent (a backfill's history)
    Column("detail", Text),  # JSON: what the open message said (the run, the figures)
)
Index("uq_alert_breaks_open", alert_breaks.c.rule, alert_breaks.c.subject, unique=True,
      sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'"))
Index("idx_alert_breaks_subject", alert_breaks.c.rule, alert_breaks.c.subject, alert_breaks.c.opened)
Index("idx_alert_breaks_closed", alert_breaks.c.closed)

# The outbox: every message decided, written in the transaction that decided it, then delivered by
# the sender (alerts/sender.py).  (break, channel, kind) is unique: a message is decided once.
alert_messages = Table(
    "alert_messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("break_id", ID),  # alert_breaks.id; None for a test message
    Column("rule", Text),
    Column("channel", Text, nullable=False),  # the channel's name in ALERTS_CONFIG
    Column("kind", Text, nullable=False),  # break | recovery | reminder | test
    Column("body", Text, nullable=False),  # JSON: the message (alerts/message.py), rendered per channel when sent
    Column("created", Float, nullable=False),
    Column("state", Text, nullable=False),  # pending | sending | delivered | failed (given up) | quiet (not sent)
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("next_try", Float),  # a pending message is due from then
    Column("last_error", Text),
    Column("sent", Float),  # when it was delivered
    Column("ref", Text),  # what the receiver answered that later messages need (a GitHub issue's number)
    UniqueConstraint("break_id", "channel", "kind", name="uq_alert_messages_once"),
)
Index("idx_alert_messages_due", alert_messages.c.state, alert_messages.c.next_try)
Index("idx_alert_messages_created", alert_messages.c.created)

# Sign-in (dashapp/signin.py, store/accounts.py): who is signed in, the API tokens admins issue, what was done
# by whom, and the keys every process and host must share.  No secret is stored: sessions and tokens are
# kept as the SHA-256 of what the client holds.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("digest", Text, primary_key=True),  # SHA-256 (hex) of the session cookie's value
    Column("subject", Text, nullable=False),  # who, as the provider names them: "oidc:<iss> <sub>"
    Column("login", Text, nullable=False),  # the name shown and matched by the ROLE_* settings
    Column("email", Text),
    Column("role", Text, nullable=False),  # viewer | maintainer | admin, decided at sign-in
    Column("csrf", Text, nullable=False),  # the session's CSRF token (the `_csrf_token` cookie Dash sends back)
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
)
Index("idx_web_sessions_expires", web_sessions.c.expires)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),  # what it is for, as the admin wrote it
    Column("digest", Text, nullable=False, unique=True),  # SHA-256 (hex) of the token
    Column("role", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires", Float),  # None: until revoked
    Column("revoked", Float),
    Column("revoked_by", Text),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", Float, nullable=False),
    Column("actor", Text, nullable=False),  # a login, "token:<id>", or "local" (no sign-in configured)
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),  # signin | signout | token.create | token.revoke | alert.test | ...
    Column("target", Text),
    Column("detail", Text),  # JSON
    Column("client", Text),  # the client's address past TRUSTED_PROXIES
)
Index("idx_audit_log_at", audit_log.c.at)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("created", Float, nullable=False),
)

# Work started from the Admin page (dashapp/backfills.py, store/adminjobs.py): a backfill's state and progress,
# kept in the store so every process's page shows it, whichever process runs it.
admin_jobs = Table(
    "admin_jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", Text, nullable=False),  # backfill
    Column("target", Text, nullable=False),  # the repository
    Column("state", Text, nullable=False),  # running | done | failed
    Column("actor", Text, nullable=False),
    Column("started", Float, nullable=False),
    Column("updated", Float, nullable=False),  # a running job not updated for minutes was interrupted
    Column("finished", Float),
    Column("progress", Text),  # JSON: the counts so far (ingest.backfill.Stats)
    Column("error", Text),
)
Index("idx_admin_jobs_started", admin_jobs.c.started)

# What retention moved out of the store (store/archive.py): one row per archived batch, written in the
# transaction that deleted its rows, so a file without a row is a batch that never committed.  The highest
# `horizon` is the store's: base rows created before that UTC day are in the archives, and the writer
# refuses new ones there (the rollups of those days are final).
archive_parts = Table(
    "archive_parts",
    metadata,
    Column("id", ID, primary_key=True),  # names the batch's files
    Column("month", Integer, nullable=False),  # the first UTC day of the calendar month its rows belong to
    Column("horizon", Integer, nullable=False),  # UTC day: its rows were created (received) before it
    Column("created", Float, nullable=False),
    Column("counts", Text, nullable=False),  # JSON {table: rows}
    Column("bytes", BigInteger, nullable=False),  # the batch's files on disk
)
Index("idx_archive_parts_month", archive_parts.c.month)
Index("idx_archive_parts_horizon", archive_parts.c.horizon)

# Each person's saved views (store/savedviews.py): a page with its filters under a name, opened by anyone who
# may read the dashboard through its share link (/v/<slug>); and what they pinned (repositories, workflows),
# which the Waterfall shows first.
saved_views = Table(
    "saved_views",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner", Text, nullable=False),  # the identity's actor: a login (or "local" on an unprotected server)
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),  # a page of the dashboard, e.g. /triage
    Column("search", Text, nullable=False),  # its query string, with the leading "?" ("" for none)
    Column("slug", Text, nullable=False, unique=True),  # random: the share link's last part
    Column("created", Float, nullable=False),
    UniqueConstraint("owner", "name", name="uq_saved_views_owner_name"),
)

pins = Table(
    "pins",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("repo", Text, primary_key=True),
    Column("workflow", Text, primary_key=True),  # "" pins the repository itself
    Column("created", Float, nullable=False),
    sqlite_with_rowid=False,
)

# The rate limits' fixed windows (store/ratelimits.py) when the processes share them (RATELIMIT_STORAGE_URI=store://,
# the default on PostgreSQL): one row per limit and client, its count until `expiry` (epoch seconds).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", Text, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expiry", Float, nullable=False),
    sqlite_with_rowid=False,
)
