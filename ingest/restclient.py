"""A small GitHub REST client on PyGithub's requester: pages, rate limits, retries.

PyGithub's object layer completes each listed object with one more request
when its raw JSON is read, and its retry hides rate-limit waits; so this
module uses PyGithub's `Requester` (auth, base URL for GitHub Enterprise,
JSON, typed errors) and does the paging and waiting itself, saying so.
"""
import math
import re
import sys
import time
from datetime import datetime, timezone

import requests
from github import Auth, Github, GithubException
from tqdm import tqdm

DEFAULT_API_URL = "https://api.github.com"
PER_PAGE = 100  # GitHub's maximum
SECONDARY_WAIT = 60.0  # GitHub: wait at least a minute on a secondary limit without retry-after
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="([^"]+)"')


class ApiError(RuntimeError):
    """GitHub answered with an error, or kept failing after the retries."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def links(header: str | None) -> dict[str, str]:
    """Parse a `Link` header into {rel: url}."""
    return {rel: url for url, rel in _LINK.findall(header or "")}


def rate_limit_wait(status: int, headers: dict, message: str, now: float) -> float | None:
    """Seconds to wait before retrying, when the answer is a rate limit; else None."""
    if status not in (403, 429):
        return None
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    if str(headers.get("x-ratelimit-remaining")) == "0":
        try:
            # reset is whole epoch seconds: one more second makes sure it passed.
            return max(1.0, float(headers["x-ratelimit-reset"]) - now + 1.0)
        except (KeyError, ValueError):
            return SECONDARY_WAIT
    if status == 429 or "rate limit" in (message or "").lower():
        return SECONDARY_WAIT
    return None


def say(message: str) -> None:
    """A line on stderr that does not break a progress bar."""
    tqdm.write(message, file=sys.stderr)
    sys.stderr.flush()


class Client:
    """GET with paging, rate-limit waits and a few retries on server errors."""

    def __init__(self, api_url: str = DEFAULT_API_URL, token: str | None = None, *, retries: int = 3,
                 backoff: float = 2.0, timeout: int = 30, sleep=time.sleep, clock=time.time):
        self.github = Github(
            auth=Auth.Token(token) if token else None,
            base_url=api_url.rstrip("/"),
            timeout=timeout,
            per_page=PER_PAGE,
            retry=None,  # retries and rate limits are handled (and reported) in get()
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self.requester = self.github.requester
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock
        self.requests = 0
        self.waited = 0.0

    def close(self) -> None:
        self.github.close()

    def get(self, url: str, params: dict | None = None) -> tuple[dict, object]:
        """GET one URL (a path or an absolute URL from a Link header): (headers, JSON)."""
        failures = 0
        while True:
            self.requests += 1
            try:
                return self.requester.requestJsonAndCheck("GET", url, parameters=params)
            except GithubException as exc:
                data = exc.data if isinstance(exc.data, dict) else {}
                message = str(data.get("message") or "")
                wait = rate_limit_wait(exc.status, exc.headers or {}, message, self.clock())
                if wait is not None:
                    until = datetime.fromtimestamp(self.clock() + wait, tz=timezone.utc).strftime("%H:%M:%S UTC")
                    say(f"rate limited by GitHub ({exc.status}): waiting {math.ceil(wait)} s until reset ({until})")
                    self.waited += wait
                    self.sleep(wait)
                    continue
                if exc.status < 500 or failures >= self.retries:
                    raise ApiError(f"GET {url}: HTTP {exc.status} {message}".rstrip(), exc.status) from None
                why = f"HTTP {exc.status}"
            except requests.RequestException as exc:
                if failures >= self.retries:
                    raise ApiError(f"GET {url}: {type(exc).__name__}: {exc}") from None
                why = type(exc).__name__
            failures += 1
            delay = self.backoff * 2 ** (failures - 1)
            say(f"GitHub request failed ({why}): retry {failures}/{self.retries} in {delay:g} s")
            self.sleep(delay)

    def pages(self, url: str, params: dict | None = None):
        """Yield (headers, JSON) for each page, following `Link: rel="next"`."""
        params = {"per_page": PER_PAGE, **(params or {})}
        while url:
            headers, data = self.get(url, params)
            yield headers, data
            url = links(headers.get("link")).get("next")
            params = None  # the next link carries the query

    def items(self, url: str, key: str | None = None, params: dict | None = None):
        """Yield every item of a paged listing (`key` names the array in an object page)."""
        for _headers, data in self.pages(url, params):
            yield from (data.get(key) or []) if key else (data or [])
