"""Small hand-made histories for query tests, written through the real writer."""
from domain import records as r
from store.engine import make_engine, writer_options
from store.migrate import upgrade
from store.writer import apply

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def run(gitid, *, repo="o/app", workflow="CI", branch="main", sha="c1", author="alice", attempt=1,
        status="completed", conclusion="success", created=T0, queue=10.0, duration=100.0, updated=None):
    started = created + queue if status in ("in_progress", "completed") else None
    ended = started + duration if status == "completed" else None
    return r.Run(repo=repo, gitid=gitid, attempt=attempt, workflow=workflow, branch=branch, head_sha=sha,
                 author=author, event="push", status=status, conclusion=conclusion if status == "completed" else None,
                 createtime=created, starttime=started, endtime=ended,
                 updatetime=updated if updated is not None else (ended or started or created),
                 url=f"https://github.com/{repo}/actions/runs/{gitid}")


def commit(sha, *, repo="o/app", author="alice", time=T0 - 60, message=None):
    return r.Commit(repo=repo, hash=sha, author=author, message=message or f"commit {sha}", time=time)


def store_with(path, records):
    engine = make_engine(str(path))
    upgrade(engine)
    with engine.connect().execution_options(**writer_options()) as conn:
        with conn.begin():
            apply(conn, records)
    return engine
