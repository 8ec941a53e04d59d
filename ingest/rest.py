"""Pure parsing of GitHub REST API responses into normalized records.

A REST workflow run has the same fields as a webhook's `workflow_run`, so
runs go through the webhook parser (`ingest.parse`): a run stored by a
webhook and the same run fetched by the backfill become the same records,
with the same state keys, and re-applying them changes nothing.
"""
from domain import records as r
from ingest.parse import PayloadError, job_record, parse
from ingest.times import BadTime, epoch


def repo_record(repo: dict) -> r.Repo:
    """`GET /repos/{owner}/{repo}` -> Repo."""
    name = repo.get("full_name")
    if not isinstance(name, str) or "/" not in name:
        raise PayloadError("repository.full_name: expected owner/name")
    return r.Repo(name=name, default_branch=repo.get("default_branch"), url=repo.get("html_url"))


def branch_record(branch: dict, repo: str) -> r.Branch:
    """One item of `GET /repos/{o}/{r}/branches` (names only: the listing has no author or time)."""
    name = branch.get("name")
    if not isinstance(name, str) or not name:
        raise PayloadError("branch.name: expected a string")
    return r.Branch(repo=repo, name=name)


def commit_record(item: dict, repo: str) -> r.Commit:
    """One item of `GET /repos/{o}/{r}/commits`; author is the login when GitHub knows it."""
    commit = item.get("commit") or {}
    git_author = commit.get("author") or {}
    committer = commit.get("committer") or {}
    sha = item.get("sha")
    if not isinstance(sha, str) or not sha:
        raise PayloadError("commit.sha: expected a string")
    try:
        # The committer date is when the commit entered history (rebases
        # keep the author date); the writer keeps the earliest time seen.
        when = epoch(committer.get("date") or git_author.get("date"))
    except BadTime as exc:
        raise PayloadError(f"commit.date: {exc}") from None
    if when is None:
        raise PayloadError("commit.committer.date: missing time")
    login = (item.get("author") or {}).get("login")
    return r.Commit(repo=repo, hash=sha, author=login or git_author.get("name"), message=commit.get("message"),
                    time=when)


def workflow_record(workflow: dict, repo: str) -> r.Workflow:
    """One item of `GET /repos/{o}/{r}/actions/workflows`."""
    name = workflow.get("name")
    if not isinstance(name, str) or not name:
        raise PayloadError("workflow.name: expected a string")
    return r.Workflow(repo=repo, name=name, url=workflow.get("html_url") or "", gitid=workflow.get("id"),
                      path=workflow.get("path"))


def run_records(run: dict, repo: str, workflow: dict | None = None) -> list:
    """A REST run (one attempt) -> Workflow, Commit, Branch and Run records, as its webhook would give.

    `workflow` is the run's entry from the workflows listing: the webhook
    sends it alongside the run, and names an unnamed run after it.
    """
    payload = {"action": "completed", "workflow_run": run, "repository": {"full_name": repo}}
    if workflow:
        payload["workflow"] = workflow
    return [item for item in parse("workflow_run", payload).records if not isinstance(item, r.Repo)]


def job_records(jobs: list, repo: str) -> list[r.Job]:
    """Items of `GET .../runs/{id}/jobs` -> Jobs (a job without run_attempt counts as attempt 1)."""
    return [job_record(job, repo, f"jobs[{i}]") for i, job in enumerate(jobs)]


def run_summary(run: dict) -> tuple[int, int, str, float | None]:
    """(id, latest attempt, status, updated_at) of a listed run, to decide whether it needs fetching."""
    try:
        updated = epoch(run.get("updated_at"))
    except BadTime:
        updated = None
    return int(run["id"]), int(run.get("run_attempt") or 1), str(run.get("status")), updated


def created_at(run: dict) -> float:
    """A listed run's created_at in epoch seconds (0 when unreadable, so it sorts first)."""
    try:
        return epoch(run.get("created_at")) or 0.0
    except BadTime:
        return 0.0
