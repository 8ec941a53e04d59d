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


def test_junk_url_values_fall_back_to_the_defaults():
    from dashapp.urlstate import MAX_OFFSET, MAX_VALUE, clean_args, offset, window

    junk = {"repo": ["org/app", "other"], "branch": "  ", "workflow": "x" * (MAX_VALUE + 1), "author": "\ud800",
            "window": 7, "event": None, 3: "key not text", "status": []}
    assert clean_args(junk) == {"repo": "org/app"}
    assert [window(w) for w in ("24h", "1y", None, ["24h"], {"a": 1}, "\u0663")] == ["24h"] + ["7d"] * 5
    assert [offset(o) for o in ("50", " 50 ", 50, "-5", "1e3", "\u0663", "1_0", str(MAX_OFFSET + 1),
                                "9" * 30, 2 ** 63, True, None, 1.5)] == [50, 50, 50] + [0] * 10
    f = read({"window": ["bogus", "24h"], "repo": "\ud800x", "branch": " main "}, now=1_000_000)
    assert (f.since, f.repo, f.branch) == (1_000_000 - 7 * 86400, None, "main")
