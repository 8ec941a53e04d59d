"""Hostile text for tests: markup, quotes, control and bidi characters, formula prefixes, bad URLs, huge lengths;
and signed deliveries carrying it in every text field a page, the API or the export shows."""
import json
import time

from hypothesis import strategies as st

from domain.text import CONTROL_RANGES
from tests.helpers import fixture_json

REMOVED = {chr(c) for a, b in CONTROL_RANGES for c in range(ord(a), ord(b) + 1)}

FRAGMENTS = [
    "<", ">", "&", '"', "'", "`", "/", "\\", ",", ";", "%", "$", "#", "*", "_", "|", "[", "]", "(", ")", "!",
    "<a href='javascript:alert(1)'>x</a>", '<a href="https://evil.example">click</a>', "<b>", "</b>", "<br>",
    "<i>it</i>", "<sup>2</sup>", '<span style="font-size:90px">', "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>", "<svg onload=alert(1)>", "<iframe src=javascript:alert(1)>", '"><b>x</b>',
    "' onmouseover='alert(1)", "[x](javascript:alert(1))", "](https://evil.example)", "[evil](https://evil.example)",
    "<https://evil.example>", "![i](https://evil.example/i.png)", "**bold**", "# head", "%{y}", "%{x|%Y}",
    "$x^2$", "&lt;b&gt;", "&#60;", "&amp;", "&#x3c;", "javascript:", "data:text/html,", "{{7*7}}", "${7*7}",
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\x9b", "\u202a", "\u202b", "\u202c",
    "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f", "\u2028", "\ufeff",
    "=", "+", "-", "@", "\t", "\r", "\n", "\r\n", "\uff1d", "\uff0b", "\uff0d", "\uff20",
    "=HYPERLINK(\"http://evil.example\",\"x\")", "=cmd|' /C calc'!A0", "+SUM(1)", "@SUM(1)", "-2+3",
    "é", "✓", "漢字", "🙂", "ﷺ", "ע", " ", "a", "main", "CI",
]
SHORT_TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=8).map("".join)
HUGE_TEXT = SHORT_TEXT.map(lambda s: s or "<b>x</b>").map(lambda s: s * (70_000 // len(s) + 1))  # past MAX_TEXT
HOSTILE_TEXT = st.one_of(SHORT_TEXT, SHORT_TEXT, SHORT_TEXT, HUGE_TEXT)

BAD_URLS = [
    "javascript:alert(1)", "JaVaScRiPt:alert(document.domain)", " javascript:alert(1)", "java\tscript:alert(1)",
    "\x00javascript:alert(1)", "\u202ejavascript:alert(1)", "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)", "file:///etc/passwd", "//evil.example/x", "/relative", "https:evil.example",
    "https:\\\\evil.example", "http://[::1", "mailto:a@b.example", "",
    'https://evil.example/"><img src=x onerror=alert(1)>', "https://x.example/a) [evil](https://evil.example",
    "https://github.com/o/r/actions/runs/1", "HTTPS://GITHUB.COM/o/r", " https://spaced.example/ ",
]
HOSTILE_URL = st.one_of(st.sampled_from(BAD_URLS), SHORT_TEXT,
                        st.builds(lambda scheme, rest: scheme + rest,
                                  st.sampled_from(["https://", "http://", "javascript:", "data:", "HTTPS://", ""]),
                                  SHORT_TEXT))

FIELDS = ("workflow", "branch", "message", "title", "login", "author", "job", "step", "label", "runner", "event")
URL_FIELDS = ("run_url", "job_url", "repo_url", "workflow_url")


def values(text=HOSTILE_TEXT, url=HOSTILE_URL):
    """A dict of hostile values, one per text field and URL a delivery can set."""
    return st.fixed_dictionaries({**{f: text for f in FIELDS}, **{f: url for f in URL_FIELDS}})


RUN = fixture_json("workflow_run/completed.payload.json")
JOB = fixture_json("workflow_job/completed.failure.with-organization.payload.json")
START = 1_714_521_600  # 2024-05-01T00:00:00Z
DAY, HOUR = 86_400, 3_600


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _run(repo: str, v: dict, run_id: int, sha: str, t: float, *, attempt=1, conclusion="failure") -> bytes:
    payload = json.loads(json.dumps(RUN))
    run = payload["workflow_run"]
    run.update(id=run_id, name=v["workflow"], head_branch=v["branch"], head_sha=sha, display_title=v["title"],
               html_url=v["run_url"], conclusion=conclusion, event=v["event"], run_attempt=attempt,
               created_at=iso(t), run_started_at=iso(t + attempt * HOUR), updated_at=iso(t + (attempt + 1) * HOUR))
    run["head_commit"].update(id=sha, message=v["message"], timestamp=iso(t))
    run["head_commit"]["author"]["name"] = v["author"]
    run["actor"]["login"] = run["triggering_actor"]["login"] = v["login"]
    payload["workflow"].update(html_url=v["workflow_url"])
    payload["repository"].update(full_name=repo, default_branch=v["branch"], html_url=v["repo_url"])
    return json.dumps(payload).encode()


def _job(repo: str, v: dict, job_id: int, run_id: int, sha: str, t: float) -> bytes:
    payload = json.loads(json.dumps(JOB))
    job = payload["workflow_job"]
    job.update(id=job_id, run_id=run_id, run_attempt=1, head_sha=sha, head_branch=v["branch"], name=v["job"],
               html_url=v["job_url"], labels=[v["label"], "ubuntu-latest"], runner_name=v["runner"],
               workflow_name=v["workflow"], created_at=iso(t), started_at=iso(t + HOUR),
               completed_at=iso(t + 2 * HOUR))
    for step in job["steps"]:
        step["started_at"], step["completed_at"] = iso(t + HOUR), iso(t + 2 * HOUR)
        if step["conclusion"] == "failure":
            step["name"] = v["step"]
    payload["repository"].update(full_name=repo, default_branch=v["branch"], html_url=v["repo_url"])
    return json.dumps(payload).encode()


def sha(run_id: int) -> str:
    """The head commit of run `run_id` (distinct in its first seven characters)."""
    return (f"{run_id:x}"[::-1] * 8)[:40]


def deliveries(repo: str, v: dict, base: int, start: float = START) -> list[tuple[str, bytes]]:
    """(event, body) of a small history carrying `v`, in the two days from `start`: an older run failed then
    passed on re-run (flaky), and the newest run (`base + 2`) failed on a job's step (a failure group, a red
    default branch, an unfixed failure)."""
    flaky, newest = base + 1, base + 2
    old_sha, new_sha = sha(flaky), sha(newest)
    return [
        ("workflow_run", _run(repo, v, flaky, old_sha, start + 10 * HOUR, attempt=1, conclusion="failure")),
        ("workflow_run", _run(repo, v, flaky, old_sha, start + 10 * HOUR, attempt=2, conclusion="success")),
        ("workflow_run", _run(repo, v, newest, new_sha, start + DAY + 10 * HOUR)),
        ("workflow_job", _job(repo, v, base + 3, newest, new_sha, start + DAY + 10 * HOUR)),
    ]
