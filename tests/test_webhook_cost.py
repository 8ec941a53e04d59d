"""What a stranger's large bodies cost the production server (gunicorn, as `./run.sh` serves).

32 requests at a time of each kind a stranger can send without the secret: unsigned bodies under
the cap, a forged signature over a 24 MB body (read, hashed as it streams, spooled to disk, then
refused), and chunked bodies past the cap.  The web process's peak memory (the kernel's VmHWM)
grows by less than 50 MB over all of them, and every one is refused with its reason.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import raw_request
from tests.test_processes import _web, procs  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
MB = 1024 * 1024
PIECE = b"x" * MB


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1])


def _head(length=None, signature=None):
    lines = ["POST /webhook HTTP/1.1", "Host: 127.0.0.1", "X-GitHub-Event: push", "X-GitHub-Delivery: big",
             "Content-Type: application/json"]
    if signature:
        lines.append(f"X-Hub-Signature-256: {signature}")
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    return "\n".join(lines)


def _body(total):
    for _ in range(total // MB):
        yield PIECE


def _chunked(total):
    for _ in range(total // MB):
        yield b"100000\r\n" + PIECE + b"\r\n"
    yield b"0\r\n\r\n"


def test_32_large_stranger_bodies_at_a_time_cost_under_50_mb(procs, tmp_path):  # noqa: F811
    web = _web(procs, str(tmp_path / "builds.db"), PROCESSOR="off", WEB_CONCURRENCY=1, WEB_THREADS=64,
               WEBHOOK_FAILURE_LIMIT="100000/minute")
    (pid,) = _children(web.proc.pid)
    start = _kb(pid, "VmRSS")
    forged = "sha256=" + "0" * 64
    kinds = [
        ("unsigned", lambda: raw_request(web.url, _head(24 * MB), _body(24 * MB), timeout=120), 401),
        ("forged signature", lambda: raw_request(web.url, _head(24 * MB, forged), _body(24 * MB), timeout=120), 401),
        ("chunked past the cap", lambda: raw_request(web.url, _head(None, forged), _chunked(30 * MB), timeout=120),
         413),
    ]
    for name, send, expected in kinds:
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _i: send(), range(32)))
        assert [status for status, _ in answers] == [expected] * 32, (name, answers[0])
        print(f"{name}: peak {(_kb(pid, 'VmHWM') - start) / 1024:.1f} MB over the start")
    grown = (_kb(pid, "VmHWM") - start) / 1024
    print(f"web process: {start / 1024:.0f} MB at rest, peak grew {grown:.1f} MB over 96 large stranger bodies")
    assert grown < 50, f"peak memory grew {grown:.0f} MB"
