"""`/api/builds.csv`: quoting, ISO times, defused formulas, filters, streaming in constant memory."""
import csv
import io

import pytest
import requests

from bench import export
from dashapp.api.csvexport import cells, defuse, iso
from store.queries.builds import FIELDS
from tests import builders as b
from tests.helpers import LiveServer

TRICKY = ['fix, "quoted" and\nmultiline\r\nmessage', "=HYPERLINK(\"http://x\")", "+SUM(1)", "-1", "@cmd",
          "\tTab", "\rCR", "plain ünïcødé ✓", "a'=b"]


@pytest.mark.parametrize("text, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("a=1", "a=1"), ("", ""), ("'quoted", "'quoted"),
])
def test_defuse(text, expected):
    assert defuse(text) == expected


def test_times_are_iso_utc():
    assert iso(0) == "1970-01-01T00:00:00Z" and iso(1.5) == "1970-01-01T00:00:01.500Z" and iso(None) == ""
    row = tuple({"id": 7, "message": "=x", "createtime": 0.0}.get(name) for name in FIELDS)
    assert cells(row)[FIELDS.index("message")] == "'=x" and cells(row)[FIELDS.index("createtime")].endswith("Z")


def test_export_parses_back_with_quoting_and_filters(db_path, app):
    records = [b.commit(f"c{i}", message=m) for i, m in enumerate(TRICKY)]
    records += [b.run(10 + i, sha=f"c{i}", created=b.T0 + i, repo="o/app") for i in range(len(TRICKY))]
    records += [b.commit("z", repo="o/other"), b.run(99, repo="o/other", sha="z", created=b.T0 + 100)]
    b.store_with(db_path, records).dispose()
    with LiveServer(app) as live:
        response = requests.get(live.url + "/api/builds.csv", params={"repo": "o/app"}, timeout=30)
        everything = requests.get(live.url + "/api/builds.csv", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="builds-')
    parsed = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert tuple(parsed[0]) == FIELDS
    rows = [dict(zip(FIELDS, row)) for row in parsed[1:]]
    assert [r["id"] for r in rows] == [str(10 + i) for i in reversed(range(len(TRICKY)))]
    assert [r["message"] for r in reversed(rows)] == [defuse(m) for m in TRICKY]
    assert rows[-1]["createtime"] == "2023-11-14T22:13:20Z" and rows[-1]["status"] == "completed"
    assert len(list(csv.reader(io.StringIO(everything.text, newline="")))) == len(TRICKY) + 2


def test_export_of_nothing_is_a_header():
    from dashapp import create_app
    from dashapp.config import Config

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Config.from_env({}, database_path=f"{tmp}/empty.db", webhook_secret="s"))
        with LiveServer(app) as live:
            text = requests.get(live.url + "/api/builds.csv", timeout=30).text
    assert text == ",".join(FIELDS) + "\r\n"


@pytest.mark.slow
def test_quick_benchmark_streams_20k_rows_that_parse_back(capsys):
    result = export.main(["--quick"])
    assert result["rows"] == 20_000 and result["mismatched_rows"] == 0
    assert result["chunked"]  # a streamed body, no Content-Length
    assert result["first_byte_s"] < result["seconds"] / 2  # rows leave before the export is done
    assert result["peak_growth_mb"] < 100
