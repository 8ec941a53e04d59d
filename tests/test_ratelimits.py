"""The rate limits' shared counters (store/ratelimits.py): the storage itself, and two servers on one store
counting together with `store://` (each its own with `memory://`)."""
import time

import pytest
import requests
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from dashapp import create_app
from dashapp.config import Config
from store.ratelimits import StoreStorage, resolve
from tests.helpers import SECRET, LiveServer

pytestmark = pytest.mark.both_stores


def test_a_window_counts_hits_until_it_ends_then_starts_again(engine):
    storage = StoreStorage("store://", engine=engine)
    assert storage.check()
    assert [storage.incr("k", 1) for _ in range(3)] == [1, 2, 3]
    assert storage.incr("k", 1, amount=2) == 5 and storage.get("k") == 5
    assert storage.incr("other", 60) == 1  # keys apart
    ends = storage.get_expiry("k")
    assert time.time() < ends <= time.time() + 1
    time.sleep(max(0.0, ends - time.time()) + 0.05)
    assert storage.get("k") == 0  # the window ended
    assert storage.incr("k", 1) == 1 and storage.get_expiry("k") > ends  # a new one
    storage.clear("k")
    assert storage.get("k") == 0 and storage.get("other") == 1
    assert storage.reset() == 1 and storage.get("other") == 0


def test_the_limits_library_refuses_past_the_limit_across_two_storages(engine):
    """Two storages on one store, as two processes have: one count."""
    limit = parse("3/minute")
    first, second = (FixedWindowRateLimiter(StoreStorage("store://", engine=engine)) for _ in range(2))
    answers = [(first if i % 2 else second).hit(limit, "login", "10.0.0.1") for i in range(5)]
    assert answers == [True, True, True, False, False]
    assert first.get_window_stats(limit, "login", "10.0.0.1").remaining == 0
    assert second.test(limit, "login", "10.0.0.2")  # another client has its own


def test_store_is_the_default_on_postgresql_and_memory_on_sqlite(engine, store_kind):
    assert resolve("", engine) == (("store://", {"engine": engine}) if store_kind == "postgresql" else ("memory://", {}))
    assert resolve("memory://", engine) == ("memory://", {})
    assert resolve("store://", engine) == ("store://", {"engine": engine})


@pytest.mark.parametrize("uri, answered", [("store://", 5), ("memory://", 10)])
def test_two_servers_on_one_store_share_the_api_limit_with_store(new_store, uri, answered):
    db = new_store("two")
    apps = [create_app(Config.from_env({}, database_path=str(db), webhook_secret=SECRET, api_rate_limit="5/minute",
                                       ratelimit_storage_uri=uri, processor="off")) for _ in range(2)]
    try:
        with LiveServer(apps[0]) as a, LiveServer(apps[1]) as b:
            codes = [requests.get((a, b)[i % 2].url + "/api/builds?limit=1", timeout=30).status_code
                     for i in range(12)]
        assert codes.count(200) == answered and set(codes) == {200, 429}
        if uri == "store://":
            assert codes[:5] == [200] * 5  # the sixth, whichever server it reached, was the sixth
    finally:
        for app in apps:
            app.server.extensions["buildmon"].close()
