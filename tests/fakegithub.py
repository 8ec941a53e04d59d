"""A fake GitHub REST API: a real HTTP server on 127.0.0.1, serving GitHub's own examples.

The one example run, job, commit and branch of `fixtures/github/rest/` are
cloned into several, with different ids, attempts, conclusions and
branches, and served a few per page with `Link` headers, as GitHub pages.
Knobs for tests: `rate_limit_once` (paths answered once with a primary
rate limit), `fail_after` (answer 500 once that many requests were served),
`fail_times` (path -> answer 500 that many more times), `cap` (results a
filtered run listing returns, GitHub's is 1,000), and `requests` (every path
and query asked for).

Failed jobs' capture (`ingest/joblogs.py`): `/check-runs/{id}/annotations`
serves `annotations[id]` (none by default; `ANNOTATIONS` is GitHub's example),
and `/actions/jobs/{id}/logs` answers 302 to a short-lived URL on a second
server, the "blob storage" (another port), which serves `logs[id]` (by
default a pytest failure for a failed job of the fake's runs, a passing log
for the others).  `endless[id]` (seconds between lines) makes a log that never
ends: lines are written until the client hangs up; `gone[id]` answers the
log with that status (404, 410).  `blob_auth` keeps every Authorization header
the blob storage received: GitHub's token must never reach it.
"""
import copy
import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from ingest.times import epoch as _strict_epoch
from tests.helpers import fixture_json

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp()
BRANCHES = ("main", "feature/x", "master")
CONCLUSIONS = ("success", "failure", "cancelled", "success")


# GitHub's example answer of "List check run annotations" (rest-api-description, components/examples/
# check-annotation-items): what `/check-runs/{id}/annotations` returns.
ANNOTATIONS = [{
    "path": "README.md", "start_line": 2, "end_line": 2, "start_column": 5, "end_column": 10,
    "annotation_level": "warning", "title": "Spell Checker", "message": "Check your spelling for 'banaas'.",
    "raw_details": "Do you mean 'bananas' or 'banana'?",
    "blob_href": "https://api.github.com/repos/github/rest-api-description/git/blobs/abc",
}]

# A failed pytest step as GitHub's log of a job shows it (a timestamp before each line).
FAILED_LOG = """\
##[group]Run python -m pytest -q
python -m pytest -q
shell: /usr/bin/bash -e {0}
##[endgroup]
.F.                                                                      [100%]
=================================== FAILURES ===================================
____________________________ test_parse_empty_body _____________________________

    def test_parse_empty_body():
>       assert parse(b"") == {}
E       AssertionError: assert None == {}
E        +  where None = parse(b'')

tests/test_parse.py:12: AssertionError
=========================== short test summary info ============================
FAILED tests/test_parse.py::test_parse_empty_body - AssertionError: assert None == {}
1 failed, 2 passed in 0.31s
##[error]Process completed with exit code 1.
"""
PASSED_LOG = """\
##[group]Run python -m pytest -q
python -m pytest -q
##[endgroup]
...                                                                      [100%]
3 passed in 0.29s
"""


# A never-ending log does end after this many seconds: a client that fails to stop fails its test
# (the log looks complete) instead of hanging the suite.
ENDLESS_SAFETY = 30.0


def github_log(text: str, start: float = T0) -> str:
    """`text` as GitHub's log download: each line after an ISO timestamp with 7 decimals."""
    stamped = []
    for i, line in enumerate(text.splitlines()):
        when = datetime.fromtimestamp(start + i * 0.01, tz=timezone.utc)
        stamped.append(when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z {line}")
    return "\n".join(stamped) + "\n"


def epoch(text: str) -> float:
    """Any ISO time a client may send, 1970 included (ingest.times refuses those)."""
    if text.startswith("19"):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return _strict_epoch(text)


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class FakeGitHub:
    def __init__(self, repo: str = "owner/repo", *, runs: int = 8, commits: int = 5, page_size: int = 3,
                 cap: int = 1000):
        self.repo = repo
        self.page_size = page_size
        self.cap = cap
        self.default_branch = "main"
        self.requests: list[str] = []
        self.auth: set[str] = set()
        self.fail_after: int | None = None
        self.rate_limit_once: set[str] = set()
        self.fail_times: dict[str, int] = {}
        self.annotations: dict[int, list[dict]] = {}
        self.logs: dict[int, str] = {}
        self.endless: dict[int, float] = {}
        self.gone: dict[int, int] = {}
        self.blob_requests: list[str] = []
        self.blob_auth: list[str] = []
        self.endless_open = 0  # never-ending logs being served right now
        self.endless_bytes = 0  # bytes of never-ending logs written so far
        self._closing = threading.Event()
        self.lock = threading.Lock()
        self.workflows = fixture_json("rest/actions/list-repo-workflows.json")["workflows"]
        self.branches = fixture_json("rest/repos/list-branches.json")
        for name in BRANCHES[:2]:
            self.branches.append(dict(copy.deepcopy(self.branches[0]), name=name, protected=False))
        base_commit = fixture_json("rest/repos/list-commits.json")[0]
        self.commits = []
        for i in range(commits):
            c = copy.deepcopy(base_commit)
            c["sha"] = sha(f"commit {i}")
            c["commit"]["message"] = f"Commit number {i}"
            c["commit"]["author"]["date"] = c["commit"]["committer"]["date"] = stamp(T0 + i * 5 * 3600)
            self.commits.append(c)
        self.attempts: dict[int, list[dict]] = {}  # run id -> its attempts, first to latest
        self.jobs: dict[int, list[dict]] = {}  # run id -> jobs of every attempt
        for i in range(runs):
            self.add_run(i)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._blob = ThreadingHTTPServer(("127.0.0.1", 0), self._blob_handler())
        self.blob_url = f"http://127.0.0.1:{self._blob.server_port}"
        self._blob_thread = threading.Thread(target=self._blob.serve_forever, daemon=True)

    # --- data -----------------------------------------------------------------

    def add_run(self, i: int) -> int:
        """Add the i-th cloned run (ids 5000+i, three hours apart; every third has two attempts)."""
        base = fixture_json("rest/actions/list-workflow-runs-for-repo.json")["workflow_runs"][0]
        workflow = self.workflows[i % len(self.workflows)]
        run_id, created, head = 5000 + i, T0 + i * 3 * 3600, sha(f"run {i}")
        count = 2 if i % 3 == 1 else 1
        attempts = []
        for n in range(1, count + 1):
            run = copy.deepcopy(base)
            started = created + (n - 1) * 1800
            run.update(
                id=run_id, run_number=100 + i, run_attempt=n, name=workflow["name"], workflow_id=workflow["id"],
                path=workflow["path"], head_branch=BRANCHES[i % 3], head_sha=head, status="completed",
                conclusion=CONCLUSIONS[i % 4] if n == count else "failure", display_title=f"Change {i}",
                created_at=stamp(created), run_started_at=stamp(started), updated_at=stamp(started + 600),
                html_url=f"https://github.com/{self.repo}/actions/runs/{run_id}",
            )
            run["head_commit"].update(id=head, message=f"Change {i}", timestamp=stamp(created - 60))
            run["repository"]["full_name"] = self.repo
            attempts.append(run)
        self.put_run(attempts)
        return run_id

    def put_run(self, attempts: list[dict], jobs: list[dict] | None = None) -> None:
        """Serve these attempts of one run (and jobs; by default two per attempt from the example)."""
        run_id = attempts[-1]["id"]
        self.attempts[run_id] = attempts
        if jobs is None:
            jobs = [self._job(run, k) for run in attempts for k in range(2)]
        self.jobs[run_id] = jobs

    def _job(self, run: dict, k: int) -> dict:
        job = copy.deepcopy(fixture_json("rest/actions/list-jobs-for-workflow-run.json")["jobs"][0])
        started = epoch(run["run_started_at"])
        job.update(
            id=run["id"] * 100 + run["run_attempt"] * 10 + k, run_id=run["id"], run_attempt=run["run_attempt"],
            name=("build", "test")[k], status="completed", conclusion=run["conclusion"],
            started_at=stamp(started + 10), completed_at=stamp(started + 500), workflow_name=run["name"],
            head_branch=run["head_branch"], head_sha=run["head_sha"],
        )
        return job

    def latest(self) -> list[dict]:
        return [attempts[-1] for attempts in self.attempts.values()]

    # --- serving --------------------------------------------------------------

    def __enter__(self):
        self._thread.start()
        self._blob_thread.start()
        return self

    def __exit__(self, *exc):
        self._closing.set()  # ends the never-ending logs
        for server, thread in ((self._server, self._thread), (self._blob, self._blob_thread)):
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    def count(self, fragment: str) -> int:
        return sum(fragment in r for r in self.requests)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                status, body, headers = fake.answer(self.path, self.headers.get("Authorization"))
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def answer(self, target: str, authorization: str | None):
        url = urlparse(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.requests.append(target)
            if authorization:
                self.auth.add(authorization)
            if self.fail_after is not None and len(self.requests) > self.fail_after:
                return 500, {"message": "Server Error"}, {}
            if self.fail_times.get(url.path):
                self.fail_times[url.path] -= 1
                return 500, {"message": "Server Error"}, {}
            if url.path in self.rate_limit_once:
                self.rate_limit_once.discard(url.path)
                return 403, {"message": "API rate limit exceeded for user ID 1.",
                             "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}, {
                    "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                    "x-ratelimit-reset": str(int(time.time()) + 1), "x-ratelimit-resource": "core"}
            return self._route(url.path, query)

    def _route(self, path: str, query: dict):
        prefix = f"/repos/{self.repo}".lower()
        if not path.lower().startswith(prefix):
            return 404, {"message": "Not Found"}, {}
        rest = path[len(prefix):].strip("/").split("/") if path[len(prefix):].strip("/") else []
        if rest == []:
            return 200, {"full_name": self.repo, "default_branch": self.default_branch,
                         "html_url": f"https://github.com/{self.repo}"}, {}
        if rest == ["branches"]:
            return self._page(path, query, self.branches)
        if rest == ["commits"]:
            since = epoch(query["since"]) if "since" in query else None
            found = [c for c in self.commits if since is None or epoch(c["commit"]["committer"]["date"]) >= since]
            found.sort(key=lambda c: c["commit"]["committer"]["date"], reverse=True)
            return self._page(path, query, found)
        if rest == ["actions", "workflows"]:
            return self._page(path, query, self.workflows, "workflows")
        if rest[:2] == ["actions", "runs"]:
            return self._runs(path, query, rest[2:])
        if len(rest) == 3 and rest[0] == "check-runs" and rest[1].isdigit() and rest[2] == "annotations":
            return self._page(path, query, self.annotations.get(int(rest[1]), []))
        if len(rest) == 4 and rest[:2] == ["actions", "jobs"] and rest[2].isdigit() and rest[3] == "logs":
            return self._log_redirect(int(rest[2]))
        return 404, {"message": "Not Found"}, {}

    # --- job logs: a redirect to the blob storage -----------------------------

    def _job_by_id(self, job_id: int) -> dict | None:
        for jobs in self.jobs.values():
            for job in jobs:
                if job["id"] == job_id:
                    return job
        return None

    def log_text(self, job_id: int) -> str | None:
        """The log served for a job: `logs[id]`, else the default for a job of the fake's runs."""
        if job_id in self.logs:
            return self.logs[job_id]
        job = self._job_by_id(job_id)
        if job is None:
            return None
        return github_log(FAILED_LOG if job.get("conclusion") in ("failure", "timed_out") else PASSED_LOG)

    def _log_redirect(self, job_id: int):
        if job_id in self.gone:
            return self.gone[job_id], {"message": "Not Found"}, {}
        if job_id not in self.endless and self.log_text(job_id) is None:
            return 404, {"message": "Not Found"}, {}
        # GitHub's answer: a URL on another host, valid for a minute, that needs no token.
        location = f"{self.blob_url}/job-logs/{job_id}?sv=2024&se={int(time.time()) + 60}&sig=fake"
        return 302, None, {"Location": location}

    def _blob_handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with fake.lock:
                    fake.blob_requests.append(self.path)
                    if self.headers.get("Authorization") is not None:
                        fake.blob_auth.append(self.headers["Authorization"])
                parts = urlparse(self.path).path.strip("/").split("/")
                job_id = int(parts[1]) if len(parts) == 2 and parts[0] == "job-logs" and parts[1].isdigit() else 0
                if job_id in fake.endless:
                    return self._endless(job_id, fake.endless[job_id])
                text = fake.log_text(job_id)
                if text is None:
                    self.send_error(404)
                    return
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _endless(self, job_id: int, delay: float):
                # No length: the body ends when the connection does, which only the client decides.
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                with fake.lock:
                    fake.endless_open += 1
                try:
                    n, ends = 0, time.monotonic() + ENDLESS_SAFETY
                    while not fake._closing.is_set() and time.monotonic() < ends:
                        n += 1
                        line = github_log(f"test_{n} PASSED [still running, line {n} of a log that never ends]",
                                          T0 + n)
                        self.wfile.write(line.encode())
                        with fake.lock:
                            fake.endless_bytes += len(line)
                        if delay:
                            time.sleep(delay)
                except OSError:  # the client hung up: what it wanted
                    pass
                finally:
                    with fake.lock:
                        fake.endless_open -= 1
                    self.close_connection = True

        return Handler

    def _runs(self, path: str, query: dict, rest: list[str]):
        if not rest:
            runs = sorted(self.latest(), key=lambda r: (r["created_at"], r["id"]), reverse=True)
            total = None
            if "created" in query:
                runs = [r for r in runs if _created_matches(query["created"], epoch(r["created_at"]))]
                total, runs = len(runs), runs[: self.cap]  # filtered listings stop at the cap
            return self._page(path, query, runs, "workflow_runs", total)
        attempts = self.attempts.get(int(rest[0])) if rest[0].isdigit() else None
        if attempts is None:
            return 404, {"message": "Not Found"}, {}
        if len(rest) == 1:
            return 200, attempts[-1], {}
        if len(rest) == 3 and rest[1] == "attempts" and rest[2].isdigit() and 1 <= int(rest[2]) <= len(attempts):
            return 200, attempts[int(rest[2]) - 1], {}
        if rest[1:] == ["jobs"]:
            jobs = self.jobs[attempts[-1]["id"]]
            if query.get("filter", "latest") == "latest":
                jobs = [j for j in jobs if j.get("run_attempt", 1) == attempts[-1]["run_attempt"]]
            return self._page(path, query, jobs, "jobs")
        return 404, {"message": "Not Found"}, {}

    def _page(self, path: str, query: dict, items: list, key: str | None = None, total: int | None = None):
        per = max(1, min(int(query.get("per_page", 30)), self.page_size))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per))
        chunk = items[(page - 1) * per: page * per]
        rels = {"next": page + 1 if page < last else None, "last": last if page < last else None,
                "prev": page - 1 if page > 1 else None, "first": 1 if page > 1 else None}
        link = ", ".join(
            f'<{self.url}{path}?{urlencode(dict(query, page=n))}>; rel="{rel}"' for rel, n in rels.items() if n
        )
        headers = {"Link": link} if link else {}
        body = {"total_count": len(items) if total is None else total, key: chunk} if key else chunk
        return 200, body, headers


def _created_matches(expr: str, when: float) -> bool:
    """GitHub's `created` filter: `>=T`, `<=T`, `>T`, `<T`, `A..B` (inclusive) or `T`."""
    for op, test in ((">=", lambda t: when >= t), ("<=", lambda t: when <= t), (">", lambda t: when > t),
                     ("<", lambda t: when < t)):
        if expr.startswith(op):
            return test(epoch(expr[len(op):]))
    if ".." in expr:
        lo, hi = expr.split("..", 1)
        return (lo == "*" or when >= epoch(lo)) and (hi == "*" or when <= epoch(hi))
    return epoch(expr) <= when < epoch(expr) + 86400
