"""`domain.text`: the one sanitiser of text from outside (pure functions)."""
import html
import re
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import records as r
from domain.text import (FORMULA_START, as_text, clean, clip, csv_text, defuse, html_text, is_relative_link, link_url,
                         plot_text)
from tests.hostile import HOSTILE_TEXT, HOSTILE_URL, REMOVED

# What plotly.js (src/lib/svg_text_utils.js) reads in a string: tags, entities, template variables.
PLOTLY_TAG = re.compile(r"<[^<>]*>")
PLOTLY_ENTITY = re.compile(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);")
PLOTLY_ENTITIES = {"mu": "\u03bc", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "times": "\xd7", "plusmn": "\xb1",
                   "deg": "\xb0"}
PLOTLY_TEMPLATE = re.compile(r"%{([^\s%{}:]*)([:|\|][^}]*)?}")


def plotly_shows(text: str) -> str:
    """What Plotly draws for `text` that holds no tag (its convertEntities; newlines become spaces)."""
    def entity(m):
        code = m.group(1)
        if code.startswith("#"):
            return chr(int(code[2:], 16) if code[1] == "x" else int(code[1:]))
        return PLOTLY_ENTITIES.get(code, m.group(0))
    return PLOTLY_ENTITY.sub(entity, re.sub(r"\r\n?|\n", " ", text))


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"), ("a\x00b", "ab"), ("tab\tline\nCR\r", "tab\tline\nCR\r"), ("\x1b[31mred", "[31mred"),
    ("del\x7f c1\x85\x9b", "del c1"), ("\u202eevil\u202c", "evil"), ("\u2066iso\u2069", "iso"),
    ("\u200fRLM stays", "\u200fRLM stays"), ("lone \ud800 surrogate", "lone  surrogate"),
    ("ünï ✓ 漢字", "ünï ✓ 漢字"),
])
def test_clean(text, expected):
    assert clean(text) == expected


@given(HOSTILE_TEXT)
@settings(max_examples=400, deadline=None)
def test_clean_removes_exactly_the_controls(text):
    cleaned = clean(text)
    assert cleaned == "".join(c for c in text if c not in REMOVED)
    assert clean(cleaned) == cleaned


@given(HOSTILE_TEXT)
@settings(max_examples=400, deadline=None)
def test_html_text_is_text_in_html(text):
    out = html_text(text)
    assert not set(out) & set("<>\"'") and not set(out) & REMOVED
    assert html.unescape(out) == clean(text)


@given(HOSTILE_TEXT, st.one_of(st.none(), st.integers(min_value=1, max_value=80)))
@settings(max_examples=400, deadline=None)
def test_plot_text_is_literal_in_plotly(text, limit):
    out = plot_text(text, limit)
    assert not PLOTLY_TAG.search(out) and "<" not in out and ">" not in out
    assert not PLOTLY_TEMPLATE.search(out) and "$" not in out and "%" not in out  # no template, no TeX
    assert not set(out) & REMOVED
    shown = plotly_shows(out)
    assert shown == clip(" ".join(clean(text).splitlines()), limit)
    if limit is not None:
        assert len(shown) <= limit


def test_plot_text_examples():
    assert plot_text('<a href="javascript:alert(1)">x</a>') == '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;'
    assert plot_text("a & b <br> 100% $x$") == "a &amp; b &lt;br&gt; 100&#37; &#36;x&#36;"
    assert plotly_shows(plot_text("&lt;b&gt;")) == "&lt;b&gt;"  # an entity in the data is shown as typed
    assert plot_text("x" * 100, 10) == "x" * 9 + "…"


@pytest.mark.parametrize("url", [
    "https://github.com/o/r/actions/runs/1", "http://example.com", "HTTPS://GITHUB.COM/x",
    "HtTp://h.example:8080/p?q#f",
    "https://[::1]/x", "https://user@host.example/",
])
def test_link_url_keeps_http_urls(url):
    assert link_url(url) == url


@pytest.mark.parametrize("url, expected", [
    ("  https://a.example/x\n", "https://a.example/x"), ("\x00https://a.example/", "https://a.example/"),
    ("htt\tps://a.example/", "https://a.example/"),  # what a browser follows is what was checked
])
def test_link_url_strips_what_browsers_ignore(url, expected):
    assert link_url(url) == expected


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "\x01javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "file:///etc/passwd",
    "mailto:a@b.example", "//evil.example/x", "/relative", "relative", "https:evil.example", "https:/evil.example",
    "https:///path", "https://", "http://[::1", "https://a b.example/", "https:\\\\evil.example", "https://<",
    "https://a<b.example/", "https://%2F/", "https://\u202eevil",
    "ｈttps://full.width", "", None, 42, b"https://bytes.example",
])
def test_link_url_refuses_everything_else(url):
    assert link_url(url) is None


@given(HOSTILE_URL)
@settings(max_examples=500, deadline=None)
def test_link_url_gives_only_absolute_http_urls(url):
    out = link_url(url)
    if out is not None:
        parts = urlsplit(out)
        assert parts.scheme.lower() in ("http", "https") and parts.hostname
        assert re.match(r"(?i)https?://", out)
        assert not set(out) & REMOVED and not any(c.isspace() for c in out)


def test_is_relative_link():
    assert is_relative_link("/api/builds.csv?repo=a%2Fb") and is_relative_link("/")
    for bad in ("//evil.example", "/\\evil.example", "javascript:x", "https://x.example", "/a b", "/\x00", None):
        assert not is_relative_link(bad)


@pytest.mark.parametrize("text, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("\nx", "'\nx"), ("＝1+1", "'＝1+1"), ("＋1", "'＋1"), ("－1", "'－1"), ("＠SUM(A1)", "'＠SUM(A1)"),
    ("a=1", "a=1"), ("", ""), ("'quoted", "'quoted"),
])
def test_defuse(text, expected):
    assert defuse(text) == expected


@given(HOSTILE_TEXT)
@settings(max_examples=400, deadline=None)
def test_csv_text_never_starts_a_formula(text):
    out = csv_text(text)
    assert not out or out[0] not in FORMULA_START
    assert not set(out) & REMOVED
    assert out in (clean(text), "'" + clean(text))


def test_as_text_and_clip():
    assert as_text(None) == "" and as_text(float("nan")) == "" and as_text(12) == "12" and as_text("a\x00") == "a"
    assert clip("abc", 3) == "abc" and clip("abcd", 3) == "ab…" and clip("abc", None) == "abc"


def test_records_are_cleaned_when_made():
    step = r.Step(1, "st\x00ep\u202e", None, None, None, None)
    job = r.Job(repo="o/r", gitid=1, run_gitid=2, run_attempt=1, name="j\x00", workflow_name="\u2066w",
                head_branch="b\x1b", head_sha=None, status="completed", conclusion="failure", createtime=None,
                starttime=None, endtime=None, runner_name="r\x85", runner_id=None, labels=("l\x00", "ok"),
                url="https://x.example/\x00", steps=(step,))
    assert (job.name, job.workflow_name, job.head_branch, job.runner_name, job.labels, job.url) == \
        ("j", "w", "b", "r", ("l", "ok"), "https://x.example/")
    assert job.steps[0].name == "step"
    commit = r.Commit("o/r", "abc", "\u202eeve", "=msg\x00\n\nbody", 1.0)
    assert (commit.author, commit.message) == ("eve", "=msg\n\nbody")
