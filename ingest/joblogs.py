"""Capture: the annotations and log of each failed job, read from GitHub into failure lines.

The writer queues every job that completes failed in `job_logs` (`store/writer.py`).  A `Fetcher`
thread, in the one process that holds the delivery processor, takes the due jobs a few at a time,
newest first, and for each, outside any store transaction:

- lists its check run's annotations (a job's id is its check run's id): GitHub's problem matchers
  and `::error::` lines;
- asks for its log: GitHub answers 302 to a short-lived URL on its blob storage, which is read
  *without* the token (it must never leave for another host), as a stream, into a
  `failures.extract.Extractor` that keeps only the lines around errors, stopping at `max_bytes`
  or after `read_seconds` (the extraction is then marked truncated);

then records the failure lines and the excerpt in one short write transaction.  A rate limit
pauses the whole fetcher until GitHub's reset and moves every pending row there, saying why, so
that every process shows the pause; server errors and network failures are retried with an
exponential backoff, up to `tries`; a log GitHub no longer has (404/410) is `gone`.  Fetching a
job again gives the same rows.  Ingest never waits for any of it: the processor only queues.
"""
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin

import requests
from sqlalchemy import select
from sqlalchemy.engine import Engine
from tqdm import tqdm

from failures.extract import Extractor, job_scope
from ingest.background import Background
from ingest.restclient import DEFAULT_API_URL, links, rate_limit_wait, say
from store import joblogs
from store.engine import writer_options
from store.schema import job_logs, jobs

log = logging.getLogger("ingest.joblogs")

DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # LOG_MAX_BYTES
DEFAULT_READ_SECONDS = 60.0  # LOG_READ_SECONDS
DEFAULT_TRIES = 6  # LOG_FETCH_TRIES
POLL = 2.0  # seconds between looks at the queue when nothing woke the fetcher
WAKE_GAP = 0.25  # the least time between passes: wake-ups from a stream of batches make one pass
PER_PASS = 4  # jobs per pass: the newest first, then a fresh look (newer failures may have come)
BACKOFF = 30.0  # seconds before the first retry; doubled each time
BACKOFF_MAX = 3600.0
# Bytes per read: the deadline and a stop are checked between reads.  A read returns once this much came,
# so a log that trickles can overrun the deadline by the time 16 KiB take (READ_TIMEOUT if none comes).
CHUNK = 16 * 1024
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # longest wait for one read (a byte); the whole log has `read_seconds`
ANNOTATION_PAGES = 10  # of 100 annotations: a bound on the paging, far more than a failed job's
REDIRECTS = (301, 302, 303, 307, 308)
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
               "User-Agent": "buildmon"}

DONE, GONE, RETRY, FAILED, STOPPED = "done", "gone", "retry", "failed", "stopped"


class RateLimited(Exception):
    """GitHub said to wait: nothing more may be asked before `until` (epoch seconds)."""

    def __init__(self, until: float, status: int):
        super().__init__(f"HTTP {status} rate limit until {until}")
        self.until = until
        self.status = status


class Transient(Exception):
    """A failure that may pass (server error, network, an expired download URL): retry later."""


class _Stopped(Exception):
    """The fetcher is stopping: abandon the read, leave the row as it was."""


def _no_auth(request):
    # Passed as `auth` to the download: without it requests would add credentials from ~/.netrc.
    return request


def _message(response) -> str:
    try:
        body = response.json()  # an error answer: small, read whole even from a stream
    except ValueError:
        return ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""


def clock_text(when: float) -> str:
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%H:%M:%S UTC")


def backoff(tries: int) -> float:
    """Seconds before the next try after the `tries`-th failure (0 for the first): 30 s, 60 s, ... 1 h."""
    return min(BACKOFF_MAX, BACKOFF * 2 ** min(tries, 20))


def size_text(size: int) -> str:
    if size < 10 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024:.0f} KB" if size < 10 * 1024 * 1024 else f"{size / 1024 / 1024:.0f} MB"


@dataclass
class _Read:
    extractor: object  # failures.extract.Extractor, fed
    truncated: bool  # stopped at max_bytes or read_seconds, before the log ended


@dataclass
class RepoCounts:
    """What fetching one repository's pending logs did (the backfill's summary)."""
    done: int = 0
    gone: int = 0
    left: int = 0  # retried later (by the server's fetcher), or given up after the tries


class Fetcher(Background):
    """Fetch failed jobs' annotations and logs from `api_url` with `token`; record them in `engine`."""

    thread_name = "job-log-fetcher"

    def __init__(self, engine: Engine, *, token: str, api_url: str = DEFAULT_API_URL, rules,
                 max_bytes: int = DEFAULT_MAX_BYTES, read_seconds: float = DEFAULT_READ_SECONDS,
                 tries: int = DEFAULT_TRIES, publish=None, active=None, decide=None, per_pass: int = PER_PASS,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                 clock=time.time, sleep=time.sleep):
        super().__init__()
        self.engine = engine
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.rules = rules
        self.max_bytes = max(1, int(max_bytes))
        self.read_seconds = float(read_seconds)
        self.tries = max(1, int(tries))
        self.publish = publish  # callable(list of live messages) after a job's lines are saved
        self.active = active  # callable() -> bool: fetch only while True (this process holds the processor)
        # callable(conn, job) -> bool, in the transaction that ends a job's capture: alerts held for its
        # failure lines are decided (alerts/decide.py); True when something was.
        self.decide = decide
        self.per_pass = max(1, per_pass)
        self.timeout = (connect_timeout, min(read_timeout, max(1.0, self.read_seconds)))
        self.clock = clock
        self.sleep = sleep
        self.session = requests.Session()  # connections to the API and the blob storage are reused
        self.paused_until = 0.0  # GitHub's rate-limit reset, while the fetcher waits for it

    # --- running ----------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current read (abandoned at its next chunk: that job stays pending)."""
        super().stop(timeout)
        self.session.close()

    def run(self) -> None:
        log.info("job logs: fetching failed jobs' logs and annotations from %s", self.api_url)
        while not self._stop.is_set():
            self._wake.clear()
            handled = 0
            if self.active is None or self.active():
                try:
                    handled = self.run_once()
                except Exception:  # the store was unreachable, or a bug: the queue is still there next pass
                    log.exception("job logs: a pass failed; trying again in %g s", POLL)
            if handled < self.per_pass:
                self._wake.wait(POLL)
                self._stop.wait(WAKE_GAP)

    def run_once(self, now: float | None = None) -> int:
        """Fetch the jobs due by `now` (up to `per_pass`, newest first); how many were handled.  Each job's
        outcome is stamped with `now` when given (tests), else with the time it was fetched."""
        if (self.clock() if now is None else now) < self.paused_until:
            return 0
        with self.engine.connect() as conn:
            due = joblogs.due(conn, self.clock() if now is None else now, self.per_pass)
        handled = 0
        for job, repo, tries in due:
            if self._stop.is_set():
                break
            try:
                outcome = self.fetch(job, repo, tries, now=now)
            except RateLimited as exc:
                self._pause(exc)
                break
            if outcome != STOPPED:
                handled += 1
        return handled

    def _pause(self, limited: RateLimited) -> None:
        self.paused_until = limited.until
        error = f"rate limited by GitHub until {clock_text(limited.until)}"
        with self.engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            moved = joblogs.pause(conn, limited.until, error)
        log.warning("job logs: %s (HTTP %d): pausing, %d pending jobs wait for the reset", error, limited.status,
                    moved)

    # --- one job ----------------------------------------------------------------------------------

    def fetch(self, job: int, repo: str, tries: int = 0, *, now: float | None = None) -> str:
        """Fetch one job's annotations and log and record the outcome: DONE, GONE, RETRY, FAILED or STOPPED
        (abandoned, nothing written).  Raises RateLimited, having written nothing."""
        now = self.clock() if now is None else now
        started = time.monotonic()
        meta = self._job(job)
        scope = job_scope(repo, meta["workflow_name"] or "", meta["name"] or "") if meta else ""
        try:
            annotations = self._annotations(repo, job)
            read = self._log(repo, job)
        except Transient as exc:
            return self._failed(job, repo, tries, str(exc), now)
        except _Stopped:
            return STOPPED
        if isinstance(read, int) and not annotations:
            error = (f"GitHub no longer has this job's log (HTTP {read})" if read == 410 else
                     f"GitHub has no log for this job, or the token may not read it (HTTP {read})")
            self._write(lambda conn: joblogs.give_up(conn, job, joblogs.GONE, error, now), job)
            log.info("job logs: job %d of %s is gone: %s", job, repo, error)
            return GONE
        if isinstance(read, int):  # the log is gone, the annotations are not
            extraction, source = Extractor(self.rules).finish(annotations=annotations, job_scope=scope), "annotations"
        else:
            extraction = read.extractor.finish(annotations=annotations, job_scope=scope, truncated=read.truncated)
            source = "log"
        self._write(lambda conn: joblogs.save(conn, job, repo, extraction, source=source, now=now), job)
        log.info("job logs: fetched job %d of %s (%s%s, %d lines, %d annotations) in %.1f s%s", job, repo,
                 size_text(extraction.log_bytes), ", truncated" if extraction.truncated else "",
                 len(extraction.lines), len(annotations), time.monotonic() - started,
                 f": {extraction.lines[0].text[:120]!r}" if extraction.lines else "")
        if self.publish is not None and meta is not None:
            try:
                self.publish([{"type": "job", "row": {"gitid": job, "run_gitid": meta["run_gitid"],
                                                      "attempt": meta["run_attempt"], "repo": repo}}])
            except Exception:  # saved all the same; pages see it on their next refresh
                log.exception("job logs: publishing job %d failed", job)
        return DONE

    def _failed(self, job: int, repo: str, tries: int, error: str, now: float) -> str:
        if tries + 1 >= self.tries:
            self._write(lambda conn: joblogs.give_up(conn, job, joblogs.FAILED, error, now), job)
            log.warning("job logs: gave up on job %d of %s after %d tries: %s", job, repo, tries + 1, error)
            return FAILED
        delay = backoff(tries)
        self._write(lambda conn: joblogs.retry(conn, job, error, now + delay))
        log.info("job logs: job %d of %s failed (%s); try %d/%d in %g s", job, repo, error, tries + 2, self.tries,
                 delay)
        return RETRY

    def _write(self, work, ended: int | None = None) -> None:
        """`work` in one write transaction; `ended`: the job whose capture it ends (decide its alerts)."""
        decided = False
        with self.engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            work(conn)
            if ended is not None and self.decide is not None:
                decided = self.decide(conn, ended)
        if decided and self.publish is not None:
            try:
                self.publish([{"type": "alerts"}])
            except Exception:  # decided all the same; the page sees it on its next refresh
                log.exception("job logs: publishing alerts failed")

    def _job(self, job: int):
        with self.engine.connect() as conn:
            return conn.execute(select(jobs.c.workflow_name, jobs.c.name, jobs.c.run_gitid, jobs.c.run_attempt)
                                .where(jobs.c.gitid == job)).mappings().first()

    # --- HTTP -------------------------------------------------------------------------------------

    def _get(self, url: str, *, api: bool, **kwargs):
        """GET `url`; the token goes only to the API (`api`), never to the URL GitHub redirects to."""
        if self._stop.is_set():
            raise _Stopped()
        if api:
            headers = dict(API_HEADERS, **({"Authorization": f"token {self.token}"} if self.token else {}))
            kwargs.setdefault("allow_redirects", False)
        else:
            headers = {"User-Agent": API_HEADERS["User-Agent"]}
            kwargs["auth"] = _no_auth
        try:
            return self.session.get(url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise Transient(f"{type(exc).__name__}: {str(exc)[:200]}") from None

    def _check(self, response, what: str) -> None:
        """Raise for a rate limit (RateLimited) or a server error (Transient)."""
        status = response.status_code
        if status in (403, 429):
            wait = rate_limit_wait(status, dict(response.headers), _message(response), self.clock())
            if wait is not None:
                response.close()
                raise RateLimited(self.clock() + wait, status)
        if status >= 500:
            response.close()
            raise Transient(f"{what}: HTTP {status}")

    def _annotations(self, repo: str, job: int) -> list[dict]:
        """The job's check-run annotations (none when GitHub has none, or this token may not read them)."""
        found: list[dict] = []
        url = f"{self.api_url}/repos/{repo}/check-runs/{job}/annotations?per_page=100"
        for _page in range(ANNOTATION_PAGES):
            response = self._get(url, api=True)
            self._check(response, "annotations")
            if response.status_code != 200:
                if response.status_code not in (404, 410):  # e.g. 403: the token lacks checks:read
                    log.info("job logs: no annotations for job %d of %s: HTTP %d %s", job, repo,
                             response.status_code, _message(response)[:120])
                return found
            try:
                page = response.json()
            except ValueError:
                raise Transient("annotations: not JSON") from None
            found += [a for a in page if isinstance(a, dict)] if isinstance(page, list) else []
            url = links(response.headers.get("Link")).get("next")
            if not url or not page:
                break
        return found

    def _log(self, repo: str, job: int):
        """The job's log read into an extractor (`_Read`), or the HTTP status when GitHub has none."""
        url = f"{self.api_url}/repos/{repo}/actions/jobs/{job}/logs"
        response = self._get(url, api=True, stream=True)
        with response:
            if response.status_code in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise Transient(f"log: HTTP {response.status_code} without a Location")
                download = self._get(urljoin(url, location), api=False, stream=True)
                with download:
                    if download.status_code != 200:  # an expired or refused URL: ask GitHub for a new one
                        raise Transient(f"log download: HTTP {download.status_code}")
                    return self._read(download)
            self._check(response, "log")
            if response.status_code in (404, 410):
                return response.status_code
            if response.status_code == 200:  # served directly (no redirect): read it all the same
                return self._read(response)
            raise Transient(f"log: HTTP {response.status_code} {_message(response)[:200]}".rstrip())

    def _read(self, response) -> _Read:
        """Stream the log into an extractor, up to `max_bytes` or `read_seconds`."""
        extractor = Extractor(self.rules, max_bytes=self.max_bytes)  # it cuts the log at max_bytes
        deadline = time.monotonic() + self.read_seconds
        try:
            for chunk in response.iter_content(CHUNK):
                if self._stop.is_set():
                    raise _Stopped()
                if not extractor.feed(chunk):  # max_bytes reached
                    return _Read(extractor, True)
                if time.monotonic() >= deadline:
                    return _Read(extractor, True)
        except requests.RequestException as exc:
            raise Transient(f"log download: {type(exc).__name__}: {str(exc)[:200]}") from None
        return _Read(extractor, False)

    # --- a repository at once (the backfill) ------------------------------------------------------

    def repo(self, name: str, *, progress: bool | None = None) -> RepoCounts:
        """Fetch every pending job of `name` now (after its backfill), waiting out rate limits as the
        backfill does; a job that fails is left to the server's fetcher, with its backoff."""
        counts = RepoCounts()
        with self.engine.connect() as conn:
            pending = conn.execute(select(job_logs.c.job, job_logs.c.tries).where(
                job_logs.c.state == joblogs.PENDING, job_logs.c.repo == name).order_by(job_logs.c.job.desc())).all()
        bar = tqdm(pending, desc=f"{name} logs", unit="job", leave=False,
                   disable=None if progress is None else not progress)
        try:
            for job, tries in bar:
                while True:
                    try:
                        outcome = self.fetch(job, name, tries)
                        break
                    except RateLimited as exc:
                        self._pause(exc)
                        wait = max(0.0, exc.until - self.clock())
                        say(f"rate limited by GitHub ({exc.status}): waiting {wait:.0f} s until reset "
                            f"({clock_text(exc.until)})")
                        self.sleep(wait)
                if outcome == DONE:
                    counts.done += 1
                elif outcome == GONE:
                    counts.gone += 1
                else:
                    counts.left += 1
        finally:
            bar.close()
        return counts
