"""Shared test helpers: GitHub's fixtures, signed deliveries, a real server."""
import glob
import json
import os
import re
import threading
import uuid

import requests
from werkzeug.serving import make_server

from ingest.signature import sign

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED_DIR", os.path.join(ROOT, "..", "shared"))
FIXTURES = os.path.join(SHARED, "fixtures", "github")
SECRET = "It's a Secret to Everybody"
WEBHOOK_EVENTS = ("push", "create", "delete", "ping", "workflow_run", "workflow_job", "check_run", "check_suite")


def copy_store(source: str, directory) -> str:
    """A copy of the SQLite store `source` in `directory` (a test that writes must not change a shared one)."""
    import sqlite3

    path = os.path.join(str(directory), os.path.basename(source))
    with sqlite3.connect(source) as original, sqlite3.connect(path) as copy:
        original.backup(copy)
    return path


def fixture_path(relative: str) -> str:
    return os.path.join(FIXTURES, relative)


def fixture_bytes(relative: str) -> bytes:
    with open(fixture_path(relative), "rb") as f:
        return f.read()


def fixture_json(relative: str):
    return json.loads(fixture_bytes(relative))


def webhook_fixtures(event: str | None = None) -> list[str]:
    """Every webhook example file, as `event/file.json` paths."""
    events = [event] if event else WEBHOOK_EVENTS
    found = []
    for ev in events:
        found += sorted(os.path.relpath(p, FIXTURES) for p in glob.glob(os.path.join(FIXTURES, ev, "*.json")))
    return found


def post(base_url: str, event: str, body: bytes, *, secret: str | None = SECRET, guid: str | None = None,
         signature: str | None = None, timeout: float = 30):
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": guid or str(uuid.uuid4()),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return requests.post(f"{base_url}/webhook", data=body, headers=headers, timeout=timeout)


def deliver(server, event: str, body: bytes, **kwargs):
    """`post` to `server` (a LiveServer), then wait until the processor has applied what it accepted."""
    answer = post(server.url, event, body, **kwargs)
    server.services.settle()
    return answer


class ThreadedServer:
    """A WSGI app served on a free port of 127.0.0.1, in a thread, for the length of a `with` block."""

    def __init__(self, wsgi_app):
        self._server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._thread.join(timeout=10)


class LiveServer(ThreadedServer):
    """The app's Flask server on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app):
        self.app = app
        self.services = app.server.extensions["buildmon"]
        super().__init__(app.server)


SURROGATE = {"id", "branch", "commitid", "workflow", "run", "job"}
WALL_CLOCK = {"queued", "next_try", "fetched"}  # job_logs: when a job was queued and fetched, not what it holds


def snapshot(engine) -> dict:
    """Every derived row, surrogate ids replaced by natural keys, order-free."""
    from sqlalchemy import select

    from store.schema import commits, jobs, metadata, rollup_streaks, steps, workflowruns

    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "deliveries":
                continue
            # (job_logs and failure_lines name a job by its GitHub id: a natural key, kept)
            surrogate = SURROGATE - {"job"} if table.name in ("job_logs", "failure_lines") else SURROGATE
            cols = [c for c in table.c if c.name not in surrogate and c.name not in WALL_CLOCK]
            query = select(*cols)
            if table is steps:
                query = select(jobs.c.gitid, *cols).join(jobs, jobs.c.id == steps.c.job)
            if table is rollup_streaks:  # its first bad commit and unfixed run by their sha and gitid
                s = rollup_streaks.c
                query = (select(*(c for c in cols if c.name not in ("first_bad", "unfixed_run")), commits.c.hash,
                                workflowruns.c.gitid)
                         .outerjoin(commits, commits.c.id == s.first_bad)
                         .outerjoin(workflowruns, workflowruns.c.id == s.unfixed_run))
            out[table.name] = sorted((tuple(row) for row in conn.execute(query).all()), key=repr)
    return out


def raw_request(url: str, head: str, body_parts=(), *, timeout: float = 10, hang_up: bool = False
                ) -> tuple[int, bytes]:
    """Send `head` (request line and headers, no blank line) and `body_parts` on a plain socket, as a
    client that may stop early (`hang_up`: then says it has nothing more to send); (status, the answer).
    A status of 0: no answer came."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").rstrip("\r\n").encode() + b"\r\n\r\n")
        try:
            for part in body_parts:
                sock.sendall(part)
            if hang_up:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed without reading it all: its right
            pass
        answer = b""
        try:
            while True:
                head_end = answer.find(b"\r\n\r\n")
                if head_end >= 0:
                    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", answer[:head_end])
                    if length is None or len(answer) >= head_end + 4 + int(length.group(1)):
                        break
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    if not answer.startswith(b"HTTP/1."):
        return 0, answer
    return int(answer.split(b" ", 2)[1]), answer


def click_in_view(dash_duo, selector) -> None:
    """Click `selector` (or an element) once it is in view: Bootstrap scrolls smoothly, and a click during the
    scroll can land on whatever passes under the pointer."""
    from dash.testing.wait import until

    element = dash_duo.wait_for_element(selector, timeout=30) if isinstance(selector, str) else selector
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    until(lambda: dash_duo.driver.execute_script(
        "var r = arguments[0].getBoundingClientRect(), e = document.elementFromPoint(r.x + 4, r.y + r.height / 2);"
        "return e === arguments[0] || arguments[0].contains(e);", element), timeout=10)
    element.click()
