"""Synthetic but realistic webhook deliveries, built from GitHub's own examples.

Each run goes requested -> in_progress -> completed with a few jobs going
queued -> in_progress -> completed, as GitHub sends them for one push; each run is on a commit of
its own, committed 30 s before the run was created.
"""
import copy
import datetime
import json
import os
import random
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# As the tests find them: FIXTURES_DIR, else SHARED_DIR/fixtures/github, else ../shared beside the project.
FIXTURES = os.environ.get("FIXTURES_DIR") or os.path.join(
    os.environ.get("SHARED_DIR", os.path.join(ROOT, "..", "shared")), "fixtures", "github")


def _load(relative: str) -> dict:
    with open(os.path.join(FIXTURES, relative)) as f:
        return json.load(f)


def synthetic_deliveries(count: int, *, seed: int = 1, jobs_per_run: int = 3,
                         repos: int = 1) -> list[tuple[str, str, bytes]]:
    """`count` deliveries as (event, guid, body), in GitHub's usual order; with `repos` > 1 the runs (and their
    jobs) take turns over that many repositories (the run fixture's own, then `<name>-2`, `<name>-3`, ...)."""
    rng = random.Random(seed)
    run_base = _load("workflow_run/completed.payload.json")
    job_base = _load("workflow_job/completed.success.with-organization.payload.json")
    out: list[tuple[str, str, bytes]] = []
    n = 0
    while len(out) < count:
        n += 1
        run_id = 7_000_000_000 + n
        sha = f"{rng.getrandbits(160):040x}"
        t0 = 1_760_000_000 + n * 60
        conclusion = rng.choices(["success", "failure", "cancelled"], [85, 12, 3])[0]

        def stamp(seconds, t0=t0):
            return datetime.datetime.fromtimestamp(t0 + seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        events = []
        for action, status, concl, updated in (("requested", "queued", None, 0), ("in_progress", "in_progress", None, 5),
                                               ("completed", "completed", conclusion, 300)):
            payload = copy.deepcopy(run_base)
            payload["action"] = action
            payload["workflow_run"].update(id=run_id, head_sha=sha, status=status, conclusion=concl,
                                           created_at=stamp(0), run_started_at=stamp(5), updated_at=stamp(updated),
                                           run_number=n, name=f"CI {n % 5}")
            # Each commit its own time, as a push's commits have: the fixture's one timestamp for every
            # commit would leave the order of a branch's commits to ties (store/derived/streaks.py breaks
            # them by arrival order).
            payload["workflow_run"]["head_commit"].update(id=sha, timestamp=stamp(-30))
            events.append(("workflow_run", payload))
        for j in range(jobs_per_run):
            for status in ("queued", "in_progress", "completed"):
                payload = copy.deepcopy(job_base)
                payload["action"] = status
                payload["workflow_job"].update(
                    id=run_id * 10 + j, run_id=run_id, head_sha=sha, status=status, name=f"job {j}",
                    conclusion=(conclusion if j == 0 else "success") if status == "completed" else None,
                    created_at=stamp(1), started_at=stamp(10), completed_at=stamp(200) if status == "completed" else None)
                events.append(("workflow_job", payload))
        if repos > 1:  # and each job in its run's repository (the two fixtures name different ones)
            repository = copy.deepcopy(run_base["repository"])
            if n % repos:
                repository["full_name"] += f"-{n % repos + 1}"
                repository["name"] += f"-{n % repos + 1}"
            for _event, payload in events:
                payload["repository"] = repository
        for event, payload in events:
            out.append((event, str(uuid.UUID(int=rng.getrandbits(128))), json.dumps(payload).encode()))
    return out[:count]
