"""Pure parsing: a GitHub webhook payload (event + action) -> normalized records.

No I/O here.  A payload that does not have the shape GitHub documents raises
`PayloadError` with a reason fit to show the sender; an event we do not track
parses to an empty `Parsed` with `ignored` set.
"""
import posixpath
from dataclasses import dataclass, field

from domain import records as r
from domain.state import STATUS_RANK
from domain.text import clean
from ingest.times import BadTime, epoch

TRACKED_EVENTS = ("ping", "push", "create", "delete", "workflow_run", "workflow_job")
IGNORED_EVENTS = ("check_run", "check_suite")
MAX_TEXT = 65_536  # longest commit message or name kept
ZERO_SHA = "0" * 40


class PayloadError(ValueError):
    """The payload does not have the shape GitHub sends for its event."""


@dataclass
class Parsed:
    event: str
    action: str | None = None
    repo: str | None = None
    records: list = field(default_factory=list)
    ignored: str | None = None  # why nothing was recorded, for an ignored event


# --- typed accessors: each names the field that is wrong -------------------

def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _obj(d: dict, key: str, where: str, *, required: bool = True) -> dict | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise PayloadError(f"{_at(where, key)}: expected an object")
    return value


def _str(d: dict, key: str, where: str, *, required: bool = True) -> str | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{_at(where, key)}: expected a string")
    # Cleaned here already (records clean every text anyway) so that a name of nothing but control
    # characters counts as no name, and the fallbacks below apply.
    return clean(value[:MAX_TEXT])


def _int(d: dict, key: str, where: str, *, required: bool = True) -> int | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise PayloadError(f"{_at(where, key)}: expected a non-negative integer")
    return value


def _time(d: dict, key: str, where: str, *, required: bool = False) -> float | None:
    value = d.get(key)
    if value is None and required:
        raise PayloadError(f"{_at(where, key)}: missing time")
    try:
        return epoch(value)
    except BadTime as exc:
        raise PayloadError(f"{_at(where, key)}: {exc}") from None


def _status(d: dict, where: str) -> str:
    status = _str(d, "status", where)
    if status not in STATUS_RANK:
        raise PayloadError(f"{where}.status: unknown status {status[:40]!r}")
    return status


def _login(d: dict, key: str, where: str) -> str | None:
    user = _obj(d, key, where, required=False)
    return _str(user, "login", f"{where}.{key}", required=False) if user else None


# --- events ----------------------------------------------------------------

def parse(event: str, payload) -> Parsed:
    """Parse one delivery's JSON body for the `X-GitHub-Event` `event`."""
    if not isinstance(payload, dict):
        raise PayloadError("body: expected a JSON object")
    action = payload.get("action")
    if action is not None and not isinstance(action, str):
        raise PayloadError("action: expected a string")
    if event in IGNORED_EVENTS:
        return Parsed(event, action, ignored=f"{event} events are not tracked (workflow_run covers them)")
    if event not in TRACKED_EVENTS:
        return Parsed(event, action, ignored=f"event {event[:40]!r} is not tracked")
    repo = _repo(payload, required=event != "ping")
    parsed = Parsed(event, action, repo=repo.name if repo else None)
    if repo:
        parsed.records.append(repo)
    _PARSERS[event](payload, parsed)
    return parsed


def _repo(payload: dict, *, required: bool) -> r.Repo | None:
    repo = _obj(payload, "repository", "", required=required)
    if repo is None:
        return None
    name = _str(repo, "full_name", "repository")
    if "/" not in name:
        raise PayloadError("repository.full_name: expected owner/name")
    return r.Repo(
        name=name,
        default_branch=_str(repo, "default_branch", "repository", required=False),
        url=_str(repo, "html_url", "repository", required=False),
    )


def _ping(payload: dict, parsed: Parsed) -> None:
    _int(payload, "hook_id", "", required=False)


def _push(payload: dict, parsed: Parsed) -> None:
    ref = _str(payload, "ref", "")
    if not ref.startswith("refs/heads/"):
        parsed.ignored = "tag push"
        return
    branch = ref[len("refs/heads/"):]
    pusher = _obj(payload, "pusher", "", required=False) or {}
    who = _login(payload, "sender", "") or _str(pusher, "name", "pusher", required=False)
    commits = payload.get("commits") or []
    if not isinstance(commits, list):
        raise PayloadError("commits: expected an array")
    head = _obj(payload, "head_commit", "", required=False)
    when = _time(head, "timestamp", "head_commit") if head else None
    if payload.get("deleted") is True:
        parsed.records.append(r.Branch(parsed.repo, branch, who, when, deleted=True))
        return
    parsed.records.append(r.Branch(parsed.repo, branch, who, when))
    seen = set()
    for i, commit in enumerate(commits + ([head] if head else [])):
        if not isinstance(commit, dict):
            raise PayloadError(f"commits[{i}]: expected an object")
        record = _commit(commit, parsed.repo, f"commits[{i}]")
        if record.hash not in seen:
            seen.add(record.hash)
            parsed.records.append(record)


def _commit(commit: dict, repo: str, where: str) -> r.Commit:
    author = _obj(commit, "author", where, required=False) or {}
    return r.Commit(
        repo=repo,
        hash=_str(commit, "id", where),
        author=_str(author, "username", f"{where}.author", required=False)
        or _str(author, "name", f"{where}.author", required=False),
        message=_str(commit, "message", where, required=False),
        time=_time(commit, "timestamp", where, required=True),
    )


def _ref_event(payload: dict, parsed: Parsed) -> None:
    ref_type = _str(payload, "ref_type", "")
    if ref_type != "branch":
        parsed.ignored = f"{ref_type[:20]} {parsed.event}"
        return
    parsed.records.append(
        r.Branch(
            parsed.repo,
            _str(payload, "ref", ""),
            _login(payload, "sender", ""),
            deleted=parsed.event == "delete",
        )
    )


def _workflow_run(payload: dict, parsed: Parsed) -> None:
    run = _obj(payload, "workflow_run", "")
    where = "workflow_run"
    workflow = _obj(payload, "workflow", "", required=False) or {}
    path = _str(run, "path", where, required=False) or _str(workflow, "path", "workflow", required=False)
    name = (
        _str(run, "name", where, required=False)
        or _str(workflow, "name", "workflow", required=False)
        or (posixpath.basename(path) if path else None)
        or f"workflow {_int(run, 'workflow_id', where)}"
    )
    status = _status(run, where)
    attempt = _int(run, "run_attempt", where, required=False) or 1
    created = _time(run, "created_at", where, required=True)
    run_started = _time(run, "run_started_at", where)
    updated = _time(run, "updated_at", where)
    started = run_started if status in ("in_progress", "completed") else None
    head_sha = _str(run, "head_sha", where)
    branch = _str(run, "head_branch", where, required=False) or "(detached)"
    head = _obj(run, "head_commit", where, required=False)
    author = _login(run, "actor", where) or _login(run, "triggering_actor", where)
    parsed.records.append(
        r.Workflow(
            repo=parsed.repo,
            name=name,
            url=_str(workflow, "html_url", "workflow", required=False)
            or _str(run, "workflow_url", where, required=False)
            or "",
            gitid=_int(run, "workflow_id", where, required=False),
            path=path,
        )
    )
    if head:
        head_author = _obj(head, "author", f"{where}.head_commit", required=False) or {}
        parsed.records.append(
            r.Commit(
                repo=parsed.repo,
                hash=head_sha,
                author=_str(head_author, "name", f"{where}.head_commit.author", required=False),
                message=_str(head, "message", f"{where}.head_commit", required=False),
                time=_time(head, "timestamp", f"{where}.head_commit") or created,
            )
        )
    else:
        parsed.records.append(r.Commit(parsed.repo, head_sha, None, None, created))
    parsed.records.append(r.Branch(parsed.repo, branch))
    parsed.records.append(
        r.Run(
            repo=parsed.repo,
            gitid=_int(run, "id", where),
            attempt=attempt,
            workflow=name,
            branch=branch,
            head_sha=head_sha,
            author=author,
            event=_str(run, "event", where, required=False),
            status=status,
            conclusion=_str(run, "conclusion", where, required=False) if status == "completed" else None,
            # A re-run's attempt is created when it starts; the run's own
            # created_at is the first attempt's.
            createtime=created if attempt == 1 or run_started is None else run_started,
            starttime=started,
            endtime=updated if status == "completed" else None,
            updatetime=updated,
            url=_str(run, "html_url", where, required=False),
            run_number=_int(run, "run_number", where, required=False),
            title=_str(run, "display_title", where, required=False),
            pull_requests=_pull_numbers(run, where),
        )
    )


def _pull_numbers(run: dict, where: str) -> tuple[int, ...]:
    """The numbers of `pull_requests` (GitHub lists the run's pull requests in its own repository; a
    fork's are not listed), at most 100 of them."""
    found = run.get("pull_requests")
    if found is None:
        return ()
    if not isinstance(found, list):
        raise PayloadError(f"{_at(where, 'pull_requests')}: expected an array")
    numbers = []
    for i, pull in enumerate(found[:100]):
        if not isinstance(pull, dict):
            raise PayloadError(f"{where}.pull_requests[{i}]: expected an object")
        number = _int(pull, "number", f"{where}.pull_requests[{i}]")
        if number < 2**31:
            numbers.append(number)
    return tuple(sorted(set(numbers)))


def _workflow_job(payload: dict, parsed: Parsed) -> None:
    parsed.records.append(job_record(_obj(payload, "workflow_job", ""), parsed.repo, "workflow_job"))


def job_record(job: dict, repo: str, where: str = "job") -> r.Job:
    """A job from a `workflow_job` payload or a REST job listing."""
    status = _status(job, where)
    runner = _str(job, "runner_name", where, required=False)
    # started_at is set while a job is still queued: it is a start only once
    # the job is running, or completed on a runner.
    really_started = status == "in_progress" or (status == "completed" and bool(runner))
    labels = job.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise PayloadError(f"{where}.labels: expected an array of strings")
    raw_steps = job.get("steps") or []
    if not isinstance(raw_steps, list):
        raise PayloadError(f"{where}.steps: expected an array")
    steps = []
    for i, step in enumerate(raw_steps):
        w = f"{where}.steps[{i}]"
        if not isinstance(step, dict):
            raise PayloadError(f"{w}: expected an object")
        steps.append(
            r.Step(
                number=_int(step, "number", w),
                name=_str(step, "name", w),
                status=_str(step, "status", w, required=False),
                conclusion=_str(step, "conclusion", w, required=False),
                starttime=_time(step, "started_at", w),
                endtime=_time(step, "completed_at", w),
            )
        )
    return r.Job(
        repo=repo,
        gitid=_int(job, "id", where),
        run_gitid=_int(job, "run_id", where),
        run_attempt=_int(job, "run_attempt", where, required=False) or 1,
        name=_str(job, "name", where),
        workflow_name=_str(job, "workflow_name", where, required=False),
        head_branch=_str(job, "head_branch", where, required=False),
        head_sha=_str(job, "head_sha", where, required=False),
        status=status,
        conclusion=_str(job, "conclusion", where, required=False) if status == "completed" else None,
        createtime=_time(job, "created_at", where) or _time(job, "started_at", where),
        starttime=_time(job, "started_at", where) if really_started else None,
        endtime=_time(job, "completed_at", where) if status == "completed" else None,
        runner_name=runner,
        runner_id=_int(job, "runner_id", where, required=False),
        labels=tuple(labels),
        url=_str(job, "html_url", where, required=False),
        steps=tuple(steps),
        runner_group=_str(job, "runner_group_name", where, required=False),
    )


_PARSERS = {
    "ping": _ping,
    "push": _push,
    "create": _ref_event,
    "delete": _ref_event,
    "workflow_run": _workflow_run,
    "workflow_job": _workflow_job,
}
