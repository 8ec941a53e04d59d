"""Real receivers of alerts for tests, on 127.0.0.1: what the alert channels talk to.

- `HTTPReceiver`: a Slack-style or generic webhook endpoint that records each request (method, path,
  headers, body, the status it answered); `status` switches its answer (200, 500, 404, 429...), `stop()`
  closes the port (connections are refused) and `start()` opens the same port again.
- `FakeIssues`: GitHub's issues REST API, as much as the GitHub issue channel uses: list (labels,
  state, per_page/page and `Link` headers), open, get, close (PATCH), comments (list, post), the
  repository and `/rate_limit`; a Bearer token is required; 404 for an unknown repository.
- `SMTPReceiver`: an SMTP server (aiosmtpd) that demands STARTTLS, with a certificate of a test CA
  (trustme: `ca_file` is the CA's PEM, for the channel), and AUTH (LOGIN/PLAIN) with a password.

And `red_body` / `recovery_body` / ...: message bodies in the contract's form (what `alerts/message.py`
builds), for the tests to put in the outbox.
"""
import email
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

T0 = 1_714_521_600.0  # 2024-05-01T00:00:00Z
POLL = 0.02  # seconds between a server's looks for shutdown: stopping one is quick
WAIT = 10.0  # the most a test waits for something asynchronous (no assertion on how long it took)


def wait_until(condition, timeout: float = WAIT, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Received:
    method: str
    path: str
    headers: dict  # lower-case names
    body: bytes
    status: int  # what the receiver answered

    def json(self):
        return json.loads(self.body)


# --- webhooks -----------------------------------------------------------------------------------------

class HTTPReceiver:
    """Records every request; answers `status` (with `retry_after` as Retry-After, when set)."""

    def __init__(self):
        self.status = 200
        self.retry_after: str | None = None
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.port = 0
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Listen (again, on the same port after a `stop`)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port: connections are refused until `start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, retry_after = receiver.status, receiver.retry_after
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append(Received("POST", self.path, headers, body, status))
                data = b"ok" if status < 300 else b"no_service" if status in (404, 410) else b"server error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

        return Handler


# --- GitHub issues ------------------------------------------------------------------------------------

class FakeIssues:
    """GitHub's issues API for `repos`, accepting `token`; `page_size` caps per_page (paging is exercised);
    `fail_next` answers that many next requests with 500."""

    def __init__(self, repos=("acme/web",), *, token: str = "ghp_fake_token_0123456789", page_size: int = 2):
        self.token = token
        self.page_size = page_size
        self.repos = {name.lower(): name for name in repos}
        self.issues: dict[str, list[dict]] = {name.lower(): [] for name in repos}
        self.comments: dict[tuple[str, int], list[dict]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.fail_next = 0
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,), daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def count(self, method: str, fragment: str = "") -> int:
        return sum(m == method and fragment in p for m, p in self.requests)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length)) if length else None
                status, body, headers = fake.answer(self.command, self.path, self.headers.get("Authorization"),
                                                    payload)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

        return Handler

    def answer(self, method: str, target: str, authorization: str | None, payload):
        url = urlparse(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.requests.append((method, target))
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"message": "Server Error"}, {}
            if authorization not in (f"Bearer {self.token}", f"token {self.token}"):
                return 401, {"message": "Bad credentials"}, {}
            return self._route(method, url.path, query, payload)

    def _route(self, method: str, path: str, query: dict, payload):
        if path == "/rate_limit" and method == "GET":
            core = {"limit": 5000, "remaining": 4990, "reset": int(T0) + 3600, "used": 10}
            return 200, {"resources": {"core": core}, "rate": core}, {}
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos" or f"{parts[1]}/{parts[2]}".lower() not in self.repos:
            return 404, {"message": "Not Found"}, {}
        key, rest = f"{parts[1]}/{parts[2]}".lower(), parts[3:]
        full = self.repos[key]
        if not rest and method == "GET":
            return 200, {"full_name": full, "has_issues": True,
                         "permissions": {"admin": False, "push": True, "pull": True}}, {}
        if rest == ["issues"] and method == "GET":
            return self._list(path, query, key)
        if rest == ["issues"] and method == "POST":
            return 201, self.open_issue(key, payload), {}
        issue = self._issue(key, rest[1]) if len(rest) >= 2 and rest[0] == "issues" else None
        if issue is None:
            return 404, {"message": "Not Found"}, {}
        if len(rest) == 2 and method == "GET":
            return 200, issue, {}
        if len(rest) == 2 and method == "PATCH":
            issue.update({k: v for k, v in payload.items() if k in ("state", "state_reason", "title", "body")})
            return 200, issue, {}
        if rest[2:] == ["comments"]:
            comments = self.comments.setdefault((key, issue["number"]), [])
            if method == "GET":
                return self._page(path, query, comments)
            comment = {"id": 9000 + len(comments), "body": payload["body"], "user": {"login": "buildmon[bot]"}}
            comments.append(comment)
            return 201, comment, {}
        return 404, {"message": "Not Found"}, {}

    def _issue(self, key: str, number: str):
        return next((i for i in self.issues[key] if str(i["number"]) == number), None)

    def open_issue(self, key: str, payload: dict) -> dict:
        number = len(self.issues[key]) + 1
        issue = {"number": number, "title": payload["title"], "body": payload.get("body") or "", "state": "open",
                 "state_reason": None, "labels": [{"name": n} for n in payload.get("labels") or []],
                 "html_url": f"https://github.com/{self.repos[key]}/issues/{number}"}
        self.issues[key].append(issue)
        return issue

    def _list(self, path: str, query: dict, key: str):
        state = query.get("state", "open")
        wanted = {n for n in query.get("labels", "").split(",") if n}
        found = [i for i in reversed(self.issues[key])  # newest first, as GitHub's default
                 if (state == "all" or i["state"] == state) and wanted <= {label["name"] for label in i["labels"]}]
        return self._page(path, query, found)

    def _page(self, path: str, query: dict, items: list):
        per = max(1, min(int(query.get("per_page", 30)), self.page_size))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per))
        link = f'<{self.url}{path}?{urlencode(dict(query, page=page + 1))}>; rel="next"' if page < last else ""
        return 200, items[(page - 1) * per: page * per], {"Link": link} if link else {}

    def all_issues(self, repo: str = "acme/web") -> list[dict]:
        return list(self.issues[repo.lower()])


# --- e-mail ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SMTPReceiver:
    """An SMTP server on 127.0.0.1 that requires STARTTLS (a test CA's certificate; its PEM at `ca_file`) and
    AUTH as `username`/`password`; `messages` holds what it accepted (parsed, with whether TLS was on and
    who logged in); `answer` is its reply to DATA (e.g. "451 4.3.0 try later")."""

    def __init__(self, directory, *, username: str = "alerts", password: str = "smtp-pass-Zq9"):
        import trustme
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.username, self.password = username, password
        self.messages: list[dict] = []
        self.logins: list[tuple[str, bool]] = []  # (login, accepted)
        self.answer = "250 Message accepted for delivery"
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.ca_file = str(directory / "smtp-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        receiver = self

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == username.encode()
                  and auth_data.password == password.encode())
            receiver.logins.append((auth_data.login.decode(errors="replace") if isinstance(auth_data, LoginPassword)
                                    else "?", ok))
            return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if receiver.answer.startswith("250"):
                    receiver.messages.append({
                        "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                        "tls": session.ssl is not None, "login": session.auth_data,
                        "message": email.message_from_bytes(envelope.original_content or envelope.content,
                                                            policy=policy.default)})
                return receiver.answer

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=context,
                                     require_starttls=True, auth_required=True, authenticator=authenticate)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


# --- message bodies (the contract's form) -----------------------------------------------------------------

HOSTILE = "Fix [docs](https://evil.example) <script>alert(1)</script> @octocat <!channel> & *bold* `x`"


def commit(n: int, *, title: str | None = None, author: str = "Alice", mention: str | None = None) -> dict:
    sha = f"{n:02x}" * 20
    return {"sha": sha, "title": title or f"Change number {n}", "author": author, "mention": mention,
            "url": f"https://github.com/acme/web/commit/{sha}", "time": T0 + n * 600}


def _base(kind: str, alert: str, break_id, **over) -> dict:
    body = {
        "kind": kind, "alert": alert, "break_id": break_id, "rule": "main-red",
        "title": "acme/web: CI is red on main", "summary": "CI has failed on 2 commits in a row on main.",
        "repo": "acme/web", "workflow": "CI", "branch": "main", "red_since": T0 + 600, "red_for": 7500.0,
        "red_commits": 2, "first_bad": None, "fixed_by": None, "blame": [], "blame_more": 0, "last_green": None,
        "jobs": [], "runs": [],
        "links": {"triage": "http://buildmon.test/triage?repo=acme%2Fweb", "alerts": "http://buildmon.test/alerts",
                  "failure": None},
        "run": None, "figure": None, "decided": T0 + 8100,
    }
    body.update(over)
    return body


def red_body(break_id: int = 1, *, commit_title: str | None = None, blame: int = 3, blame_more: int = 0,
             kind: str = "break", **over) -> dict:
    """A break: commit 1 green, commits 2.. red; the first bad one by Bob (a chat mention)."""
    first = commit(2, title=commit_title or "Break the parser", author="Bob", mention="<@U024BE7LH>")
    return _base(kind, "red", break_id, first_bad=first, last_green=commit(1),
                 blame=[first] + [commit(n) for n in range(3, 2 + blame)], blame_more=blame_more,
                 jobs=[{"name": "test (3.12)", "url": "https://github.com/acme/web/actions/runs/7/job/70",
                        "conclusion": "failure", "verdict": "NEW",
                        "lines": [{"text": "FAILED tests/test_parse.py::test_empty - AssertionError", "klass": "test",
                                   "rule": "pytest-failed", "path": "tests/test_parse.py", "line": 12}]}],
                 runs=[{"url": "https://github.com/acme/web/actions/runs/7", "sha": first["sha"],
                        "conclusion": "failure", "attempt": 1, "created": T0 + 1200}], **over)


def recovery_body(break_id: int = 1, **over) -> dict:
    return _base("recovery", "red", break_id, title="acme/web: CI is green again on main",
                 summary="CI passed on main after 2 h 5 min red.", fixed_by=commit(9, title="Fix the parser"),
                 first_bad=commit(2, title="Break the parser", author="Bob"), **over)


def reminder_body(break_id: int = 1, **over) -> dict:
    return red_body(break_id, kind="reminder", title="acme/web: CI still red on main", **over)


def stale_body(break_id: int = 1) -> dict:
    return _base("break", "stale", break_id, title="acme/web: a run is stuck", summary="A CI run is queued for 7 h.",
                 red_since=None, red_for=None, red_commits=None,
                 run={"name": "CI #42", "url": "https://github.com/acme/web/actions/runs/42", "status": "queued",
                      "since": T0}, decided=T0 + 7 * 3600)


def figure_body(alert: str = "lag", value: float = 7260.0, threshold: float = 1800.0) -> dict:
    return _base("break", alert, 5, repo=None, workflow=None, branch=None, red_since=None, red_for=None,
                 red_commits=None, title="buildmon: processing is late", summary="Deliveries wait to be processed.",
                 figure={"name": "processing lag" if alert == "lag" else "failed deliveries", "value": value,
                         "threshold": threshold})
