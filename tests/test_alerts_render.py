"""alerts/render.py: what each channel shows, and that data (a commit title) stays text in each format."""
import html
import json
import re

import bs4
import markdown_it
import pytest
from hypothesis import given, settings

from alerts import message, render
from alerts.config import Channel
from tests.hostile import SHORT_TEXT
from tests.receivers import HOSTILE, figure_body, recovery_body, red_body, reminder_body, stale_body

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
LINK = re.compile(r"<(https?://[^|<>]+)\|[^<>]*>")  # a Slack link of ours: <url|label>


def slack_visible(text: str) -> str:
    """What Slack shows of `text` outside our links: entities decoded, word joiners invisible."""
    return html.unescape(LINK.sub("", text).replace("<@U024BE7LH>", "")).replace(render.JOIN, "")


def markdown_html(text: str) -> str:
    """GitHub's Markdown, near enough: CommonMark with raw HTML allowed (so unescaped HTML would show up)."""
    return markdown_it.MarkdownIt("commonmark", {"html": True}).render(text)


def visible(markup: str) -> str:
    return bs4.BeautifulSoup(markup, "html.parser").get_text().replace(render.JOIN, "")


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (45, "45 s"), (60, "1 min"), (59 * 60, "59 min"),
                                           (7500, "2 h 5 min"), (7200, "2 h"), (3 * 86400 + 4 * 3600, "3 d 4 h"),
                                           (86400, "1 d")])
def test_duration(seconds, text):
    assert render.duration(seconds) == text


def test_describe_names_hosts_and_sources_never_secrets():
    slack = Channel("team", "slack", url=SLACK_URL, sources=(("url", "$SLACK_URL"),))
    hook = Channel("ops", "webhook", url="https://hooks.example.com/in/abc?key=zzz", secret="hmac-Secret-1",
                   sources=(("url", "the alerts file"), ("secret", "file /run/secrets/hook")))
    issues = Channel("gh", "github-issue", token="ghp_Secret_Token", sources=(("token", "$GITHUB_TOKEN"),))
    fixed = Channel("gh2", "github-issue", token="t0k", repo="acme/web", api_url="https://ghe.example/api/v3",
                    labels=("main-broken", "ci"))
    mail = Channel("mail", "email", host="smtp.example.com", username="alerts", password="pw-Secret",
                   sender="ci@example.com", to=("a@x", "b@y"), sources=(("password", "$SMTP_PASSWORD"),))
    texts = {c.name: c.describe() for c in (slack, hook, issues, fixed, mail)}
    assert texts["team"] == "Slack-compatible webhook to hooks.slack.com (URL from $SLACK_URL)"
    assert texts["ops"] == ("JSON webhook to hooks.example.com, signed (secret from file /run/secrets/hook), "
                            "URL in the alerts file")
    assert texts["gh"] == "GitHub issues in the broken repository, label main-broken, token from $GITHUB_TOKEN"
    assert texts["gh2"].startswith("GitHub issues in acme/web via ghe.example, labels main-broken, ci, token")
    assert texts["mail"] == ("e-mail via smtp.example.com:587 (STARTTLS) to a@x, b@y, login alerts "
                             "(password from $SMTP_PASSWORD)")
    everything = " ".join(texts.values())
    for secret in ("XXXXSECRETXXXX", "/services/", "abc", "zzz", "hmac-Secret-1", "ghp_Secret_Token", "t0k",
                   "pw-Secret"):
        assert secret not in everything


def test_slack_break_has_first_bad_commit_blame_list_jobs_and_links():
    payload = render.slack(red_body(blame=4, blame_more=3))
    text = payload["text"]
    assert text.startswith(":red_circle: *acme/web: CI is red on main*")
    first = "<https://github.com/acme/web/commit/" + "02" * 20 + "|0202020> Break the parser (Bob) <@U024BE7LH>"
    assert f"First bad commit: {first}" in text  # the chat mention as configured: it notifies
    assert "Blame list: 7 commits between the last green and the first red" in text
    assert [line[:9] for line in text.splitlines() if line.startswith("• <https://github.com/acme/web/commit/")] \
        == ["• <https:"] * 4
    assert "• … and 3 more" in text
    assert "<https://github.com/acme/web/actions/runs/7/job/70|test (3.12)> (failure, verdict NEW)" in text
    assert "FAILED tests/test_parse.py::test_empty - AssertionError (tests/test_parse.py:12)" in text
    assert "Red for 2 h 5 min" in text and "2 red commits" in text
    assert "<http://buildmon.test/triage?repo=acme%2Fweb|Triage> · <http://buildmon.test/alerts|Alerts>" in text
    header, *sections = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "acme/web: CI is red on main"}}
    assert all(s["type"] == "section" and len(s["text"]["text"]) <= 3000 for s in sections)
    assert "\n".join(s["text"]["text"] for s in sections) in text  # the blocks say what the text says


def test_slack_splits_a_long_message_into_sections():
    body = red_body(blame=20, commit_title="x" * 290)
    body["jobs"] = body["jobs"] * 10
    sections = render.slack(body)["blocks"][1:]
    assert len(sections) > 1 and all(len(s["text"]["text"]) <= 3000 for s in sections)


def test_recovery_reminder_stale_figures_and_test_say_what_happened():
    recovery = render.plain(recovery_body())[1]
    assert "Was red for 2 h 5 min" in recovery and "Fixed by 0909090" in recovery and "Fix the parser" in recovery
    assert "Blame list" not in recovery
    assert "<@U024BE7LH>" not in render.slack(recovery_body())["text"]  # a recovery pings no one
    assert "Still red after 2 h 5 min" in render.slack(reminder_body())["text"]
    stale = render.slack(stale_body())["text"]
    assert "Run <https://github.com/acme/web/actions/runs/42|CI #42> queued since 2024-05-01 00:00 UTC (7 h)" in stale
    lag = figure_body("lag", 7260, 1800) | {"summary": ""}
    assert "Processing lag: 2 h 1 min (threshold 30 min)." in render.plain(lag)[1]
    failed = figure_body("failed_deliveries", 12, 10) | {"summary": ""}
    assert "Failed deliveries: 12 (threshold 10)." in render.plain(failed)[1]
    test = message.test_body("team", 1_714_521_600, "http://buildmon.test")
    subject, text = render.plain(test)
    assert subject == test["title"] and test["summary"] in text and "http://buildmon.test/alerts" in text
    assert render.slack(test)["text"].startswith(":wave:")


def test_markdown_ends_with_the_marker_and_links_only_http_urls():
    body = red_body()
    body["jobs"][0]["url"] = "javascript:alert(1)"
    body["links"]["failure"] = "data:text/html,<b>x</b>"
    title, text = render.markdown(body, "<!-- buildmon-alert:7 -->")
    assert title == "acme/web: CI is red on main"
    assert text.endswith("<!-- buildmon-alert:7 -->\n")
    page = bs4.BeautifulSoup(markdown_html(text), "html.parser")
    assert all(a["href"].startswith(("https://github.com/acme/web/", "http://buildmon.test/")) for a in page("a"))
    assert "test (3.12) (failure, verdict NEW)" in page.get_text()


def test_a_hostile_commit_title_is_shown_literally_in_every_format():
    body = red_body(commit_title=HOSTILE)
    text = render.slack(body)["text"]
    assert "<!channel>" not in text and "<script>" not in text  # Slack would act on these
    assert HOSTILE in slack_visible(text)
    assert "@octocat" not in text and "](" not in text  # Mattermost: no mention, no Markdown link

    _title, markdown = render.markdown(body, "<!-- buildmon-alert:1 -->")
    page = markdown_html(markdown)
    soup = bs4.BeautifulSoup(page, "html.parser")
    assert soup("script") == [] and "evil.example" not in " ".join(a["href"] for a in soup("a"))
    assert soup("em") == [] and soup("code") == []
    assert HOSTILE in visible(page)
    assert "@octocat" not in markdown  # GitHub would notify @octocat

    subject, plain = render.plain(body)
    assert HOSTILE in plain
    mail = bs4.BeautifulSoup(render.email_html(body), "html.parser")
    assert mail("script") == [] and HOSTILE in mail.get_text()
    assert "evil.example" not in " ".join(a["href"] for a in mail("a"))
    assert json.loads(render.webhook(body, 12))["first_bad"]["title"] == HOSTILE


@settings(max_examples=60, deadline=None)
@given(SHORT_TEXT, SHORT_TEXT)
def test_any_text_stays_text(title, line):
    body = red_body(commit_title=title or "x")
    body["jobs"][0]["name"] = line or "job"
    body["jobs"][0]["lines"][0]["text"] = line or "line"
    soup = bs4.BeautifulSoup(markdown_html(render.markdown(body, "<!-- m -->")[1]), "html.parser")
    assert {t.name for t in soup.find_all(True)} <= {"p", "strong", "ul", "li", "a", "sub"}
    assert all(a["href"].startswith(("https://github.com/acme/web/", "http://buildmon.test/")) for a in soup("a"))
    slack_text = render.slack(body)["text"]
    assert "<" not in LINK.sub("", slack_text).replace("<@U024BE7LH>", "")
    mail = bs4.BeautifulSoup(render.email_html(body), "html.parser")
    assert {t.name for t in mail.find_all(True)} <= {"html", "body", "h2", "h3", "p", "ul", "li", "a", "code",
                                                      "small"}
