"""The cost of knowing who asks: `GET /api/me` through the app (Flask's test client, no network), per request,
for each way of proving who one is.

    python -m bench.auth                 # a fresh SQLite store in a temporary directory
    python -m bench.auth --db STORE      # an existing store (migrated first)

Printed: microseconds per request (median of 3 rounds) with no protection, with an API_TOKENS token (a
comparison in memory), with a sign-in session's cookie and with an issued `bm_` token (each one indexed
read of the store).
"""
import argparse
import os
import statistics
import tempfile
import time

from dashapp import create_app
from dashapp.config import Config
from store import accounts
from store.engine import writing


def _time(client, headers: dict, requests: int) -> float:
    for _ in range(200):  # warm: compiled queries, pooled connections
        answer = client.get("/api/me", headers=headers)
        answer.close()
        assert answer.status_code == 200, answer.status_code
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(requests // 3):
            client.get("/api/me", headers=headers).close()  # closed: the thread limiter frees its slot
        rounds.append((time.perf_counter() - started) / (requests // 3) * 1e6)
    return statistics.median(rounds)


def measure(database: str, requests: int = 3000) -> dict:
    common = {"database_path": database, "webhook_secret": "bench", "api_rate_limit": "10000000/minute",
              "auth_failure_limit": "10000000/minute"}
    out = {}
    for label, settings in (("unprotected", {}), ("API_TOKENS token", {"api_tokens": "static-token"}),
                            ("sign-in", {"oidc_issuer": "http://127.0.0.1:9/", "oidc_client_id": "bench"})):
        app = create_app(Config.from_env({}, **common, **settings))
        services = app.server.extensions["buildmon"]
        client = app.server.test_client()
        try:
            if label == "unprotected":
                out[label] = _time(client, {}, requests)
            elif label == "API_TOKENS token":
                out[label] = _time(client, {"Authorization": "Bearer static-token"}, requests)
            else:
                with writing(services.engine) as conn:
                    cookie, _csrf = accounts.open_session(conn, subject="bench", login="bench", email=None,
                                                          role="viewer", hours=1)
                    _id, token = accounts.issue_token(conn, name="bench", role="viewer", created_by="bench",
                                                      days=None)
                client.set_cookie("buildmon_session", cookie)
                out["session cookie"] = _time(client, {}, requests)
                client.delete_cookie("buildmon_session")
                out["issued token"] = _time(client, {"Authorization": f"Bearer {token}"}, requests)
        finally:
            services.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a store (default: a new one in a temporary directory)")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    database = args.db or os.path.join(tempfile.mkdtemp(prefix="bench-auth-"), "auth.db")
    for label, micros in measure(database, args.requests).items():
        print(f"{label:18s} {micros:7.0f} µs a request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
