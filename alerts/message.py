"""What an alert says: the message body, built from the store when the alert is decided.

The body is plain data (the contract every renderer in `alerts/render.py`
reads): names and commit titles as sanitised text, times as epoch seconds.
It is built inside the deciding transaction and stored in the outbox, so a
message says what was true when it was decided, whenever it is delivered.
"""
import time
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.engine import Connection

from alerts.render import duration
from domain.text import clip, one_line
from store import alerts as store_alerts
from store.queries.failures import run_failures
from store.schema import branches, commits, repos, workflows

BLAME = 20  # commits listed in a blame list
RUNS = 5  # red runs listed
JOBS = 8  # failing jobs listed
LINES = 3  # failure lines listed per job
TITLE = 200  # characters of a commit title


def _empty(kind: str, alert: str, rule: str, now: float) -> dict:
    return {"kind": kind, "alert": alert, "break_id": None, "rule": rule, "title": "", "summary": "", "repo": None,
            "workflow": None, "branch": None, "red_since": None, "red_for": None, "red_commits": None,
            "first_bad": None, "fixed_by": None, "blame": [], "blame_more": 0, "last_green": None, "jobs": [],
            "runs": [], "links": {"triage": None, "alerts": None, "failure": None}, "run": None, "figure": None,
            "decided": now}


def _commit(row, repo_url: str | None, mentions: dict) -> dict | None:
    if row is None:
        return None
    _id, sha, message, author, when = row
    return {"sha": sha, "title": clip(one_line((message or "").split("\n", 1)[0]), TITLE), "author": author,
            "mention": mentions.get(author) if author else None,
            "url": f"{repo_url}/commit/{sha}" if repo_url else None, "time": when}


def _short(sha: str | None) -> str:
    return (sha or "")[:7]


class Builder:
    """Builds the bodies of one decision's messages (names, links and mentions looked up once)."""

    def __init__(self, conn: Connection, config, dashboard_url: str, now: float | None = None):
        self.conn, self.config, self.now = conn, config, time.time() if now is None else now
        self.dashboard = dashboard_url.rstrip("/")

    def _commit_rows(self, ids) -> dict:
        ids = sorted({i for i in ids if i is not None})
        if not ids:
            return {}
        c = commits.c
        return {row[0]: tuple(row) for row in self.conn.execute(
            select(c.id, c.hash, c.message, c.author, c.time).where(c.id.in_(ids)))}

    def _names(self, workflow: int, branch: int) -> tuple[str, str, str, str | None]:
        row = self.conn.execute(
            select(workflows.c.repo, workflows.c.name, branches.c.name, repos.c.url)
            .select_from(workflows.join(branches, branches.c.id == branch)
                         .outerjoin(repos, repos.c.name == workflows.c.repo))
            .where(workflows.c.id == workflow)).first()
        return tuple(row) if row else ("?", "?", "?", None)

    def _links(self, repo: str, workflow: str, branch: str, fingerprint: str | None) -> dict:
        if not self.dashboard:
            return {"triage": None, "alerts": None, "failure": None}
        triage = f"{self.dashboard}/triage?{urlencode({'repo': repo, 'workflow': workflow, 'branch': branch})}"
        failure = f"{self.dashboard}/failure/{quote(fingerprint)}" if fingerprint else None
        return {"triage": triage, "alerts": f"{self.dashboard}/alerts", "failure": failure}

    def red(self, kind: str, rule: str, *, break_id: int, workflow: int, branch: int, episode, fixer=None,
            red_since: float | None = None, recorded: dict | None = None) -> dict:
        """A red break's message: `kind` break, reminder or recovery (`fixer`: the green cell).  Without
        red cells in `episode` (they were re-run green), what the break `recorded` (its row) says."""
        repo, wf_name, br_name, repo_url = self._names(workflow, branch)
        cells = episode.cells
        first, newest = (cells[0], cells[-1]) if cells else (None, None)
        first_id = first.commit if first else (recorded or {}).get("first_bad")
        last_green = episode.last_green.commit if episode.last_green else (recorded or {}).get("last_green")
        rows = self._commit_rows([first_id, last_green, fixer and fixer.commit])
        mentions = self.config.mentions
        body = _empty(kind, "red", rule, self.now)
        red_since = (first.created if first else self.now) if red_since is None else red_since
        ended = fixer.created if fixer is not None else self.now
        red_count = len(cells) if cells else (recorded or {}).get("red_count") or 0
        body.update(break_id=break_id, repo=repo, workflow=wf_name, branch=br_name, red_since=red_since,
                    red_for=max(0.0, ended - red_since), red_commits=red_count,
                    first_bad=_commit(rows.get(first_id), repo_url, mentions),
                    last_green=_commit(rows.get(last_green), repo_url, mentions))
        if first_id in rows:
            first_time = rows[first_id][4]
            after = rows[last_green][4] if last_green in rows else first_time - 1e-6
            listed, total = store_alerts.commits_between(self.conn, repo, branch, after, first_time, BLAME)
            body["blame"] = [_commit(row, repo_url, mentions) for row in listed]
            body["blame_more"] = max(0, total - len(listed))
        body["runs"] = [{"url": cell.url, "sha": cell.sha, "conclusion": cell.conclusion, "attempt": cell.attempt,
                         "created": cell.created} for cell in reversed(cells[-RUNS:])]
        failed = run_failures(self.conn, [newest.gitid]).get(newest.gitid, []) if newest else []
        body["jobs"] = [{"name": job["name"], "url": job["url"], "conclusion": job["conclusion"],
                         "verdict": job["verdict"]["kind"] if job["verdict"] else None,
                         "lines": [{"text": line["text"], "klass": line["klass"], "rule": line["rule"],
                                    "path": line["path"], "line": line["line"]} for line in job["lines"][:LINES]]}
                        for job in failed[:JOBS]]
        fingerprint = next((job["lines"][0]["fingerprint"] for job in failed if job["lines"]), None)
        body["links"] = self._links(repo, wf_name, br_name, fingerprint)
        who = body["first_bad"]
        culprit = f"{_short(who['sha'])} “{who['title']}”" + (f" by {who['author']}" if who["author"] else "") \
            if who else "an unknown commit"
        n = red_count
        if kind == "recovery":
            body["fixed_by"] = _commit(rows.get(fixer.commit), repo_url, mentions) if fixer else None
            fix = body["fixed_by"]
            body["title"] = f"{repo}: {wf_name} is green again on {br_name}"
            body["summary"] = (f"Fixed by {_short(fix['sha'])} “{fix['title']}”" if fix else "Green again") + \
                f" after {duration(body['red_for'])} red ({n} red commit{'s' * (n != 1)})."
        elif kind == "reminder":
            body["title"] = f"{repo}: {wf_name} is still red on {br_name}"
            body["summary"] = f"Red for {duration(body['red_for'])} since {culprit}; {n} red " \
                f"commit{'s' * (n != 1)}."
        else:
            body["title"] = f"{repo}: {wf_name} is red on {br_name}"
            body["summary"] = f"{n} commit{'s' * (n != 1)} red in a row, since {culprit} " \
                f"({duration(body['red_for'])} ago)." if fixer is None else \
                f"{n} commits were red in a row, from {culprit}, for {duration(body['red_for'])}."
        return body

    def stale(self, rule: str, *, break_id: int, run: dict, hours: float) -> dict:
        body = _empty("break", "stale", rule, self.now)
        body.update(break_id=break_id, repo=run["repo"], workflow=run["workflow"], branch=run["branch"],
                    run={"name": run["workflow"], "url": run["url"], "status": run["status"],
                         "since": run["updatetime"]},
                    title=f"{run['repo']}: a {run['workflow']} run has been {run['status'].replace('_', ' ')} "
                          f"for {duration(self.now - run['updatetime'])}",
                    summary=f"Run {run['gitid']} on {run['branch']} has not changed for over {hours:g} h.")
        body["links"] = self._links(run["repo"], run["workflow"], run["branch"], None)
        return body

    def figure(self, kind: str, alert: str, *, break_id: int, value: float, threshold: float) -> dict:
        body = _empty(kind, alert, "operator", self.now)
        what = {"lag": "Processing lag", "failed_deliveries": "Failed deliveries"}[alert]
        shown = duration(value) if alert == "lag" else f"{int(value)}"
        limit = duration(threshold) if alert == "lag" else f"{int(threshold)}"
        body.update(break_id=break_id, figure={"name": alert, "value": value, "threshold": threshold},
                    title=f"{what} is {'back under' if kind == 'recovery' else 'over'} its threshold",
                    summary=f"{what}: {shown} (threshold {limit}).")
        if self.dashboard:
            body["links"]["alerts"] = f"{self.dashboard}/alerts"
        return body


def test_body(channel: str, now: float | None = None, dashboard_url: str = "") -> dict:
    """A test message for `channel`: shows the channel works, and what a message looks like."""
    now = time.time() if now is None else now
    body = _empty("test", "test", "", now)
    body.update(title=f"Build Monitor: a test message to {channel}",
                summary="If you can read this, the channel works. Alerts will look like this.")
    if dashboard_url:
        body["links"]["alerts"] = f"{dashboard_url.rstrip('/')}/alerts"
    return body
