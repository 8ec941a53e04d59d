"""Server time of every page callback, through the real `/_dash-update-component` path.

    python -m bench.views --runs 100000              # generate a store, serve it, measure
    python -m bench.views --db /tmp/100k.db          # an existing store
    python -m bench.views --quick                    # tiny store, 2 repeats (the test suite runs this)
    python -m bench.views --db /tmp/10k.db --cpu     # also each callback's CPU time, in-process
    python -m bench.views --db /tmp/1m.db --postgresql  # the same store copied into PostgreSQL, served from there
    python -m bench.views --db /tmp/1m.db --served postgresql://...  # a copy made before (store.copy)

Headless Chromium opens each page with several filter combinations (Waterfall,
Triage with its failures by cause, the biggest failure group's page, a
developer's page; the production server, gunicorn, serves them); every
callback request the page makes is recorded from Chromium's network log, then
replayed `--repeat` times over HTTP.  Printed: p50/p95/max milliseconds per
callback (named by its output), the page load time until the Waterfall's
commit grid is drawn, and every page's time to first content under its filters
(`bench.pages`).  With `--cpu`, the same requests are replayed again through the app in
this process and each callback's thread CPU time is printed too (steadier than
wall clock when other processes share the machine).  With `--postgresql`, the store is first
copied (`python -m store.copy`, timed) into a throwaway PostgreSQL cluster on this machine
(`tests/pg.py`, fsync and synchronous commits on) and the server is started on that copy; the
pages' names and keys are still read from the SQLite file, which holds the same rows.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from urllib.parse import urlsplit

import requests

from bench import pages
from bench.server import Server, free_port


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1500,1200"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='bench-chrome-')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options)


def _callback_requests(driver, settle: float = 2.0, timeout: float = 60) -> list[dict]:
    """The `/_dash-update-component` request bodies the page sent until it settled."""
    bodies, last_seen, deadline = [], time.time(), time.time() + timeout
    while time.time() < deadline:
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") != "Network.requestWillBeSent":
                continue
            req = message["params"]["request"]
            path = urlsplit(req["url"])
            if path.path.endswith("/_dash-update-component") and req.get("postData"):
                body = json.loads(req["postData"])
                body["_path"] = path.path + (f"?{path.query}" if path.query else "")
                bodies.append(body)
                last_seen = time.time()
        if bodies and time.time() - last_seen > settle:
            break
        time.sleep(0.2)
    return bodies


def _name(body: dict) -> str:
    output = body.get("output", "?")
    return output if len(output) < 70 else output[:67] + "..."


def page_urls(base: str, repos: list[str], author: str | None, fingerprint: str | None = None) -> list[str]:
    urls = [f"{base}/", f"{base}/?window=24h", f"{base}/?window=all", f"{base}/triage", f"{base}/triage?window=30d"]
    for repo in repos[:2]:
        urls += [f"{base}/?repo={repo}&window=30d", f"{base}/triage?repo={repo}"]
    if author:
        urls += [f"{base}/developer?author={author}", f"{base}/developer?author={author}&window=all"]
    if fingerprint:  # the biggest failure group's page, as Triage links it (7 days) and all time
        urls += [f"{base}/failure/{fingerprint}?window=7d", f"{base}/failure/{fingerprint}"]
    return urls


def biggest_failure(database: str) -> str | None:
    """The fingerprint of the failure line most failed jobs of the last 7 days' failed runs share (the store's
    newest run being now), read from the store: the page a reader opens first from Triage."""
    import sqlite3

    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT f.fingerprint FROM workflowruns w"
            " JOIN jobs j ON j.run_gitid = w.gitid AND j.run_attempt = w.run_attempt"
            " JOIN failure_lines f ON f.job = j.gitid AND f.ordinal = 0"
            " WHERE w.status = 'completed' AND w.conclusion IN ('failure', 'timed_out')"
            " AND w.createtime >= (SELECT max(createtime) FROM workflowruns) - 7 * 86400"
            " GROUP BY f.fingerprint ORDER BY count(*) DESC, f.fingerprint LIMIT 1").fetchone()
    except sqlite3.Error:  # a store from before failure lines
        row = None
    finally:
        db.close()
    return row[0] if row else None


def record(base: str, urls: list[str]) -> list[dict]:
    """The callback requests Chromium sends while it opens each of `urls`."""
    driver = _driver()
    recorded = []
    try:
        for url in urls:
            driver.get(url)
            recorded += _callback_requests(driver)
    finally:
        driver.quit()
    return recorded


def measure(base: str, urls: list[str], repeat: int, recorded: list[dict] | None = None) -> dict:
    """Replay every recorded callback `repeat` times: milliseconds per callback name."""
    recorded = record(base, urls) if recorded is None else recorded
    timings = defaultdict(list)
    session = requests.Session()
    for _ in range(repeat):
        for body in recorded:
            t0 = time.perf_counter()
            payload = {k: v for k, v in body.items() if k != "_path"}
            answer = session.post(base + body["_path"], json=payload, timeout=60)
            elapsed = (time.perf_counter() - t0) * 1000
            if answer.status_code not in (200, 204):
                raise RuntimeError(f"{_name(body)} answered {answer.status_code}: {answer.text[:200]}")
            timings[_name(body)].append(elapsed)
    return timings


def measure_cpu(database: str, recorded: list[dict], repeat: int) -> dict:
    """The same requests through the app in this process (Flask's test client, after one warm-up
    round): thread CPU milliseconds per callback name.  What the server itself spends, request
    parsing, Dash's dispatch and JSON included, without the network and with little of other
    processes' noise (wall-clock figures on a loaded 2-core machine are not)."""
    os.environ["DATABASE_PATH"] = database
    os.environ.setdefault("GITHUB_WEBHOOK_SECRET", "bench")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from dashapp import create_app

    client = create_app().server.test_client()
    timings = defaultdict(list)
    for round_ in range(repeat + 1):
        for body in recorded:
            payload = {k: v for k, v in body.items() if k != "_path"}
            t0 = time.thread_time()
            answer = client.post(body["_path"], json=payload)
            status, text = answer.status_code, answer.get_data(True)
            # Closed as a server closes it: the app's page-thread limit (dashapp/capacity.py) takes its
            # slot back then, and a test client's answer left open would keep it until every slot is gone.
            answer.close()
            elapsed = (time.thread_time() - t0) * 1000
            if status not in (200, 204):
                raise RuntimeError(f"{_name(body)} answered {status}: {text[:200]}")
            if round_:
                timings[_name(body)].append(elapsed)
    return timings


def _wait_for_grid(driver, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, GRID_DRAWN)))


# Drawn: the commit grid (or its empty state), either the copy sent with the HTML (#commit-grid-snapshot,
# see dashapp/__init__.py) or the live page's.
GRID_DRAWN = "#commit-grid-snapshot, #commit-grid-table, #wf-grid .empty-state, #wf-grid .alert"
# The live page's own grid (the app has started: filters, links and live updates work).
GRID_LIVE = "#react-entry-point #commit-grid-table, #react-entry-point #wf-grid .empty-state"
# In the page: milliseconds since navigation start of the response, first contentful paint,
# DOMContentLoaded, load, and the first time the grid (drawn / live) was in the document (a
# MutationObserver installed before the page's own scripts run misses nothing).
_MILESTONES = """
const nav = performance.getEntriesByType('navigation')[0];
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return {response: nav.responseEnd, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
        fcp: paint ? paint.startTime : null, grid: window.__gridSeen || null, live: window.__liveSeen || null};
"""
_WATCH = """
(function () {
  const drawn = %s, live = %s;
  function check() {
    if (!window.__gridSeen && document.querySelector(drawn)) window.__gridSeen = performance.now();
    if (!window.__liveSeen && document.querySelector(live)) window.__liveSeen = performance.now();
  }
  new MutationObserver(check).observe(document, {childList: true, subtree: true});
  document.addEventListener('DOMContentLoaded', check);
})();
""" % (json.dumps(GRID_DRAWN), json.dumps(GRID_LIVE))


def _wait_for_live_grid(driver, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, GRID_LIVE)))


def page_load(base: str, tries: int = 5, milestones: list | None = None, path: str = "/") -> list[float]:
    """Seconds from navigation start until the Waterfall's commit grid is drawn, in a fresh browser each time.

    Drawn: on screen, i.e. the later of its entering the document and the first contentful paint
    (Chromium's own clocks, in the page).

    `milestones`, when given, receives each load's in-page timings (see `_MILESTONES`).
    """
    out = []
    for _ in range(tries):
        driver = _driver()
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _WATCH})
            started = time.time()
            driver.get(base + path)  # returns at the load event
            _wait_for_grid(driver)
            wall = time.time() - started
            _wait_for_live_grid(driver)
            marks = driver.execute_script(_MILESTONES)
            marks["wall"] = wall * 1000
            # Drawn = painted: the grid is on screen at the first paint after it entered the document.
            out.append(max(marks["grid"], marks["fcp"] or 0) / 1000)
            if milestones is not None:
                milestones.append(marks)
        finally:
            driver.quit()
    return out


def report(timings: dict, loads: list[float], title: str = "callback (output)") -> None:
    print(f"{title:72} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in sorted(timings.items(), key=lambda kv: -statistics.quantiles(kv[1] + kv[1], n=20)[18]):
        values = sorted(values)
        p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
        print(f"{name:72} {len(values):>4} {statistics.median(values):8.1f} {p95:8.1f} {values[-1]:8.1f}")
    if loads:
        print(f"page load until the commit grid is drawn: median {statistics.median(loads):.2f} s, "
              f"max {max(loads):.2f} s over {len(loads)} loads")


def report_milestones(milestones: list[dict]) -> None:
    """Medians of the in-page timings, milliseconds since navigation start."""
    if not milestones:
        return
    parts = []
    for key, label in (("response", "HTML received"), ("fcp", "first paint"), ("grid", "grid drawn"),
                       ("dcl", "DOMContentLoaded"), ("load", "load event"), ("live", "live grid"),
                       ("wall", "driver.get + wait (selenium, wall clock)")):
        values = [m[key] for m in milestones if m.get(key) is not None]
        if values:
            parts.append(f"{label} {statistics.median(values):.0f}")
    print("in the page, median ms since navigation: " + ", ".join(parts))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="an existing store (default: generate one)")
    parser.add_argument("--runs", type=int, default=100_000, help="size of the generated store")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2,000 runs, 2 repeats")
    parser.add_argument("--page-load-only", action="store_true",
                        help="only the page load (no callback replay)")
    parser.add_argument("--loads", type=int, default=None, help="page loads to time (default 5; 2 with --quick)")
    parser.add_argument("--postgresql", action="store_true",
                        help="serve a PostgreSQL copy of the store (a throwaway cluster; the copy is timed)")
    parser.add_argument("--served", metavar="URL",
                        help="serve this PostgreSQL store, a copy of --db made before (store.copy): nothing copied")
    parser.add_argument("--cpu", action="store_true",
                        help="also replay the requests in this process and print each callback's CPU time")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.repeat = 2000, 2
    database = args.db
    if not database:
        from bench.generate import generate

        database = os.path.join(tempfile.mkdtemp(prefix="bench-views-"), "views.db")
        generate(database, runs=args.runs, quiet=True)
    print(f"store: {database}")
    cluster, served = None, args.served
    if args.postgresql and not served:
        cluster, served = _postgresql_copy(database)
    try:
        return _run(args, database, served or database)
    finally:
        if cluster is not None:
            cluster.stop()


def _postgresql_copy(database: str):
    """A throwaway durable cluster holding a copy of `database`, and the copy's URL."""
    import subprocess

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.pg import Cluster

    cluster = Cluster(durable=True).start()
    url = cluster.new_database(template="template0")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "store.copy", database, url], capture_output=True, text=True)
    if done.returncode:
        cluster.stop()
        raise SystemExit(f"store.copy failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")
    print(f"copied into PostgreSQL in {time.monotonic() - started:.0f} s (store.copy, verified); serving {url}",
          flush=True)
    return cluster, url


def _run(args, database: str, served: str) -> int:
    with Server(served, free_port(), secret="bench") as server:
        rest = server.rss_kb()
        timings, milestones = {}, []
        if not args.page_load_only:
            repos = [r["repo"] for r in requests.get(server.url + "/api/builds?limit=200", timeout=60).json()["items"]]
            repos = sorted(set(repos))
            authors = [b["author"] for b in requests.get(server.url + "/api/builds?limit=50",
                                                         timeout=60).json()["items"] if b["author"]]
            recorded = record(server.url, page_urls(server.url, repos, authors[0] if authors else None,
                                                    biggest_failure(database)))
            timings = measure(server.url, [], args.repeat, recorded)
        loads = page_load(server.url, tries=args.loads or (2 if args.quick else 5), milestones=milestones)
        page_times, sections = {}, {}
        if not args.page_load_only:
            urls = pages.page_urls(database)
            if args.quick:  # the test suite's run: one URL a page, once
                urls = {page: paths[:1] for page, paths in urls.items()}
            page_times = pages.time_pages(server.url, urls, loads=1 if args.quick else (args.loads or 5),
                                          sections=sections)
        rss = server.rss_kb()
    report(timings, loads)
    if page_times:
        pages.report(page_times, sections=sections)
    if args.cpu and not args.page_load_only:
        report(measure_cpu(served, recorded, args.repeat), [], title="callback, in-process thread CPU ms")
    report_milestones(milestones)
    print(f"server memory: at rest RSS {rest['rss'] / 1024:.0f} MB; after the view benchmark RSS "
          f"{rss['rss'] / 1024:.0f} MB, peak {rss['hwm'] / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
