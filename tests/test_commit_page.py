"""The commit and pull-request pages: in headless Chromium on the demo (`dash_duo`), and their layouts
(unknown, malformed, ambiguous shas and numbers) on a small hand-made store."""
import json
import os

import pytest
import requests
from dash.testing.wait import until
from selenium.webdriver.common.by import By

from dashapp import create_app
from dashapp.commit_tables import commit_href, pull_href
from dashapp.config import Config
from ingest.demo import RED_STREAK
from store.engine import make_engine
from store.queries import commit as cq
from tests.builders import commit, run, store_with
from tests.helpers import LiveServer

SHOTS = os.environ.get("SHOTS_DIR", "/work/notes/shots")


def _query(path, function, *args):
    engine = make_engine(path)
    with engine.connect() as conn:
        out = function(conn, *args)
    engine.dispose()
    return out


def _expected(conn):
    """The red streak's first bad commit, its CI run's failing job (latest attempt) and that job's primary line."""
    (found,) = cq.find_commits(conn, RED_STREAK["first_bad_sha"], RED_STREAK["repo"])
    runs = cq.commit_runs(conn, found["id"])
    ci = next(r for r in runs if r["workflow"] == RED_STREAK["workflow"])
    job = next(j for j in ci["attempts"][0]["jobs"] if j["name"] == RED_STREAK["job"])
    return found, ci, job


def _text(dash_duo, selector):
    """An element's text read in one script (a redraw between finding it and reading it is no failure)."""
    return dash_duo.driver.execute_script("var e = document.querySelector(arguments[0]);"
                                          "return e ? e.textContent : null;", selector)


def _click(dash_duo, element):
    """Click `element` once scrolled into view at once (a smooth scroll moves it under the pointer)."""
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def _shot(dash_duo, name, dark=True):
    """Screenshots of the page, light then dark (the shell's theme switch), back to light."""
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    driver = dash_duo.driver
    driver.set_window_size(1400, 1800)
    driver.save_screenshot(os.path.join(SHOTS, f"{name}-light.png"))
    if dark:
        dash_duo.find_element("#theme-switch").click()
        until(lambda: driver.execute_script("return document.documentElement.getAttribute('data-bs-theme')") == "dark",
              timeout=10)
        driver.save_screenshot(os.path.join(SHOTS, f"{name}-dark.png"))
        dash_duo.find_element("#theme-switch").click()
        until(lambda: driver.execute_script("return document.documentElement.getAttribute('data-bs-theme')") == "light",
              timeout=10)
    driver.set_window_size(1400, 1000)


@pytest.mark.browser
def test_cm001_first_red_commit_lists_its_failing_job_and_line(dash_duo, demo_store):
    found, ci, job = _query(demo_store, _expected)
    line = job["failure"]["failure_lines"][0]["text"]
    app = create_app(Config.from_env({}, database_path=demo_store, webhook_secret="s"))
    dash_duo.start_server(app)
    dash_duo.driver.set_window_size(1400, 1000)
    # A short sha (7 hex digits) with no ?repo=: the demo has one commit starting so.
    dash_duo.driver.get(dash_duo.server_url + f"/commit/{RED_STREAK['first_bad_sha'][:7]}")
    dash_duo.wait_for_element("#commit-page #cm-summary", timeout=30)
    assert dash_duo.find_element("#cm-sha").text == RED_STREAK["first_bad_sha"]
    assert dash_duo.find_element("#cm-title").text == RED_STREAK["first_bad_title"] + found["message"][
        len(RED_STREAK["first_bad_title"]):].splitlines()[0]
    assert RED_STREAK["first_bad_author"] in dash_duo.find_element("#cm-author").text
    assert dash_duo.find_element("#cm-repo").text.endswith(RED_STREAK["repo"])
    # The CI run comes first (failed), with both attempts; its latest attempt lists the failing job and its line.
    first = dash_duo.find_element("#cm-runs .cm-run")
    assert first.get_attribute("data-workflow") == RED_STREAK["workflow"] and first.get_attribute("data-glyph") == "X"
    row = first.find_element(By.CSS_SELECTOR, f"tr.cm-job-failed[data-job='{job['job']}']")
    assert row.get_attribute("data-name") == RED_STREAK["job"]
    step = job["failing_step"]
    assert row.find_element(By.CSS_SELECTOR, ".cm-step").text == f"{step['number']}. {RED_STREAK['step']}"
    shown = row.find_element(By.CSS_SELECTOR, ".cm-line")
    assert shown.get_attribute("title") == line and shown.get_attribute("textContent") == " ".join(line.split())[:240]
    assert shown.get_attribute("href").endswith(f"/failure/{job['failure']['fingerprint']}")
    assert row.find_element(By.CSS_SELECTOR, ".cm-verdict").text == job["failure"]["verdict"]["kind"]
    assert row.find_element(By.CSS_SELECTOR, ".cm-job-name").get_attribute("href") == job["url"]
    assert len(first.find_elements(By.CSS_SELECTOR, "details.cm-attempt-earlier")) == len(ci["attempts"]) - 1 == 1
    # On main, the commit after it fails the same way (the red streak goes on); the one before is green.
    nb = dash_duo.find_element(f"#cm-neighbours-table tr.cm-nb-row[data-workflow='{RED_STREAK['workflow']}']")
    assert nb.find_element(By.CSS_SELECTOR, ".cm-nb-newer .cm-same").text.startswith("fails the same way")
    older = nb.find_element(By.CSS_SELECTOR, ".cm-nb-older .cm-nb-sha")
    assert older.text == RED_STREAK["last_green_sha"][:7]
    assert nb.find_element(By.CSS_SELECTOR, ".cm-nb-older .wf-glyph").text == "O"
    _shot(dash_duo, "commit")
    # A neighbour's sha opens its own commit page in place.
    _click(dash_duo, older)
    until(lambda: _text(dash_duo, "#cm-sha") == RED_STREAK["last_green_sha"], timeout=30)
    assert dash_duo.driver.current_url.endswith(commit_href(RED_STREAK["repo"], RED_STREAK["last_green_sha"]))
    # An unknown sha: a clear page, no error.
    dash_duo.driver.get(dash_duo.server_url + "/commit/0123456789abcdef")
    until(lambda: "No such commit." in (_text(dash_duo, "#cm-notice") or ""), timeout=30)
    assert [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"] == []
    app.server.extensions["buildmon"].close()


def _a_pull(conn):
    """The demo's pull request with the most runs in the red streak's repository."""
    return conn.exec_driver_sql("SELECT number FROM run_pulls WHERE repo = ? GROUP BY number "
                                "ORDER BY count(*) DESC, number LIMIT 1", (RED_STREAK["repo"],)).scalar()


@pytest.mark.browser
def test_cm002_pull_request_page_groups_runs_by_head_commit(dash_duo, demo_store):
    number = _query(demo_store, _a_pull)
    assert number, "the demo's runs name their pull requests"
    commits = _query(demo_store, cq.pull_commits, RED_STREAK["repo"], number)
    app = create_app(Config.from_env({}, database_path=demo_store, webhook_secret="s"))
    dash_duo.start_server(app)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.driver.get(dash_duo.server_url + pull_href(RED_STREAK["repo"], number))
    dash_duo.wait_for_element("#pl-commits-table", timeout=30)
    rows = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#pl-commits-table tr.pl-commit-row")
    assert [r.get_attribute("data-sha") for r in rows] == [g["sha"] for g in commits]
    newest = commits[0]
    cells = rows[0].find_elements(By.CSS_SELECTOR, "td.pl-cell")
    assert [(c.get_attribute("data-workflow"), c.get_attribute("data-glyph")) for c in cells] == [
        (x["workflow"], x["glyph"]) for x in newest["runs"]]
    assert dash_duo.find_element("#pl-github").get_attribute("href") == \
        f"https://github.com/{RED_STREAK['repo']}/pull/{number}"
    _shot(dash_duo, "pull")
    _click(dash_duo, rows[0].find_element(By.CSS_SELECTOR, ".pl-sha"))
    until(lambda: _text(dash_duo, "#cm-sha") == newest["sha"], timeout=30)
    assert f"#{number}" in dash_duo.find_element("#cm-pulls").text
    assert [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"] == []
    app.server.extensions["buildmon"].close()


# -- layouts on a small store ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmpage") / "c.db"
    records = [commit("abcdef1" + "0" * 33), commit("abcdef1" + "1" * 33), commit("abcdef1" + "0" * 33, repo="o/lib")]
    records += [run(1, sha="abcdef1" + "0" * 33), run(2, sha="abcdef1" + "1" * 33),
                run(3, repo="o/lib", sha="abcdef1" + "0" * 33)]
    store_with(path, records).dispose()
    app = create_app(Config.from_env({}, database_path=str(path), webhook_secret="s"))
    yield app
    app.server.extensions["buildmon"].close()


def _drawn(app, module, **kwargs) -> str:
    import dash

    page = next(p for p in dash.page_registry.values() if p["module"] == module)
    with app.server.test_request_context("/"):
        return json.dumps(page["layout"](**kwargs).to_plotly_json(), default=lambda o: o.to_plotly_json())


@pytest.mark.parametrize("sha, expected", [
    ("0123456789", "No such commit."), ("abcdef2", "No such commit."), ("<b>x</b>", "is not a commit sha"),
    ("", "is not a commit sha"), ("a" * 65, "is not a commit sha"), ("%00", "is not a commit sha"),
    ("abcdef1", "names 3 commits: pick one."), ("abcdef10", "names 2 commits: pick one."),
])
def test_commit_page_notices(small, sha, expected):
    drawn = _drawn(small, "dashapp.pages.commit", sha=sha)
    assert expected in drawn and "cm-content" not in drawn


def test_commit_page_draws_a_commit_and_narrows_by_repository(small):
    assert "cm-content" in _drawn(small, "dashapp.pages.commit", sha="abcdef11")
    assert "cm-content" in _drawn(small, "dashapp.pages.commit", sha="abcdef10", repo="o/app")
    elsewhere = _drawn(small, "dashapp.pages.commit", sha="abcdef11", repo="o/lib")
    assert "No such commit in o/lib." in elsewhere and "cm-choices" in elsewhere


@pytest.mark.parametrize("number, query, expected", [
    ("x", {}, "is not a pull-request number"), ("0", {}, "is not a pull-request number"),
    ("99999999999", {}, "is not a pull-request number"), ("7", {}, "No runs for pull request #7."),
    ("7", {"repo": "o/app"}, "No runs for pull request #7 in o/app."),
])
def test_pull_page_notices(small, number, query, expected):
    drawn = _drawn(small, "dashapp.pages.pull", number=number, **query)
    assert expected in drawn and "pl-content" not in drawn


def test_pull_page_asks_which_repository(small, tmp_path):
    engine = small.server.extensions["buildmon"].engine
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO run_pulls (run, number, repo) VALUES (1, 9, 'o/app'), (3, 9, 'o/lib')")
    try:
        drawn = _drawn(small, "dashapp.pages.pull", number="9")
        assert "Several repositories have a pull request #9" in drawn
        assert pull_href("o/lib", 9) in drawn and pull_href("o/app", 9) in drawn
        assert "pl-content" in _drawn(small, "dashapp.pages.pull", number="9", repo="o/lib")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM run_pulls WHERE number = 9")


def test_hrefs():
    assert commit_href("o/app", "abc1234") == "/commit/abc1234?repo=o%2Fapp"
    assert commit_href(None, "abc1234") == "/commit/abc1234"
    assert commit_href("o/app", "../x") is None and commit_href("o/app", "") is None and commit_href("o", None) is None
    assert pull_href("o/app", 12) == "/pull/12?repo=o%2Fapp"
    assert pull_href("o/app", 0) is None and pull_href("o/app", True) is None and pull_href("o/app", "12") is None


# -- the pages through Dash's own endpoints: the router, and the live redraw ------------------------------

def _post(url, body):
    return requests.post(url + "/_dash-update-component", data=json.dumps(body),
                         headers={"Content-Type": "application/json"}, timeout=60)


def _dep(deps, output):
    return next(d for d in deps if d["output"].startswith(output) or output in d["output"])


def _body(dep, inputs, state):
    outputs = [{"id": o.rpartition(".")[0], "property": o.rpartition(".")[2]}
               for o in dep["output"].strip(".").split("...")]
    return {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [{**d, "value": v} for d, v in zip(dep["inputs"], inputs)],
            "state": [{**d, "value": v} for d, v in zip(dep["state"], state)],
            "changedPropIds": [f"{d['id']}.{d['property']}" for d in dep["inputs"][:1]]}


@pytest.mark.parametrize("path", ["/commit/abcdef11", "/commit/abcdef1", "/commit/%ZZ", "/commit/%F0%9F%99%82",
                                  "/commit/" + "f" * 5000, "/commit/", "/commit/a/b", "/pull/7", "/pull/%00",
                                  "/pull/-1", "/pull/" + "9" * 400, "/pull/1e3"])
def test_routes_draw_or_refuse_never_fail(small, path):
    with LiveServer(small) as live:
        deps = requests.get(live.url + "/_dash-dependencies", timeout=30).json()
        router = _dep(deps, "_pages_content.children")
        answer = _post(live.url, _body(router, [path, "?repo=%00&sha=abcdef10"], []))
    assert answer.status_code in (200, 204, 400), answer.text[:300]


def test_live_redraw_answers_real_and_junk_selections(small):
    engine = small.server.extensions["buildmon"].engine
    with engine.connect() as conn:
        commit_id = cq.find_commits(conn, "abcdef11")[0]["id"]
    with LiveServer(small) as live:
        deps = requests.get(live.url + "/_dash-dependencies", timeout=30).json()
        commit_dep, pull_dep = _dep(deps, "..cm-content.children"), _dep(deps, "..pl-content.children")
        drawn = _post(live.url, _body(commit_dep, [3], [{"commit": commit_id}, None]))
        assert drawn.status_code == 200 and "cm-summary" in drawn.text
        digest = drawn.json()["response"]["cm-drawn"]["data"]
        assert _post(live.url, _body(commit_dep, [4], [{"commit": commit_id}, digest])).status_code == 204  # same
        assert "cm-gone" in _post(live.url, _body(commit_dep, [5], [{"commit": 10 ** 9}, None])).text
        assert _post(live.url, _body(commit_dep, [5], [None, None])).status_code == 204
        assert _post(live.url, _body(pull_dep, [5], [{"repo": "o/app", "number": 7}, None])).status_code == 204
        for bad in ({"commit": "1"}, {"commit": 2 ** 64}, {"commit": True}, [1], "x"):
            assert _post(live.url, _body(commit_dep, [5], [bad, None])).status_code == 400
        for bad in ({"repo": "\ud800", "number": 7}, {"repo": "o/app", "number": 0}, {"repo": 1, "number": 7}):
            assert _post(live.url, _body(pull_dep, [5], [bad, None])).status_code == 400
        assert _post(live.url, _body(commit_dep, [5], [{"commit": commit_id}, ["x"]])).status_code == 400
