"""A realistic, deterministic synthetic build history, for a first launch.

`populate(engine, seed=1, now=None, runs=2500)` writes about `runs` workflow
runs (every attempt, with jobs and steps) over the 30 days before `now`,
through `store.writer.apply`, so demo rows obey the same rules as webhook
rows.  The same seed and `now` give identical rows.

Three repositories (`acme/webapp` and `acme/api` on `main`, `acme/mobile` on
`master`), ten workflows named CI, Lint, E2E, Nightly, Docs and Release, a
team of human and bot logins.  Work happens in pull requests: commits on
feature branches run the PR workflows, the squash merge on the default
branch runs the push workflows, the branch is deleted.  Each workflow has its
own jobs, steps, durations and failure modes (the same job/step fails again
and again), queues are longer in working hours, flaky failures are often
re-run until green, and a newer push to a PR branch cancels its older runs.

Every seed also tells the same story, which other code and tests rely on
(the special commits' shas are fixed; their times are relative to `now`):

- `RED_STREAK`: on `acme/webapp` `main`, `CI` is red (X) on the newest 5
  commits, all failing at `test (ubuntu-latest)` / `Run tests`.  The first
  bad commit is mona-lisa's "refactor(session): move token refresh into
  middleware" (its CI was re-run once and failed again); the commit before
  it, octocat's, is green in every workflow.
- `FLAKY_EXAMPLE`: on `acme/api` `main`, dev-priya's "feat(billing): add
  proration preview endpoint", about 2 days old: `CI` attempt 1 failed at
  `test (windows-latest)` / `Run tests`, attempt 2 succeeded.
- Active now: the newest webapp commit's E2E is in progress, a hubot PR
  push's CI and Lint are queued, the newest api commit's CI is in progress
  (its Docs queued), the newest mobile commit waits for a macOS runner.
- `STALE_RUNS`: a Nightly run of 4 days ago stuck in progress (its
  self-hosted benchmark runner vanished) and a mobile Release of 6 days ago
  still queued for an offline self-hosted Mac.
- Also: a `startup_failure` (an api PR's broken workflow file), timed-out
  E2E runs, dependabot PRs whose Docs run is skipped, and a commit message
  with a comma and double quotes.

A timed-out job's running step is recorded with conclusion `failure`, so
every failed job has a failing step.  Every failed job also gets the log its
tools would have printed, extracted into failure lines (`ingest.demo_logs`).  `demo_facts(engine)` reads the story's
run ids back from a populated store.
"""
import bisect
import hashlib
import math
import random
import re
import time
from dataclasses import dataclass, field, replace

from sqlalchemy import func, select

from domain import records as r
from ingest.demo_catalog import (
    POST_ACTIONS, _JobDef, _WfDef, WEB_NIGHTLY, _Repo, REPOS, _REPO, KINDS, SUBJECTS, FOLLOW_UPS, BODIES,
)
from ingest.demo_logs import write_logs
from domain.state import FAILED
from store import schema
from store.engine import writer_options
from store.writer import apply

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
INF = math.inf
HISTORY_DAYS = 30
RECORDS_PER_TRANSACTION = 10_000


def _fixed_sha(key: str) -> str:
    return hashlib.sha1(f"acme-demo:{key}".encode()).hexdigest()


RED_STREAK = {
    "repo": "acme/webapp", "branch": "main", "workflow": "CI", "length": 5,
    "job": "test (ubuntu-latest)", "step": "Run tests", "cause": "session-refresh",  # its log's failing test
    "first_bad_sha": _fixed_sha("red-streak-first-bad"), "first_bad_author": "mona-lisa",
    "first_bad_title": "refactor(session): move token refresh into middleware",
    "last_green_sha": _fixed_sha("red-streak-last-green"), "last_green_author": "octocat",
}
FLAKY_EXAMPLE = {
    "repo": "acme/api", "branch": "main", "workflow": "CI", "sha": _fixed_sha("flaky-example"),
    "author": "dev-priya", "title": "feat(billing): add proration preview endpoint",
    "job": "test (windows-latest)", "step": "Run tests", "attempts": ("failure", "success"),
}
STALE_RUNS = (
    {"repo": "acme/webapp", "workflow": "Nightly", "status": "in_progress"},
    {"repo": "acme/mobile", "workflow": "Release", "status": "queued"},
)

@dataclass
class _Plan:
    """One workflow run to simulate: what triggered it and any forced outcome."""

    wf: _WfDef
    created: float
    event: str
    actor: str
    force: dict | None = None
    attempts: list = field(default_factory=list)  # simulated _Attempt objects


@dataclass
class _Commit:
    repo: _Repo
    branch: str
    sha: str
    author: str
    title: str
    body: str
    time: float
    plans: list = field(default_factory=list)
    pr: object = None  # the _PR a squash merge closes, numbered later
    head_of: object = None  # the _PR whose branch it is on (its pull_request runs are that PR's)

    @property
    def message(self) -> str:
        title = f"{self.title} (#{self.pr.number})" if self.pr else self.title
        return f"{title}\n\n{self.body}" if self.body else title


@dataclass
class _PR:
    repo: _Repo
    start: float
    number: int = 0


@dataclass
class _JobRun:
    jd: _JobDef
    created: float
    start: float | None  # None: never ran (skipped, or cancelled while queued); INF: never starts
    end: float
    conclusion: str | None
    runner: tuple | None
    steps: list  # [number, name, start, end, conclusion]
    fail: tuple | None = None  # (job, step, kind) of the failure the simulation gave it


@dataclass
class _Attempt:
    number: int
    created: float
    start: float
    end: float
    conclusion: str | None
    jobs: list


GREEN = {"outcome": ("green",), "attempts": []}


class _History:
    def __init__(self, seed: int, now: float):
        self.rng = random.Random(seed)
        self.now = now
        self.t0 = now - HISTORY_DAYS * DAY
        self.commits: list[_Commit] = []
        self.prs: list[_PR] = []
        self.branches: list[r.Branch] = []
        self.deletions: list[r.Branch] = []
        self.branch_names: set = set()
        self.count = 0
        self.job_ids: dict = {}  # id(_JobRun) -> GitHub job id, once records() numbered them
        # Nothing lands on webapp's main after the red streak's last green commit.
        self.main_cutoff = {"acme/webapp": now - 9 * HOUR}
        rng = self.rng
        self.incidents = (
            ("acme/api", "CI", "test (windows-latest)", "Run tests", now - rng.uniform(13, 10) * DAY,
             rng.uniform(20, 40) * HOUR),
            ("acme/mobile", "CI", "build (ios)", "Build iOS app", now - rng.uniform(22, 16) * DAY,
             rng.uniform(8, 20) * HOUR),
        )

    # --- small random helpers --------------------------------------------

    def _pick(self, weighted):
        items, weights = zip(*weighted)
        return self.rng.choices(items, weights)[0]

    def _sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def _when(self, lo: float, hi: float) -> float:
        """A time in [lo, hi], likelier in working hours (UTC) on weekdays."""
        while True:
            t = self.rng.uniform(lo, hi)
            if self.rng.random() < _activity(t):
                return float(round(t))

    def _gap(self, median: float, sigma: float, lo: float, hi: float) -> float:
        return float(round(min(hi, max(lo, self.rng.lognormvariate(math.log(median), sigma)))))

    def _title(self, repo: _Repo) -> tuple[str, str]:
        kind = self._pick(KINDS)
        subject = self.rng.choice(SUBJECTS[kind])
        scope = self.rng.choice(repo.scopes)
        title = f"{kind}({scope}): {subject}" if self.rng.random() < 0.75 else f"{kind}: {subject}"
        return title, f"{kind}/{_slug(subject)}"

    def _branch_name(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.branch_names:
            n += 1
            name = f"{wanted}-{n}"
        self.branch_names.add(name)
        return name

    # --- commits, pull requests ------------------------------------------

    def _commit(self, repo, branch, author, title, body, t, *, force=None, sha=None) -> _Commit:
        rng, force = self.rng, force or {}
        c = _Commit(repo, branch, sha or self._sha(), author, title, body, t)
        default = branch == repo.default
        for wf in repo.workflows:
            created = t + rng.randint(1, 4)
            f = force.get(wf.name, force.get("*"))
            if ("push" if default else "pr") in wf.on:
                c.plans.append(_Plan(wf, created, "push" if default else "pull_request", author, f))
            elif default and "dispatch" in wf.on and (wf.name in force or rng.random() < 0.12):
                created = t + self._gap(40 * MIN, 0.8, 10 * MIN, 3 * HOUR)
                if created < self.now - MIN:
                    c.plans.append(_Plan(wf, created, "workflow_dispatch", repo.maintainer, f))
        self.count += len(c.plans)
        self.commits.append(c)
        return c

    def _pr(self, repo, author, start, *, title=None, branch=None, n=None, body=None, titles=(), forces=(),
            merge_at=None, merge=True, merge_force=None, merge_sha=None) -> _PR:
        rng = self.rng
        pr = _PR(repo, start)
        self.prs.append(pr)
        if author == "dependabot[bot]":
            eco, packages = repo.deps
            package = rng.choice(packages)
            old = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
            new = f"{old.rsplit('.', 1)[0]}.{int(old.rsplit('.', 1)[1]) + rng.randint(1, 3)}"
            title = f"build(deps): bump {package} from {old} to {new}"
            body = f"Bumps {package} from {old} to {new}.\n\nSigned-off-by: dependabot[bot] <support@github.com>"
            branch = f"dependabot/{eco}/{package.replace(':', '-')}-{new}"
            n = 1
        elif title is None:
            title, slug = self._title(repo)
            branch = branch or (f"{author}/{slug.split('/', 1)[1]}" if rng.random() < 0.5 else slug)
        if body is None:
            body = rng.choice(BODIES) if rng.random() < 0.25 else ""
        branch = self._branch_name(branch or f"{author}/{_slug(title.split(': ', 1)[-1])}")
        n = n or self._pick(((1, 40), (2, 30), (3, 20), (4, 10)))
        self.branches.append(r.Branch(repo.name, branch, author, start - rng.randint(30, 900)))
        t, done = start, []
        for i in range(n):
            if t > self.now - 30:
                break
            line = titles[i - 1] if 0 < i <= len(titles) else (title if i == 0 else rng.choice(FOLLOW_UPS))
            done.append(self._commit(repo, branch, author, line, body if i == 0 else "", t,
                                     force=forces[i] if i < len(forces) else None))
            t += self._gap(40 * MIN, 1.1, 2 * MIN, 2 * DAY)
        for c in done:
            c.head_of = pr
        if not merge or not done:
            return pr
        if merge_at is None:
            if rng.random() < 0.1:
                return pr  # abandoned, or still in review
            merge_at = done[-1].time + self._gap(3 * HOUR, 1.0, 5 * MIN, 4 * DAY)
            if merge_at > self.main_cutoff.get(repo.name, self.now - 20 * MIN):
                return pr  # still open
        squash = "\n".join(f"* {c.title}" for c in done[1:])
        merged = self._commit(repo, repo.default, author, title, "\n\n".join(x for x in (body, squash) if x),
                              merge_at, force=merge_force, sha=merge_sha)
        merged.pr = pr
        self.deletions.append(r.Branch(repo.name, branch, author, merge_at + rng.randint(2, 30), deleted=True))
        return pr

    def _direct(self, repo, author, t, *, title=None, body="", force=None) -> _Commit:
        title = title or self._title(repo)[0]
        return self._commit(repo, repo.default, author, title, body, t, force=force)

    def generate(self, runs: int) -> None:
        now, rng = self.now, self.rng
        nightly = []
        for d in range(HISTORY_DAYS, -1, -1):
            t = (now - d * DAY) // DAY * DAY + 3 * HOUR + rng.randint(3 * 60, 25 * 60)
            if self.t0 <= t <= now - MIN:
                nightly.append((t, {"hang": "benchmarks"} if d == 4 else None))
        self.count += len(nightly)
        self._story()
        repos = [(repo, repo.share) for repo in REPOS]
        while self.count < runs:
            repo = self._pick(repos)
            author = self._pick(repo.team)
            start = self._when(self.t0, now - 30 * MIN)
            cutoff = self.main_cutoff.get(repo.name, now - 20 * MIN)
            if not author.endswith("[bot]") and start < cutoff and rng.random() < 0.08:
                self._direct(repo, author, start)
            else:
                self._pr(repo, author, start)
        webapp = _REPO["acme/webapp"]
        main = sorted((c.time, i, c) for i, c in enumerate(self.commits)
                      if c.repo is webapp and c.branch == webapp.default)
        for t, force in nightly:
            i = bisect.bisect_left(main, (t,))
            if i == 0:
                continue  # no commit on main yet
            head = main[i - 1][2]
            head.plans.append(_Plan(WEB_NIGHTLY, t, "schedule", webapp.maintainer, force))
        for repo in REPOS:  # pull request numbers grow with time
            base = rng.randint(300, 2500)
            for i, pr in enumerate(sorted((p for p in self.prs if p.repo is repo), key=lambda p: p.start)):
                pr.number = base + i

    def _story(self) -> None:
        """The special commits every seed has (see the module docstring)."""
        now, rng = self.now, self.rng
        web, api, mobile = (_REPO[n] for n in ("acme/webapp", "acme/api", "acme/mobile"))
        green_at = now - 8 * HOUR + rng.randint(-20, 20) * MIN
        self._pr(web, "octocat", green_at - 3 * HOUR, title="docs(session): describe the token lifecycle",
                 n=1, merge_at=green_at, merge_force={"*": GREEN}, merge_sha=RED_STREAK["last_green_sha"])
        authors = ("mona-lisa", "kenji-t", "hubot", "sofia-r", "octocat")
        last = now - 40 * MIN + rng.randint(-3, 3) * MIN
        fail = ("fail", RED_STREAK["job"], RED_STREAK["step"], "real")
        for k, author in enumerate(authors):
            t = last if k == 4 else float(round(green_at + (last - green_at) * (k + 1) / 5 + rng.randint(-8, 8) * MIN))
            force = {"CI": {"outcome": fail, "attempts": [fail] if k == 0 else [], "scale": 1.0}}
            if k == 4:  # its E2E waited for runners and is running now
                force["E2E"] = {"delay_jobs": {"build-app": 26 * MIN}, "scale": 1.0}
            self._pr(web, author, t - rng.randint(1, 5) * HOUR, n=1, merge_at=t, merge_force=force,
                     title=RED_STREAK["first_bad_title"] if k == 0 else None,
                     merge_sha=RED_STREAK["first_bad_sha"] if k == 0 else None)
        flaky_at = now - 2 * DAY + rng.randint(-180, 180) * MIN
        flaky = ("fail", FLAKY_EXAMPLE["job"], FLAKY_EXAMPLE["step"], "flaky")
        self._pr(api, "dev-priya", flaky_at - 5 * HOUR, title=FLAKY_EXAMPLE["title"], n=2, merge_at=flaky_at,
                 merge_force={"CI": {"outcome": flaky, "attempts": [("green",)]}}, merge_sha=FLAKY_EXAMPLE["sha"])
        # Active now.
        self._pr(api, "jmarsh", now - 3 * HOUR, n=1, merge_at=now - 7 * MIN,
                 merge_force={"CI": {"scale": 1.4}, "Docs": {"delay_jobs": {"build-docs": 9 * MIN}}})
        self._pr(mobile, "kenji-t", now - 5 * HOUR, n=2, merge_at=now - 4 * MIN,
                 merge_force={"CI": {"delay_labels": {"macos-14": 25 * MIN}}, "Lint": {"scale": 1.0}})
        self._pr(web, "hubot", now - 100, n=1, merge=False, forces=[{"*": {"delay": 15 * MIN}}])
        # Stale: a release that never found its self-hosted Mac.
        self._direct(mobile, "lbowen", now - 6 * DAY + rng.randint(-60, 60) * MIN, title="chore(release): 3.8.0",
                     force={"Release": {"never_start": True}})
        # A broken workflow file, fixed by the next push.
        self._pr(api, "jmarsh", self._when(now - 10 * DAY, now - 8 * DAY), title="ci: add Python 3.13 to the test matrix",
                 n=2, titles=("ci: fix matrix include syntax",), forces=[{"CI": {"outcome": ("startup_failure",)}}])
        self._pr(web, "sofia-r", self._when(now - 13 * DAY, now - 11 * DAY), n=1,
                 title='fix(export): escape "quoted, comma-separated" values in CSV',
                 body='Values like "Smith, John" were split into two columns.\n\nReported by support.')

    # --- simulation --------------------------------------------------------

    def _queue(self, labels, t: float, calm: bool) -> float:
        base = 40 if "macos-14" in labels or "macos-latest" in labels else 14 if "windows-latest" in labels else \
            25 if "self-hosted" in labels else 5
        q = base * (0.5 + 2.5 * _activity(t)) * self.rng.lognormvariate(0, 0.6)
        long_p = 0.05 if base == 40 else 0.012
        if not calm and self.rng.random() < long_p:
            q += self.rng.uniform(4, 25) * MIN
        return float(round(q))

    def _runner(self, labels) -> tuple:
        if "self-hosted" in labels:
            n = self.rng.randint(1, 2)
            return (f"mac-mini-0{n}", 200 + n) if "macOS" in labels else (f"perf-runner-0{n}", 100 + n)
        n = self.rng.randint(2, 500)
        return f"GitHub Actions {n}", n

    def _job(self, jd: _JobDef, created, start, scale, fail, hang, timeout) -> _JobRun:
        if start == INF:
            return _JobRun(jd, created, INF, INF, None, None, [])
        rng, t, conclusion, ran, steps = self.rng, start, "success", set(), []
        longest = max(jd.steps, key=lambda s: s[1])[0]
        main = (("Set up job", 2),) + jd.steps
        for number, (name, secs) in enumerate(main, 1):
            if conclusion != "success":
                steps.append([number, name, t, t, "skipped"])
                continue
            d = max(1.0, round(secs * (scale if number > 1 else 1) * rng.lognormvariate(0, 0.15)))
            if hang and name == longest:
                steps.append([number, name, t, INF, None])
                return _JobRun(jd, created, start, INF, None, self._runner(jd.labels), steps)
            step_conclusion = "success"
            if fail and fail[1] == name:
                step_conclusion = "failure"
                if fail[2] == "timeout":
                    d, conclusion = max(d, start + timeout - t), "timed_out"
                else:
                    d, conclusion = max(1.0, round(d * rng.uniform(0.15, 1.0))), "failure"
            else:
                ran.add(name)
            steps.append([number, name, t, t + d, step_conclusion])
            t += d
        posts = [name for name, _ in jd.steps if name in POST_ACTIONS][::-1]
        number = len(main) + len(posts) + 2  # GitHub's step numbers jump before the post steps
        for name in posts:
            d = rng.randint(0, 2) if name in ran else 0
            steps.append([number, f"Post {name}", t, t + d, "success" if name in ran else "skipped"])
            number, t = number + 1, t + d
        steps.append([number, "Complete job", t, t + 1, "success"])
        return _JobRun(jd, created, start, t + 1, conclusion, self._runner(jd.labels), steps, fail)

    def _attempt(self, c: _Commit, wf: _WfDef, number: int, created: float, outcome, force: dict, cancel_at):
        rng = self.rng
        if outcome[0] == "startup_failure":
            return _Attempt(number, created, created, created + 1, "startup_failure", [])
        scale = force.get("scale") or rng.lognormvariate(0, wf.sigma)
        jobs: dict[str, _JobRun] = {}
        for jd in wf.jobs:
            needs = [jobs[x] for x in jd.needs]
            jc = (max(j.end for j in needs) if needs else created) + rng.randint(1, 3)
            if outcome[0] == "skipped" or (jd.default_only and c.branch != c.repo.default) or \
                    any(j.conclusion != "success" for j in needs):
                jobs[jd.name] = _JobRun(jd, jc, None, jc, "skipped", None, [])
                continue
            start = INF if force.get("never_start") else jc + self._queue(jd.labels, jc, bool(force)) + \
                force.get("delay", 0) + force.get("delay_jobs", {}).get(jd.name, 0) + \
                sum(v for label, v in force.get("delay_labels", {}).items() if label in jd.labels)
            fail = outcome[1:] if outcome[0] == "fail" and outcome[1] == jd.name else None
            jobs[jd.name] = self._job(jd, jc, start, scale, fail, force.get("hang") == jd.name, wf.timeout)
        runs = list(jobs.values())
        end = max(j.end for j in runs) + rng.randint(1, 3)
        conclusions = [j.conclusion for j in runs]
        conclusion = "failure" if "failure" in conclusions else "timed_out" if "timed_out" in conclusions else \
            "skipped" if all(x == "skipped" for x in conclusions) else None if None in conclusions else "success"
        if cancel_at is not None and cancel_at < end:
            runs = [_cut(j, cancel_at) for j in runs if j.created <= cancel_at]
            end, conclusion = max([cancel_at] + [j.end for j in runs]) + rng.randint(1, 3), "cancelled"
        started = [j.start for j in runs if j.start is not None]
        start = created if number > 1 or not started else min(started)
        return _Attempt(number, created, start, end, conclusion, runs)

    def _outcome(self, c: _Commit, wf: _WfDef, t: float):
        rng = self.rng
        if wf.skip_bots and c.author.endswith("[bot]"):
            return ("skipped",)
        for repo, name, job, step, t0, length in self.incidents:
            if repo == c.repo.name and name == wf.name and t0 <= t < t0 + length and rng.random() < 0.8:
                return ("fail", job, step, "real")
        if rng.random() < wf.fail_p * (1.0 if c.branch == c.repo.default else 1.6):
            job, step, kind, _ = self._pick((m, m[3]) for m in wf.modes)
            return ("fail", job, step, kind)
        return ("green",)

    def _rerun(self, previous: _Attempt, outcome, cancelled_by_push: bool):
        """The outcome of a re-run of `previous`, or None when nobody re-runs it."""
        rng, n = self.rng, previous.number
        if previous.conclusion == "cancelled":
            return ("green",) if not cancelled_by_push and n == 1 and rng.random() < 0.3 else None
        if previous.conclusion not in FAILED or outcome[0] != "fail" or n >= 3:
            return None
        kind = outcome[3]
        if kind == "flaky" and rng.random() < (0.8 if n == 1 else 0.5):
            return ("green",) if rng.random() < 0.85 else outcome
        if kind == "timeout" and n == 1 and rng.random() < 0.4:
            return ("green",) if rng.random() < 0.6 else outcome
        if kind == "real" and n == 1 and rng.random() < 0.12:
            return outcome
        return None

    def simulate(self) -> None:
        rng, now = self.rng, self.now
        by_branch: dict = {}
        for c in sorted(self.commits, key=lambda c: c.time):
            by_branch.setdefault((c.repo.name, c.branch), []).append(c)
        next_push = {}
        for (repo, branch), commits in by_branch.items():
            if branch != _REPO[repo].default:
                for older, newer in zip(commits, commits[1:]):
                    next_push[older.sha] = newer.time
        for c in self.commits:
            for plan in c.plans:
                force = plan.force or {}
                outcome = force.get("outcome", ("green",)) if plan.force else self._outcome(c, plan.wf, plan.created)
                cancel_at, by_push = None, False
                if plan.event == "pull_request" and c.sha in next_push:
                    cancel_at, by_push = next_push[c.sha] + rng.randint(2, 8), True
                elif not plan.force and plan.created < now - 2 * HOUR and rng.random() < 0.008:
                    cancel_at = plan.created + rng.randint(60, 400)  # someone pressed Cancel
                attempt = self._attempt(c, plan.wf, 1, plan.created, outcome, force, cancel_at)
                plan.attempts = [attempt]
                forced = list(force.get("attempts", [])) if plan.force else None
                while True:
                    if forced is not None:
                        outcome = forced.pop(0) if forced else None
                    else:
                        outcome = self._rerun(attempt, outcome, by_push)
                    if outcome is None:
                        break
                    created = attempt.end + (self._gap(5 * MIN, 0.5, MIN, HOUR) if plan.force
                                             else self._gap(12 * MIN, 0.9, MIN, 6 * HOUR))
                    if created > now - 30:
                        break
                    attempt = self._attempt(c, plan.wf, attempt.number + 1, created, outcome, force, None)
                    plan.attempts.append(attempt)

    # --- records -------------------------------------------------------------

    def records(self) -> list:
        rng, now = self.rng, self.now
        out: list = []
        for repo in REPOS:
            out.append(r.Repo(repo.name, repo.default, f"https://github.com/{repo.name}"))
            for wf in repo.workflows:
                out.append(r.Workflow(repo.name, wf.name, f"https://github.com/{repo.name}/actions/workflows/{wf.file}",
                                      rng.randint(10_000_000, 99_999_999), f".github/workflows/{wf.file}"))
            out.append(r.Branch(repo.name, repo.default, repo.maintainer, self.t0 - 400 * DAY))
        out += sorted(self.branches, key=lambda b: (b.time, b.repo, b.name))
        commits = sorted(self.commits, key=lambda c: (c.time, c.repo.name, c.sha))
        out += [r.Commit(c.repo.name, c.sha, c.author, c.message, c.time) for c in commits]
        plans = sorted(((p.created, c.repo.name, p.wf.name, c.sha, p, c) for c in commits for p in c.plans),
                       key=lambda x: x[:4])
        run_id, numbers, ids = 9_000_000_000, {}, {}
        for _, repo, wf_name, _, plan, _ in plans:
            run_id += rng.randint(200, 9000)
            key = (repo, wf_name)
            numbers[key] = numbers.get(key, rng.randint(150, 3000)) + 1
            ids[id(plan)] = (run_id, numbers[key])
        job_id, job_ids = 25_000_000_000, {}
        every_job = sorted((j.created, ids[id(p)][0], a.number, i, j)
                           for *_, p, _ in plans for a in p.attempts for i, j in enumerate(a.jobs) if j.created <= now)
        for *_, j in every_job:
            job_id += rng.randint(5, 400)
            job_ids[id(j)] = job_id
        self.job_ids = job_ids
        runs = []
        for *_, plan, c in plans:
            gitid, number = ids[id(plan)]
            for a in plan.attempts:
                runs.append((a.created, gitid, a.number, _emit(c, plan, a, gitid, number, job_ids, now)))
        for *_, emitted in sorted(runs, key=lambda x: x[:3]):
            out += emitted
        out += sorted(self.deletions, key=lambda b: (b.time, b.repo, b.name))
        return out


def _slug(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))[:32].strip("-")


def _activity(t: float) -> float:
    """How busy the team is at `t` (0..1): working hours on weekdays, UTC."""
    tm = time.gmtime(t)
    hour = tm.tm_hour + tm.tm_min / 60
    level = 1.0 if 8 <= hour < 18 else 0.45 if 6 <= hour < 22 else 0.1
    return level * (0.25 if tm.tm_wday >= 5 else 1.0)


def _cut(job: _JobRun, at: float) -> _JobRun:
    """`job` as it ends when its run is cancelled at `at`."""
    if job.start is None or job.end <= at:
        return job
    if job.start > at:
        return replace(job, start=None, end=at, conclusion="cancelled", runner=None, steps=[])
    steps, t = [], at
    for number, name, s0, s1, conclusion in job.steps:
        if s1 <= at:
            steps.append([number, name, s0, s1, conclusion])
        elif s0 <= at:
            steps.append([number, name, s0, at, "cancelled"])
        elif name == "Complete job" or name.startswith("Post "):
            ran = name == "Complete job" or any(s[1] == name[5:] and s[4] == "success" for s in steps)
            steps.append([number, name, t, t + 1 if ran else t, "success" if ran else "skipped"])
            t += 1 if ran else 0
        else:
            steps.append([number, name, at, at, "skipped"])
    return replace(job, end=t, conclusion="cancelled", steps=steps)


def _emit(c: _Commit, plan: _Plan, a: _Attempt, gitid: int, number: int, job_ids: dict, now: float) -> list:
    """The Run and Job records of attempt `a`, as GitHub would report them at `now`."""
    repo, wf = c.repo.name, plan.wf
    run_url = f"https://github.com/{repo}/actions/runs/{gitid}"
    events, started, jobs = [a.created], False, []
    for j in a.jobs:
        if j.created > now:
            continue  # a job that waits for others is created when they finish
        events.append(j.created)
        steps, runner = (), None
        if j.start is None:  # skipped, or cancelled before it started
            status, start, end, conclusion = "completed", None, j.end, j.conclusion
            events.append(j.end)
        elif j.start > now:
            status, start, end, conclusion = "queued", None, None, None
        else:
            started, runner, start = True, j.runner, j.start
            done = j.end <= now
            status, end, conclusion = ("completed", j.end, j.conclusion) if done else ("in_progress", None, None)
            steps = tuple(_step(s, now) for s in j.steps)
            events += [t for s in j.steps for t in s[2:4] if t <= now]
        jobs.append(r.Job(
            repo=repo, gitid=job_ids[id(j)], run_gitid=gitid, run_attempt=a.number, name=j.jd.name,
            workflow_name=wf.name, head_branch=c.branch, head_sha=c.sha, status=status, conclusion=conclusion,
            createtime=j.created, starttime=start, endtime=end, runner_name=runner and runner[0],
            runner_id=runner and runner[1], labels=j.jd.labels, url=f"{run_url}/job/{job_ids[id(j)]}", steps=steps,
            runner_group=runner and _runner_group(j.jd.labels),
        ))
    if a.end <= now:
        status, start, end, updated = "completed", a.start, a.end, a.end
    else:
        status = "in_progress" if started or a.number > 1 else "queued"
        start = a.start if status == "in_progress" else None
        end, updated = None, max(t for t in events if t <= now)
    title = c.title if plan.event in ("push", "pull_request") else wf.name
    run = r.Run(
        repo=repo, gitid=gitid, attempt=a.number, workflow=wf.name, branch=c.branch, head_sha=c.sha,
        author=plan.actor, event=plan.event, status=status, conclusion=a.conclusion if status == "completed" else None,
        createtime=a.created, starttime=start, endtime=end, updatetime=updated, url=run_url, run_number=number,
        title=title, pull_requests=(c.head_of.number,) if plan.event == "pull_request" and c.head_of is not None
        and c.head_of.number else (),
    )
    return [run] + jobs


def _runner_group(labels) -> str:
    """The runner group GitHub names a job's runner by: hosted runners' own, else the team's two pools."""
    if "self-hosted" not in labels:
        return "GitHub Actions"
    return "mac-minis" if "macOS" in labels else "perf-runners"


def _step(s: list, now: float) -> r.Step:
    number, name, start, end, conclusion = s
    if end <= now:
        return r.Step(number, name, "completed", conclusion, start, end)
    if start <= now:
        return r.Step(number, name, "in_progress", None, start, None)
    return r.Step(number, name, "queued", None, None, None)


def populate(engine, *, seed: int = 1, now: float | None = None, runs: int = 2500) -> dict:
    """Fill a migrated store with about `runs` synthetic runs; return row counts per table."""
    now = float(int(time.time()) // 60 * 60) if now is None else float(now)
    history = _History(seed, now)
    history.generate(runs)
    history.simulate()
    items = history.records()
    with engine.connect().execution_options(**writer_options()) as conn:
        for i in range(0, len(items), RECORDS_PER_TRANSACTION):
            with conn.begin():
                apply(conn, items[i:i + RECORDS_PER_TRANSACTION], now=now)
    # The failed jobs' logs, as the fetcher would have captured them (ingest/demo_logs.py).
    write_logs(engine, history, seed=seed, now=now, pinned={RED_STREAK["first_bad_sha"]: RED_STREAK["cause"]})
    return counts(engine)


def counts(engine) -> dict:
    tables = (schema.repos, schema.branches, schema.commits, schema.workflows, schema.workflowruns,
              schema.runattempts, schema.jobs, schema.steps)
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in tables}


def demo_facts(engine) -> dict:
    """The story's run ids and times, read back from a populated store."""
    wr, ra, cm = schema.workflowruns, schema.runattempts, schema.commits
    out = {}
    with engine.connect() as conn:
        for key, facts in (("red_streak", RED_STREAK), ("flaky_example", FLAKY_EXAMPLE)):
            sha = facts["first_bad_sha"] if key == "red_streak" else facts["sha"]
            row = conn.execute(
                select(wr.c.gitid, wr.c.url, cm.c.time)
                .join(cm, cm.c.id == wr.c.commitid)
                .where(wr.c.repo == facts["repo"], wr.c.archivedworkflowname == facts["workflow"],
                       wr.c.archivedcommithash == sha)
            ).one_or_none()
            if row is None:
                return {}
            attempts = conn.execute(
                select(ra.c.conclusion).where(ra.c.gitid == row.gitid).order_by(ra.c.attempt)
            ).scalars().all()
            out[key] = {**facts, "run_gitid": row.gitid, "run_url": row.url, "commit_time": row.time,
                        "attempt_conclusions": tuple(attempts)}
    return out
