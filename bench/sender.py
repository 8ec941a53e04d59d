"""Signed deliveries built exactly as the shared reference client builds them, sent two ways
`loadgen.py` (closed loop for a duration) does not:

    python -m bench.sender --url URL --rate 200 --duration 60 --json-out F    # open loop: a fixed offered rate
    python -m bench.sender --url URL --count 20000 -c 64 --json-out F         # closed loop: exactly N deliveries

The bodies come from `$SHARED_DIR/bench/loadgen.py`'s own `build_templates` (GitHub's example
`workflow_job`/`workflow_run` payloads, a fresh run/job id per delivery from `--id-base`, compact
JSON, `X-Hub-Signature-256`), over raw asyncio sockets with keep-alive, as loadgen sends them
(a kept-alive connection idle over 2 s is not reused; one the server closed while idle gets its
request again on a new connection, once: `retried_stale_connection`).

Open loop: delivery i is due at start + i/rate whatever the server does; due deliveries go out on
an idle keep-alive connection, or a new one (up to `--max-connections`; past that they wait, and
`late_max_s` says how far the sender fell behind its schedule).  The JSON result has the counts,
status codes, latency percentiles, `late_max_s`, the sender's own CPU seconds, and the GUID and
send time of every 2xx-answered delivery (`--guids-out`), so the caller can check each was processed.
Talks to 127.0.0.1 only.
"""
import argparse
import asyncio
import hashlib
import hmac
import importlib.util
import itertools
import json
import os
import resource
import sys
import time
import uuid
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.environ.get("SHARED_DIR") or os.path.join(ROOT, "..", "shared")
LOADGEN = os.path.join(SHARED_DIR, "bench", "loadgen.py")
PAYLOADS = os.path.join(SHARED_DIR, "fixtures", "github")


def loadgen_module():
    spec = importlib.util.spec_from_file_location("shared_loadgen", LOADGEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Requests:
    """Signed requests, numbered: the n-th carries run/job id `id_base + n` (as loadgen's n-th does)."""

    def __init__(self, loadgen, host, port, path, secret: str, id_base: int, payloads: str = PAYLOADS):
        self.templates = loadgen.build_templates(payloads, ["workflow_job", "workflow_run"], False)
        self.hostline, self.path, self.secret, self.id_base = f"{host}:{port}", path, secret.encode(), id_base

    def build(self, n: int) -> tuple[str, bytes]:
        ev, _action, parts = self.templates[n % len(self.templates)]
        body = str(self.id_base + n).join(parts).encode()
        sig = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        guid = str(uuid.uuid4())
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.hostline}\r\n"
                f"User-Agent: GitHub-Hookshot/bench\r\nAccept: */*\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-GitHub-Event: {ev}\r\nX-GitHub-Delivery: {guid}\r\n"
                f"X-GitHub-Hook-ID: 1\r\nX-Hub-Signature-256: sha256={sig}\r\n"
                f"Connection: keep-alive\r\n\r\n").encode()
        return guid, head + body


class Result:
    def __init__(self):
        self.latencies, self.codes, self.errors = [], {}, {}
        self.ok = []  # (guid, send time: epoch seconds)
        self.late_max = 0.0
        self.sent = 0
        self.retried = 0


MAX_IDLE = 2.0  # seconds a kept-alive connection may sit idle before it is dropped (gunicorn closes at 5)


async def _exchange(loadgen, conns, host, port, request, timeout, result):
    """One request on an idle kept-alive connection (or a new one); returns (status, seconds).

    A connection the server closed while it sat idle fails before any answer byte: the request is
    sent again once on a new connection, as HTTP clients do (counted in `result.retried`)."""
    now = time.perf_counter()
    conn = None
    while conns:
        candidate = conns.pop()
        if now - candidate[2] <= MAX_IDLE:
            conn = candidate
            break
        candidate[1].close()
    reused = conn is not None
    t0 = time.perf_counter()
    while True:
        try:
            if conn is None:
                reader, writer = await asyncio.open_connection(host, port)
                conn = (reader, writer, 0.0)
            conn[1].write(request)
            code, keep = await asyncio.wait_for(loadgen.read_response(conn[0]), timeout)
            break
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            conn[1].close()
            conn = None
            if reused and not getattr(exc, "partial", b""):
                reused = False
                result.retried += 1
                continue
            raise
        except BaseException:
            if conn is not None:
                conn[1].close()
            raise
    seconds = time.perf_counter() - t0
    if keep:
        conns.append((conn[0], conn[1], time.perf_counter()))
    else:
        conn[1].close()
    return code, seconds


async def _one(loadgen, conns, host, port, reqs, n, result, timeout):
    guid, request = reqs.build(n)
    wall = time.time()
    result.sent += 1
    try:
        code, seconds = await _exchange(loadgen, conns, host, port, request, timeout, result)
    except Exception as exc:  # reset, refused, timeout: counted, not retried
        name = type(exc).__name__
        result.errors[name] = result.errors.get(name, 0) + 1
        return
    result.codes[code] = result.codes.get(code, 0) + 1
    result.latencies.append(seconds)
    if 200 <= code < 300:
        result.ok.append((guid, wall))


async def open_loop(loadgen, host, port, reqs, rate, duration, max_connections, timeout) -> Result:
    result, conns, tasks = Result(), [], set()
    limit = asyncio.Semaphore(max_connections)
    start = time.perf_counter()
    total = int(rate * duration)

    async def guarded(n):
        async with limit:
            await _one(loadgen, conns, host, port, reqs, n, result, timeout)

    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.late_max = max(result.late_max, -delay)
        if limit.locked():  # every connection busy: this delivery waits, i.e. the sender is behind
            result.late_max = max(result.late_max, time.perf_counter() - due)
        task = asyncio.ensure_future(guarded(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    for _, writer, _ in conns:
        writer.close()
    return result


async def closed_loop(loadgen, host, port, reqs, count, concurrency, timeout) -> Result:
    result, counter = Result(), itertools.count()

    async def worker():
        conns = []
        while (n := next(counter)) < count:
            await _one(loadgen, conns, host, port, reqs, n, result, timeout)
        for _, writer, _ in conns:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name if __spec__ else __name__}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", default="s3cret")
    parser.add_argument("--id-base", type=int, default=20_000_000_000)
    parser.add_argument("--payloads", default=PAYLOADS)
    parser.add_argument("--rate", type=float, help="open loop: deliveries per second offered")
    parser.add_argument("--duration", type=float, default=60.0, help="open loop: seconds")
    parser.add_argument("--max-connections", type=int, default=256, help="open loop: most requests in flight")
    parser.add_argument("--count", type=int, help="closed loop: deliveries to send")
    parser.add_argument("-c", "--concurrency", type=int, default=64, help="closed loop: requests in flight")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a request counts as failed")
    parser.add_argument("--json-out", required=True)
    parser.add_argument("--guids-out")
    args = parser.parse_args(argv)
    if (args.rate is None) == (args.count is None):
        parser.error("give --rate (open loop) or --count (closed loop)")
    u = urlsplit(args.url)
    if u.hostname not in ("127.0.0.1", "localhost"):
        parser.error("sends to 127.0.0.1 only")
    host, port = "127.0.0.1", u.port or 80
    loadgen = loadgen_module()
    reqs = Requests(loadgen, host, port, u.path or "/", args.secret, args.id_base, args.payloads)
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    if args.rate is not None:
        result = asyncio.run(open_loop(loadgen, host, port, reqs, args.rate, args.duration, args.max_connections,
                                       args.timeout))
    else:
        result = asyncio.run(closed_loop(loadgen, host, port, reqs, args.count, args.concurrency, args.timeout))
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    lat = sorted(result.latencies)
    out = {
        "sent": result.sent, "answered": len(lat), "ok": len(result.ok), "seconds": seconds,
        "rate": len(lat) / seconds if seconds else 0.0,
        "codes": {str(k): v for k, v in sorted(result.codes.items())}, "errors": result.errors,
        "p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3,
        "max_ms": (lat[-1] * 1e3) if lat else float("nan"),
        "late_max_s": result.late_max, "retried_stale_connection": result.retried,
        "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
    }
    with open(args.json_out, "w") as f:
        json.dump(out, f)
    if args.guids_out:
        with open(args.guids_out, "w") as f:
            json.dump(result.ok, f)
    print(json.dumps({k: v for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
