"""A deterministic generator of a large, realistic build history, fast.

    python -m bench.generate --db /tmp/1m.db --runs 1000000       # about 5 jobs a run

Writes straight into the store's tables (bulk executemany in a few large
transactions, secondary indexes dropped during the load and rebuilt after,
then the derived tables rebuilt as the writes would keep them: `store.derived`),
so 1,000,000 runs and 5,000,000 jobs take minutes.  The rows are the ones
the writer would store (same columns, state keys, archived names), so the
views, the API and later webhooks treat them like any other history.

The shapes follow the demo (`ingest/demo.py`): several repositories with
their own workflows and jobs, a team of authors on feature branches and the
default branch, lognormal durations per workflow, queues longer in working
hours, failures that come in streaks on the default branch and repeat the
same failing job and step, flaky runs re-run to green, a few runs active
now.  Steps are stored for failed jobs (where Triage reads the failing step)
and skipped for passing ones to keep a 5M-job store on a small disk.

Jobs run where their names say (`runner_of`: the OS matrix on GitHub's hosted Windows and macOS runners,
heavy suites on a self-hosted pool, the rest on ubuntu-latest), and a feature branch's runs belong to its
pull request (`run_pulls`), so the Runners and pull-request pages have something to show.

Every failed job (failure or timed out) has its log captured (`job_logs`, state
done, source "bench", the kept excerpt) and its failure lines (`failure_lines`),
as `store.joblogs.save` stores them: the log is made from the causes of
`bench/failpool.py` (each repository's stack, Zipf-weighted per kind of job;
a red streak repeats its cause, a re-run that passed failed on a flaky test or
infra) and read by the product's extractor (`failures.extract`) when present.
"""
import argparse
import hashlib
import math
import random
import sys
import time

from sqlalchemy import text

from store import derived
from store.engine import make_engine
from store.migrate import upgrade
from bench.failpool import Failures
from store.schema import (branches, commits, failure_lines, job_logs, jobs, repos, run_pulls, runattempts, steps,
                          workflowruns, workflows)

DAY = 86400.0
WORKFLOWS = (  # name, median seconds, jobs, base failure rate, runs on pull requests
    ("CI", 480, ("build", "test (ubuntu-latest)", "test (windows-latest)", "test (macos-latest)", "lint"), 0.07, True),
    ("Lint", 70, ("lint",), 0.04, True),
    ("E2E", 1200, ("e2e (chrome)", "e2e (firefox)", "e2e (webkit)", "report", "upload", "notify"), 0.10, True),
    ("Docs", 150, ("build-docs", "linkcheck"), 0.03, True),
    ("Release", 600, ("package", "sign", "publish", "announce"), 0.05, False),
    ("Nightly", 2400, ("bench", "fuzz", "soak", "report", "matrix-a", "matrix-b", "matrix-c"), 0.12, False),
)
# Where a job runs, from its name (no random draw: the history stays the one the seed gave before):
# (runs-on labels as stored, runner group).  Heavy suites on a self-hosted pool, the OS matrix on GitHub's
# hosted runners, the rest on ubuntu-latest.
SELF_HOSTED = ('["self-hosted", "linux", "x64"]', "linux-pool")
HOSTED = ('["ubuntu-latest"]', "GitHub Actions")
RUNNERS = {"windows": ('["windows-latest"]', "GitHub Actions"), "macos": ('["macos-14"]', "GitHub Actions"),
           "e2e": SELF_HOSTED, "bench": SELF_HOSTED, "fuzz": SELF_HOSTED, "soak": SELF_HOSTED}


def runner_of(job_name: str) -> tuple[str, str]:
    return next((where for word, where in RUNNERS.items() if word in job_name), HOSTED)


STEPS = ("Set up job", "Checkout", "Set up toolchain", "Install dependencies", "Run tests", "Post Checkout",
         "Complete job")
STEP_NUMBERS = (1, 2, 3, 4, 5, 14, 15)  # GitHub's numbers are not contiguous
AUTHORS = tuple(f"dev-{i:02d}" for i in range(48)) + ("octocat", "mona-lisa", "hubot", "dependabot[bot]")
VERBS = ("fix", "feat", "refactor", "chore", "docs", "perf", "test", "ci")
AREAS = ("auth", "api", "ui", "db", "cache", "build", "billing", "search", "export", "i18n")


def _key(attempt: int | None, status: str, updated: float) -> str:
    rank = {"queued": 2, "in_progress": 3, "completed": 4}[status]
    prefix = f"{attempt:04d}|" if attempt is not None else ""
    return f"{prefix}{rank:02d}|{int(updated):012d}|{'0' * 16}"


class History:
    """Generates rows table by table; ids are assigned here so rows can refer to each other."""

    def __init__(self, runs: int, jobs_per_run: float, seed: int, now: float, repo_count: int):
        self.rng = random.Random(seed)
        self.runs, self.now = runs, now
        self.repos = [f"bigorg/service-{i}" for i in range(repo_count)]
        self.days = max(30.0, min(365.0, runs / 2700))
        per_repo = [WORKFLOWS[: 4 + i % 3] for i in range(repo_count)]
        self.repo_workflows = per_repo
        mean_jobs = sum(len(w[2]) for ws in per_repo for w in ws) / sum(len(ws) for ws in per_repo)
        self.job_scale = jobs_per_run / mean_jobs
        self.rows = {t: [] for t in ("repos", "branches", "commits", "workflows", "workflowruns", "runattempts",
                                     "jobs", "steps", "job_logs", "failure_lines", "run_pulls")}
        self.workflow_ids, self.branch_ids = {}, {}
        self.red = {}  # (repo, workflow) -> commits left in the current red streak on the default branch
        self.streak = {}  # (repo, workflow) -> number of its latest red streak
        self.streak_job = {}  # streak number -> the index of the job that fails throughout it
        self.failures = Failures(self.repos, seed)
        self.ids = {"run": 0, "attempt": 0, "job": 0, "step": 0, "commit": 0}

    def build(self) -> dict:
        for ri, repo in enumerate(self.repos):
            self.rows["repos"].append((ri + 1, repo, "main", f"https://github.com/{repo}"))
            for name, *_ in self.repo_workflows[ri]:
                wid = len(self.workflow_ids) + 1
                self.workflow_ids[(repo, name)] = wid
                self.rows["workflows"].append((wid, name, f"https://github.com/{repo}/actions/workflows/"
                                               f"{name.lower()}.yml", repo, 80_000_000 + wid,
                                               f".github/workflows/{name.lower()}.yml"))
        start = self.now - self.days * DAY
        # Runs a commit makes on average (`_commit`): every workflow that runs on pull requests, plus on the
        # default branch (55 %) Release and Nightly 30 % of the time.
        per_repo = [sum(1.0 if w[4] else 0.55 * 0.3 for w in ws) for ws in self.repo_workflows]
        runs_per_commit = sum(per_repo) / len(per_repo)
        end = self.now - 600
        t = start
        while self.ids["run"] < self.runs:
            # The mean gap is what is left over the commits still to come, so the history ends at `end`
            # (windows like "the last 7 days" are the server's, not the store's); a fixed gap from an
            # estimate ended a 1M-run history 25 days early.
            left = (self.runs - self.ids["run"]) / runs_per_commit
            step = max(1e-3, (end - t) / max(1.0, left))
            t += self.rng.expovariate(1 / step)
            self._commit(min(t, self.now - 60))
        return self.rows

    def _branch(self, repo: str, name: str, author: str | None, created: float) -> int:
        key = (repo, name)
        if key not in self.branch_ids:
            self.branch_ids[key] = len(self.branch_ids) + 1
            self.rows["branches"].append((self.branch_ids[key], name, author, repo, created, None))
        return self.branch_ids[key]

    def _commit(self, t: float) -> None:
        rng = self.rng
        ri = rng.randrange(len(self.repos))
        repo = self.repos[ri]
        author = rng.choice(AUTHORS)
        default = rng.random() < 0.55
        branch = "main" if default else f"{author}/{rng.choice(AREAS)}-{rng.randrange(40)}"
        branch_id = self._branch(repo, branch, None if default else author, t)
        self.ids["commit"] += 1
        cid = self.ids["commit"]
        sha = hashlib.sha1(f"{repo}:{cid}".encode()).hexdigest()
        title = f"{rng.choice(VERBS)}({rng.choice(AREAS)}): change {cid}"
        self.rows["commits"].append((cid, sha, author, title + ("\n\nDetails, with a comma." if cid % 7 == 0 else ""),
                                     t - rng.uniform(30, 3600), repo))
        for name, median, job_names, fail_rate, on_pr in self.repo_workflows[ri]:
            if self.ids["run"] >= self.runs:
                return
            if not default and not on_pr:
                continue
            if name in ("Release", "Nightly") and rng.random() < 0.7:
                continue
            rate, streak = self._failure_rate(repo, name, fail_rate, default)
            self._run(repo, branch, branch_id, cid, sha, author, title, t, name, median, job_names, rate, streak)

    def _failure_rate(self, repo, workflow, base, default) -> tuple[float, int | None]:
        """The chance the run fails, and the red streak whose cause it repeats if it does (or None)."""
        left = self.red.get((repo, workflow), 0)
        if not default:  # a branch made while main is red often fails the same way
            return base * 1.5, self.streak[(repo, workflow)] if left > 0 and self.failures.rng.random() < 0.4 else None
        if left > 0:  # main stays red until someone fixes it
            self.red[(repo, workflow)] = left - 1
            return 0.9, self.streak[(repo, workflow)]
        if self.rng.random() < 0.01:
            self.red[(repo, workflow)] = self.rng.randrange(2, 12)
            self.streak[(repo, workflow)] = len(self.streak_job) + 1
            self.streak_job[len(self.streak_job) + 1] = None
        return base, None

    def _run(self, repo, branch, branch_id, cid, sha, author, title, t, name, median, job_names, fail_rate,
             streak=None):
        rng = self.rng
        self.ids["run"] += 1
        run_id = self.ids["run"]
        gitid = 10_000_000_000 + run_id
        url = f"https://github.com/{repo}/actions/runs/{gitid}"
        busy = 3.0 if 14 <= (t % DAY) / 3600 <= 18 else 1.0
        created = t + rng.uniform(1, 20)
        age = self.now - created
        flaky = rng.random() < 0.03
        attempts = 2 if flaky else 1
        latest = None
        for attempt in range(1, attempts + 1):
            queue = rng.lognormvariate(math.log(8 * busy), 1.0)
            a_created = created if attempt == 1 else latest[3] + rng.uniform(60, 1800)
            started = a_created + queue
            duration = rng.lognormvariate(math.log(median), 0.35)
            ended = started + duration
            if ended > self.now and attempt == attempts:  # still going
                status, conclusion = ("in_progress", None) if started < self.now else ("queued", None)
            else:
                status = "completed"
                if flaky and attempt == 1:
                    conclusion = "failure"
                elif flaky:
                    conclusion = "success"
                else:
                    roll = rng.random()
                    conclusion = ("failure" if roll < fail_rate else "timed_out" if roll < fail_rate + 0.005
                                  else "cancelled" if roll < fail_rate + 0.025 else "skipped"
                                  if roll < fail_rate + 0.03 else "success")
            s = started if status != "queued" else None
            e = ended if status == "completed" else None
            updated = e or s or a_created
            runtime = (e - s) if e and s else None
            qt = (s - a_created) if s else None
            self.ids["attempt"] += 1
            self.rows["runattempts"].append((self.ids["attempt"], run_id, gitid, attempt, author, status, conclusion,
                                             a_created, s, e, updated, runtime, qt, url,
                                             _key(None, status, updated)))
            self._jobs(repo, name, branch, sha, gitid, attempt, job_names, a_created, s, e, status, conclusion,
                       flaky=flaky and attempt < attempts, streak=streak)
            latest = (status, conclusion, a_created, updated, s, e, runtime, qt)
        status, conclusion, _c, updated, s, e, runtime, qt = latest
        if age > 2 * DAY and status != "completed" and rng.random() < 0.999:
            status, conclusion = "completed", "cancelled"
        wid = self.workflow_ids[(repo, name)]
        if branch != "main":  # a feature branch's runs are its pull request's (one per branch, numbered by it)
            self.rows["run_pulls"].append((gitid, branch_id, repo))
        self.rows["workflowruns"].append((
            run_id, branch_id, cid, wid, author, runtime, created, s, e, qt, status, conclusion, url, gitid,
            branch, sha, name, repo, attempts, "push" if branch == "main" else "pull_request", updated,
            run_id, title, _key(attempts, status, updated), None, None, None, None))  # fail_*: set by the rebuild

    def _jobs(self, repo, workflow, branch, sha, run_gitid, attempt, names, created, started, ended, status,
              conclusion, *, flaky=False, streak=None):
        rng = self.rng
        count = max(1, round(len(names) * self.job_scale * rng.uniform(0.8, 1.2)))
        failing = rng.randrange(count) if conclusion in ("failure", "timed_out") else -1
        if streak is not None and failing >= 0:  # a red streak breaks the same job every time
            if self.streak_job[streak] is None:
                self.streak_job[streak] = self.failures.rng.randrange(len(names))
            failing = self.streak_job[streak] % count
        for j in range(count):
            self.ids["job"] += 1
            jid = self.ids["job"]
            j_start = started + rng.uniform(0, 30) if started else None
            j_end = ended if ended and j_start else None
            j_status = status if j_start else "queued"
            j_concl = (conclusion if j == failing else ("success" if conclusion != "cancelled" else "cancelled")) \
                if j_status == "completed" else None
            gitid = 30_000_000_000 + jid
            labels, group = runner_of(names[j % len(names)])
            self.rows["jobs"].append((
                jid, gitid, run_gitid, attempt, repo,
                names[j] if j < len(names) else f"{names[j % len(names)]} (shard {j // len(names)})", workflow, branch,
                sha, j_status, j_concl, created,
                j_start, j_end, (j_start - created) if j_start else None, (j_end - j_start) if j_end else None,
                f"GitHub Actions {jid % 97}" if j_start else None, jid % 97 if j_start else None,
                labels, f"https://github.com/{repo}/actions/runs/{run_gitid}/job/{gitid}",
                _key(None, j_status, j_end or j_start or created), group if j_start else None))
            if j == failing and j_concl in ("failure", "timed_out"):
                self._failure_log(repo, workflow, gitid, self.rows["jobs"][-1][5], names[j % len(names)], j_concl,
                                  j_end, flaky=flaky, streak=streak)
            if j == failing:
                fail_at = 4 if rng.random() < 0.8 else 3
                for k, (number, step_name) in enumerate(zip(STEP_NUMBERS, STEPS)):
                    self.ids["step"] += 1
                    concl = "success" if k < fail_at else "failure" if k == fail_at else "skipped"
                    self.rows["steps"].append((self.ids["step"], jid, number, step_name, "completed", concl,
                                               j_start, j_end))


    def _failure_log(self, repo, workflow, job, name, base, conclusion, ended, *, flaky, streak):
        """The rows `store.joblogs.save` writes for a failed job once its log is read."""
        f = self.failures
        causes = f.causes(repo, workflow, base, conclusion, flaky=flaky, streak=streak)
        lines, excerpt, size = f.extraction(causes, repo, workflow, name, ended)
        # The composed log is the end of the job's log: the bytes read stand for a whole one.
        size += int(f.rng.lognormvariate(math.log(150_000), 1.0))
        fetched = min(self.now, ended + f.rng.uniform(5, 90))
        self.rows["job_logs"].append((job, repo, "done", 0, ended, ended, fetched, None, "bench", size, 0, excerpt))
        self.rows["failure_lines"] += [(job, i, *line) for i, line in enumerate(lines)]


TABLES = {"repos": repos, "branches": branches, "commits": commits, "workflows": workflows,
          "workflowruns": workflowruns, "runattempts": runattempts, "jobs": jobs, "steps": steps,
          "job_logs": job_logs, "failure_lines": failure_lines, "run_pulls": run_pulls}


def generate(database: str, *, runs: int, jobs_per_run: float = 5.0, seed: int = 1, now: float | None = None,
             repo_count: int = 5, quiet: bool = False) -> dict:
    """Fill an empty store at `database` with `runs` runs; returns row counts per table."""
    now = float(int(time.time() // 60 * 60)) if now is None else now
    engine = make_engine(database, synchronous="OFF")
    upgrade(engine)
    started = time.time()
    rows = History(runs, jobs_per_run, seed, now, repo_count).build()
    built = time.time()
    with engine.begin() as conn:
        for name, table in TABLES.items():
            for index in table.indexes:
                conn.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
            columns = ", ".join(c.name for c in table.c)
            marks = ", ".join("?" for _ in table.c)
            conn.exec_driver_sql(f"INSERT INTO {name} ({columns}) VALUES ({marks})", rows[name])
        for table in TABLES.values():
            for index in table.indexes:
                index.create(conn)
        derived.rebuild(conn)  # what every write keeps current: failure causes, rollups, streaks, ...
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    counts = {name: len(r) for name, r in rows.items()}
    if not quiet:
        print(f"generated {counts} in {built - started:.1f} s, loaded in {time.time() - built:.1f} s",
              file=sys.stderr)
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="database file (must not exist yet)")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--jobs-per-run", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--now", type=float, default=None, help="epoch seconds the history ends at")
    args = parser.parse_args(argv)
    counts = generate(args.db, runs=args.runs, jobs_per_run=args.jobs_per_run, seed=args.seed, now=args.now)
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
