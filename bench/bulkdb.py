"""Large synthetic build stores, fast: direct executemany inserts in one transaction.

The rows are what the writer would store (same tables, state keys, names),
generated lazily so a million runs take constant memory.  Commit messages
include the CSV hazards: commas, quotes, newlines, formula starts, unicode.
Runs come in groups of three sharing a `createtime`, so paging must break
ties on the run id.
"""
import sqlite3

from store.engine import make_engine
from store.migrate import upgrade

T0 = 1_600_000_000.0
REPOS = ("octo/app", "octo/lib", "acme/web")
WORKFLOWS = ("CI", "Lint", "Deploy", "Nightly")
BRANCHES = ("main", "dev", "feature/x", "release/1.0")
AUTHORS = ("alice", "bob", "carol", "dave", None)
CONCLUSIONS = ("success", "success", "success", "failure", "cancelled", "skipped", "timed_out", "success")
MESSAGES = (
    "Fix build",
    'Merge "feature", with commas, and "quotes"',
    "first line\nsecond line\r\nthird line",
    '=HYPERLINK("http://evil.example","click")',
    "+1 for this",
    "-rf everything",
    "@SUM(A1:A2)",
    "\tindented by a tab",
    "ünïcødé ✓ 日本語",
    "",
    None,
)
RUNS_PER_COMMIT = 4


def run_gitid(i: int) -> int:
    return 5_000_000_000 + i


def run_createtime(i: int) -> float:
    return T0 + (i // 3) * 60.0


def _run_rows(runs: int):
    for i in range(runs):
        repo_i = i % len(REPOS)
        repo = REPOS[repo_i]
        branch_i, workflow_i = (i // 7) % len(BRANCHES), (i // 3) % len(WORKFLOWS)
        commit = i // RUNS_PER_COMMIT
        created = run_createtime(i)
        completed = i % 50 != 0
        status = "completed" if completed else "in_progress"
        conclusion = CONCLUSIONS[i % len(CONCLUSIONS)] if completed else None
        queue = float(5 + i % 40)
        started = created + queue
        runtime = float(60 + (i * 37) % 900) if completed else None
        ended = started + runtime if completed else None
        gitid = run_gitid(i)
        yield (
            i + 1, repo_i * len(BRANCHES) + branch_i + 1, commit + 1, repo_i * len(WORKFLOWS) + workflow_i + 1,
            AUTHORS[i % len(AUTHORS)], runtime, created, started, ended, queue, status, conclusion,
            f"https://github.com/{repo}/actions/runs/{gitid}", gitid, BRANCHES[branch_i], f"{commit:040x}",
            WORKFLOWS[workflow_i], repo, 1, "push", ended or started, i, f"run {i}",
            f"0001|3|{created}|{i}",
        )


def _attempt_rows(runs: int):
    for row in _run_rows(runs):
        (run_id, _b, _c, _w, author, runtime, created, started, ended, queue, status, conclusion, url, gitid,
         *_rest) = row
        yield (run_id, gitid, 1, author, status, conclusion, created, started, ended, ended or started, runtime,
               queue, url, row[-1])


def build(path: str, runs: int, *, attempts: bool = True) -> None:
    """A store at `path` (migrated, then bulk-filled) holding `runs` runs (and their attempts)."""
    engine = make_engine(path, synchronous="OFF")
    upgrade(engine)
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-200000")
        con.execute("BEGIN")
        con.executemany("INSERT INTO repos (name, default_branch) VALUES (?, 'main')", [(r,) for r in REPOS])
        con.executemany("INSERT INTO branches (name, repo) VALUES (?, ?)",
                        [(b, r) for r in REPOS for b in BRANCHES])
        con.executemany("INSERT INTO workflows (name, url, repo) VALUES (?, '', ?)",
                        [(w, r) for r in REPOS for w in WORKFLOWS])
        commits = (runs + RUNS_PER_COMMIT - 1) // RUNS_PER_COMMIT
        con.executemany(
            "INSERT INTO commits (id, hash, author, message, time, repo) VALUES (?, ?, ?, ?, ?, ?)",
            ((c + 1, f"{c:040x}", AUTHORS[(c + 1) % len(AUTHORS)], MESSAGES[c % len(MESSAGES)],
              run_createtime(c * RUNS_PER_COMMIT) - 30, REPOS[(c * RUNS_PER_COMMIT) % len(REPOS)])
             for c in range(commits)))
        con.executemany(
            "INSERT INTO workflowruns (id, branch, commitid, workflow, author, runtime, createtime, starttime, "
            "endtime, queuetime, status, conclusion, url, gitid, archivedbranchname, archivedcommithash, "
            "archivedworkflowname, repo, run_attempt, event, updatetime, run_number, title, statekey) "
            "VALUES (" + ", ".join("?" * 24) + ")", _run_rows(runs))
        if attempts:
            con.executemany(
                "INSERT INTO runattempts (run, gitid, attempt, author, status, conclusion, createtime, starttime, "
                "endtime, updatetime, runtime, queuetime, url, statekey) VALUES (" + ", ".join("?" * 14) + ")",
                _attempt_rows(runs))
        con.execute("COMMIT")
        con.execute("ANALYZE")
    finally:
        con.close()
