"""`dashapp.components`, `dashapp.shell` URL helpers, and the Waterfall's figure and table builders, without a browser."""
import json

import pandas as pd
import plotly.graph_objects as go
import plotly
import pytest

from dashapp import components, shell, tables
from dashapp.figures import performance_figure
from store.queries.filters import Filters


@pytest.mark.parametrize("seconds, text", [
    (None, "—"), (float("nan"), "—"), ("x", "—"), (0, "0s"), (45.4, "45s"), (492, "8m 12s"),
    (3600, "1h 00m"), (7500, "2h 05m"), (3 * 86400 + 4 * 3600 + 5, "3d 4h"), (-3, "0s"),
])
def test_format_duration(seconds, text):
    assert components.format_duration(seconds) == text


def _text(component) -> str:
    return json.dumps(component.to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder)


def test_metric_cards_row_without_runs_shows_dashes():
    text = _text(components.metric_cards_row({"success_rate": None, "failure_rate": None, "active": 0}))
    assert text.count('"\\u2014"') >= 3 and "0 %" not in text and "NaN" not in text


def test_metric_cards_row_values():
    cards = {"success_rate": 0.932, "failure_rate": 0.068, "success": 161, "decisive": 173, "failed": 12,
             "cancelled": 0, "build_time_avg": 670, "build_time_p50": 624, "build_time_p90": 1461,
             "queue_time_p50": 10, "queue_time_p90": 22, "active": 1, "stale": 1}
    text = _text(components.metric_cards_row(cards, extra=[components.metric_card("TTS", "9m")]))
    for expected in ("93.2 %", "6.8 %", "11m 10s", "p50 10m 24s", "p90 24m 21s", "+ 1 stale", "p90 22s", "TTS"):
        assert expected in text


def test_download_csv_link_carries_the_filters():
    link = components.download_csv_link({"repo": "o/app", "branch": "main", "window": "24h"})
    assert link.id == "download-csv" and link.href == "/api/builds.csv?repo=o%2Fapp&branch=main&window=24h"
    assert components.download_csv_link(Filters()).href == "/api/builds.csv"


def test_url_helpers_keep_other_arguments():
    assert shell.with_args("?repo=o%2Fa&window=24h&offset=50", drop=("offset",), branch="dev") == \
        "?repo=o%2Fa&window=24h&branch=dev"
    assert shell.with_args("?repo=o%2Fa", repo=None) == ""
    hrefs, active = shell.nav_state("/triage", "?repo=o%2Fa&offset=50&author=bob")
    # The Alerts page shows every repository; the arguments ride along, for the way back.
    assert hrefs == ["/?repo=o%2Fa&author=bob", "/triage?repo=o%2Fa&author=bob", "/developer?repo=o%2Fa&author=bob",
                     "/runners?repo=o%2Fa&author=bob", "/alerts?repo=o%2Fa&author=bob"]
    assert active == [False, True, False, False, False]


def test_performance_figure_has_no_empty_traces():
    bucket = pd.Timestamp("2024-01-01", tz="UTC")
    series = pd.DataFrame([
        {"bucket": bucket, "workflow": "CI", "runtime_p50": 60.0, "runtime_p90": 120.0, "queue_p50": 6.0,
         "queue_p90": 9.0, "failures": 2, "runs": 5},
        # Only queued runs: no build time, no queue time, nothing to draw but the bucket.
        {"bucket": bucket, "workflow": "Docs", "runtime_p50": float("nan"), "runtime_p90": float("nan"),
         "queue_p50": float("nan"), "queue_p90": float("nan"), "failures": 0, "runs": 1},
    ])
    fig = performance_figure(series)
    names = [(t["type"], t["name"]) for t in fig["data"]]
    assert ("bar", "CI") in names and all(name == "CI" for _t, name in names)
    assert all(not all(v is None for v in t["y"]) for t in fig["data"])
    # Build and queue times on the top two panels, failures on the third, all on the shared x axis.
    assert {(t["type"], t["yaxis"]) for t in fig["data"]} == {("scatter", "y"), ("scatter", "y2"), ("bar", "y3")}
    assert fig["layout"]["yaxis3"]["dtick"] == 1 and fig["layout"]["xaxis3"]["anchor"] == "y3"
    assert go.Figure(fig).data[0].y == (1.0,)  # a valid plotly figure


def test_commit_grid_table_marks_red_rows_and_links_cells():
    grid = {
        "workflows": ["CI"],
        "commits": pd.DataFrame([{"commitid": 1, "sha": "abcdef123", "message": "fix: it\n\nbody", "author": "bob",
                                  "time": 1_700_000_000.0, "state": "red"}]),
        "cells": pd.DataFrame([{"commitid": 1, "workflow": "CI", "status": "completed", "conclusion": "failure",
                                "url": "https://github.com/o/app/actions/runs/9", "attempts": 2,
                                "earlier_failed": True, "queuetime": 12.0, "duration": 492.0, "glyph": "X"}]),
    }
    text = _text(tables.commit_grid_table(grid, "o/app", now=1_700_000_000.0 + 7200))
    for expected in ("commit-red", "abcdef1", "fix: it", "2h ago", "CI: failure \\u00b7 2 attempts \\u00b7 an earlier attempt failed \\u00b7 duration 8m 12s "
                     "\\u00b7 queued 12s", "/actions/runs/9"):
        assert expected in text
    # The sha opens the commit's page here, in place (assets/rawhtml.js follows data-dash-link).
    markup = tables.commit_grid_table(grid, "o/app").html
    assert ('<a href="/commit/abcdef123?repo=o%2Fapp" data-dash-link="1" class="wf-sha font-monospace" '
            'title="abcdef123">abcdef1</a>') in markup
    assert "github.com/o/app/commit" not in markup


def test_commit_grid_table_from_records_equals_from_frames():
    """The page passes the grid as lists of dicts (`grid_records`); frames draw the same table."""
    commits = [{"commitid": 1, "sha": "abcdef123", "message": "fix: it", "author": "bob", "time": 1_700_000_000.0,
                "state": "red"},
               {"commitid": 2, "sha": "bcdef1234", "message": None, "author": None, "time": None, "state": "green"}]
    cells = [{"commitid": 1, "workflow": "CI", "status": "completed", "conclusion": "failure",
              "url": "https://github.com/o/app/actions/runs/9", "attempts": 2, "earlier_failed": True,
              "queuetime": 12.0, "duration": 492.0, "glyph": "X"},
             {"commitid": 2, "workflow": "Lint", "status": "in_progress", "conclusion": None, "url": None,
              "attempts": 1, "earlier_failed": False, "queuetime": None, "duration": None, "glyph": "?"}]
    as_records = {"workflows": ["CI", "Lint"], "commits": commits, "cells": cells}
    as_frames = {"workflows": ["CI", "Lint"], "commits": pd.DataFrame(commits), "cells": pd.DataFrame(cells)}
    now = 1_700_000_000.0 + 60
    assert tables.commit_grid_table(as_records, "o/app", now=now).html == \
        tables.commit_grid_table(as_frames, "o/app", now=now).html


def test_commit_grid_html_escapes_everything_and_keeps_one_html_block():
    grid = {
        "workflows": ['<b>"CI"</b>'],
        "commits": pd.DataFrame([{"commitid": 1, "sha": "abc", "message": "<img src=x onerror=alert(1)>\n\nbody",
                                  "author": "<script>x</script>", "time": 1_700_000_000.0, "state": "red"}]),
        "cells": pd.DataFrame([{"commitid": 1, "workflow": '<b>"CI"</b>', "status": "completed",
                                "conclusion": "failure", "url": "javascript:alert(1)", "attempts": 1,
                                "earlier_failed": False, "queuetime": None, "duration": None, "glyph": "X"}]),
    }
    markup = tables.commit_grid_table(grid, 'o/<b>"app"</b>').html
    assert "<img" not in markup and "<script" not in markup and "<b>" not in markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup and "javascript:" not in markup
    assert "\n" not in markup  # no raw line break in any text or attribute
    assert 'href="/commit/abc?repo=o%2F%3Cb%3E%22app%22%3C%2Fb%3E"' in markup
    odd_sha = {**grid, "commits": grid["commits"].assign(sha='"><b>x')}
    odd = tables.commit_grid_table(odd_sha, "o/app").html  # no commit page for it: the sha is text
    assert "/commit/" not in odd and '<span class="wf-sha font-monospace" title="&quot;&gt;&lt;b&gt;x">' in odd


def test_unfixed_list_shows_the_newest_and_counts_the_rest():
    import pandas as pd

    from dashapp.triage_tables import unfixed_list

    rows = [{"workflow": "CI", "id": i, "url": f"https://x/{i}", "conclusion": "failure", "repo": "o/r",
             "branch": f"b{i}", "sha": "abcdef123", "message": "m", "title": "t", "createtime": 1e9 - i}
            for i in range(7)]
    shown = unfixed_list(pd.DataFrame(rows), now=1e9, shown=5)
    items = shown.children
    assert [i.className for i in items].count("list-group-item dev-unfixed-item") == 5
    assert items[0].children[0].children == "CI #0" and items[-1].children == "… and 2 older unfixed failures, not listed."
    sha = items[0].children[3]
    assert (sha.children, sha.href, sha.title) == ("abcdef1", "/commit/abcdef123?repo=o%2Fr", "abcdef123")
    assert len(unfixed_list(pd.DataFrame(rows), now=1e9, shown=7).children) == 7
