from dashapp.urlstate import href, read


def test_read_filters_and_window():
    f = read({"repo": "org/app", "branch": "main", "window": "24h", "junk": "x", "author": " "}, now=100_000)
    assert (f.repo, f.branch, f.author, f.since) == ("org/app", "main", None, 100_000 - 86400)


def test_all_time_and_default_window():
    assert read({"window": "all"}, now=10).since is None
    assert read({}, now=1_000_000).since == 1_000_000 - 7 * 86400
    assert read({"window": "bogus"}, now=1_000_000).since == 1_000_000 - 7 * 86400


def test_href_round_trip():
    assert href("/", repo="org/app", branch=None) == "/?repo=org%2Fapp"
    assert href("/developer") == "/developer"
