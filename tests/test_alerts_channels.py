"""alerts/channels.py against real local receivers: each channel delivers, and its errors say why, never a secret."""
import json

import pytest

from alerts import channels
from alerts.channels import SendError, send
from alerts.config import Channel
from ingest.signature import verify
from tests.receivers import (HOSTILE, FakeIssues, HTTPReceiver, SMTPReceiver, free_port, recovery_body, red_body,
                             reminder_body)

HOOK_PATH = "/services/T000/B000/SecretHookPath42"
HMAC_SECRET = "hmac-secret-for-tests"


@pytest.fixture
def receiver():
    with HTTPReceiver() as live:
        yield live


@pytest.fixture
def github():
    with FakeIssues() as fake:
        yield fake


@pytest.fixture
def smtp(tmp_path):
    with SMTPReceiver(tmp_path) as live:
        yield live


def slack_channel(receiver) -> Channel:
    return Channel("team", "slack", url=receiver.url + HOOK_PATH, timeout=5)


def issue_channel(github, **over) -> Channel:
    return Channel("gh", "github-issue", token=github.token, api_url=github.url, timeout=5, **over)


def mail_channel(smtp, **over) -> Channel:
    values = dict(host="127.0.0.1", port=smtp.port, username=smtp.username, password=smtp.password,
                  sender="buildmon@ci.example", to=("dev@example.com", "lead@example.com"), ca_file=smtp.ca_file,
                  timeout=5)
    return Channel("mail", "email", **(values | over))


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (HOOK_PATH, "SecretHookPath42", HMAC_SECRET, *secrets):
        assert secret not in text


# --- Slack and webhooks -----------------------------------------------------------------------------------

def test_slack_posts_the_blame_list_and_first_bad_commit(receiver):
    result = send(slack_channel(receiver), 3, red_body(blame=3))
    [request] = receiver.requests
    assert request.method == "POST" and request.path == HOOK_PATH
    assert request.headers["content-type"] == "application/json"
    text = request.json()["text"]
    assert "First bad commit: <https://github.com/acme/web/commit/" in text and "Break the parser (Bob)" in text
    assert text.count("• <https://github.com/acme/web/commit/") == 3
    assert request.json()["blocks"][0]["type"] == "header"
    assert result.detail == f"posted to 127.0.0.1:{receiver.port}"  # the host, not the secret path


def test_webhook_is_signed_with_the_secret(receiver):
    channel = Channel("ops", "webhook", url=receiver.url + "/hook", secret=HMAC_SECRET, timeout=5)
    send(channel, 41, recovery_body())
    [request] = receiver.requests
    assert verify(HMAC_SECRET, request.body, request.headers["x-hub-signature-256"])
    assert not verify("another secret", request.body, request.headers["x-hub-signature-256"])
    assert request.headers["x-buildmon-event"] == "recovery"
    assert request.headers["x-buildmon-delivery"] == "41"
    assert request.headers["user-agent"] == "buildmon-alerts"
    data = request.json()
    assert data["id"] == 41 and data["fixed_by"]["title"] == "Fix the parser" and data["kind"] == "recovery"


def test_an_unsigned_webhook_has_no_signature(receiver):
    send(Channel("ops", "webhook", url=receiver.url + "/hook", timeout=5), 1, red_body())
    assert "x-hub-signature-256" not in receiver.requests[0].headers


def test_http_failures_say_the_host_and_whether_to_retry(receiver):
    channel = slack_channel(receiver)
    receiver.status = 500
    with pytest.raises(SendError) as error:
        send(channel, 1, red_body())
    assert error.value.retry and error.value.text == f"Slack webhook at 127.0.0.1:{receiver.port} answered HTTP " \
                                                     f"500: server error"
    receiver.status = 404  # Slack's answer for a revoked webhook: no use trying again
    with pytest.raises(SendError) as gone:
        send(channel, 1, red_body())
    assert not gone.value.retry and "revoked or deleted" in gone.value.text
    receiver.status, receiver.retry_after = 429, "7"
    with pytest.raises(SendError) as limited:
        send(channel, 1, red_body())
    assert limited.value.retry and limited.value.wait == 7
    receiver.stop()
    with pytest.raises(SendError) as refused:
        send(channel, 1, red_body())
    assert refused.value.retry
    assert refused.value.text == f"Slack webhook at 127.0.0.1:{receiver.port}: could not connect (connection refused)"
    for exc in (error, gone, limited, refused):
        assert_no_secret(str(exc.value))
        assert exc.value.__context__ is None or exc.value.__suppress_context__  # no URL in a chained traceback


# --- GitHub issues ---------------------------------------------------------------------------------------------

def test_a_break_opens_one_issue_with_the_label_then_the_recovery_comments_and_closes_it(github):
    channel = issue_channel(github, repo="acme/web")
    for n in range(3):  # other issues with the label: the marker search pages through them
        github.open_issue("acme/web", {"title": f"other {n}", "body": "<!-- buildmon-alert:99 -->",
                                  "labels": ["main-broken"]})
    opened = send(channel, 10, red_body(break_id=7))
    assert opened.ref == "4" and opened.detail == "opened issue #4 of acme/web"
    issue = github.all_issues()[-1]
    assert issue["title"] == "acme/web: CI is red on main" and issue["labels"] == [{"name": "main-broken"}]
    assert issue["body"].endswith("<!-- buildmon-alert:7 -->\n") and "Break the parser" in issue["body"]

    again = send(channel, 10, red_body(break_id=7))  # a retry after a crash: found, not opened twice
    assert again.ref == "4" and github.count("POST", "/issues") == 1

    reminder = send(channel, 11, reminder_body(break_id=7), break_message_ref="4")
    assert reminder.ref == "4" and github.comments[("acme/web", 4)][-1]["body"].endswith(
        "<!-- buildmon-message:11 -->\n")
    closed = send(channel, 12, recovery_body(break_id=7), break_message_ref="4")
    assert closed.detail == "commented on and closed issue #4 of acme/web"
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert "Fix the parser" in github.comments[("acme/web", 4)][-1]["body"]
    send(channel, 12, recovery_body(break_id=7), break_message_ref="4")  # again: the comment is not repeated
    assert len(github.comments[("acme/web", 4)]) == 2
    assert all(auth for auth in github.requests)


def test_the_issue_goes_to_the_broken_repository_when_the_channel_names_none(github):
    assert send(issue_channel(github), 1, red_body(break_id=2)).ref == "1"
    assert github.all_issues("acme/web")[0]["labels"] == [{"name": "main-broken"}]


def test_a_recovery_without_an_issue_is_skipped(github):
    result = send(issue_channel(github, repo="acme/web"), 5, recovery_body(break_id=3))
    assert result.skipped and github.count("POST") == 0


def test_a_github_test_message_checks_access_and_opens_nothing(github):
    fixed = send(issue_channel(github, repo="acme/web"), 1, {"kind": "test", "repo": None})
    assert "the token can read acme/web" in fixed.detail and "no issue opened" in fixed.detail
    anywhere = send(issue_channel(github), 2, {"kind": "test", "repo": None})
    assert "the token is accepted (4990 of 5000 requests left)" in anywhere.detail
    assert github.count("POST") == 0 and github.count("GET", "/rate_limit") == 1


def test_github_errors_name_the_host_never_the_token(github):
    with pytest.raises(SendError) as refused:
        send(Channel("gh", "github-issue", token="ghp_wrong_token_zzz", api_url=github.url, repo="acme/web"), 1,
             red_body())
    assert not refused.value.retry
    assert refused.value.text == f"GitHub at 127.0.0.1:{github.url.rsplit(':', 1)[1]} refused the token " \
                                 f"(HTTP 401: Bad credentials)"
    with pytest.raises(SendError) as missing:
        send(issue_channel(github, repo="acme/nope"), 1, red_body())
    assert not missing.value.retry and "HTTP 404" in missing.value.text and "acme/nope" in missing.value.text
    github.fail_next = 1
    with pytest.raises(SendError) as down:
        send(issue_channel(github, repo="acme/web"), 1, red_body())
    assert down.value.retry and "HTTP 500" in down.value.text
    for exc in (refused, missing, down):
        assert_no_secret(exc.value.text, github.token, "ghp_wrong_token_zzz")


# --- e-mail -------------------------------------------------------------------------------------------------

def test_email_arrives_over_starttls_with_login(smtp):
    result = send(mail_channel(smtp), 21, red_body())
    [got] = smtp.messages
    assert got["tls"] and got["login"] == b"alerts" and got["mail_from"] == "buildmon@ci.example"
    assert got["rcpt_tos"] == ["dev@example.com", "lead@example.com"]
    mail = got["message"]
    assert mail["Subject"] == "acme/web: CI is red on main" and mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"] == result.ref and mail["X-Buildmon-Delivery"] == "21"
    text = mail.get_body(("plain",)).get_content()
    assert "First bad commit: 0202020" in text and "Break the parser (Bob)" in text
    assert "<h2>acme/web: CI is red on main</h2>" in mail.get_body(("html",)).get_content()
    assert result.detail == f"accepted by SMTP server 127.0.0.1:{smtp.port} for 2 recipients"

    send(mail_channel(smtp), 21, red_body())  # a repeat has the same Message-ID: receivers drop it
    assert smtp.messages[1]["message"]["Message-ID"] == result.ref
    send(mail_channel(smtp), 22, recovery_body(), break_message_ref=result.ref)  # threaded under the break
    assert smtp.messages[2]["message"]["In-Reply-To"] == result.ref


def test_email_failures_are_clear_and_keep_the_password(smtp):
    with pytest.raises(SendError) as login:
        send(mail_channel(smtp, password="wrong-pass-Xy7"), 1, red_body())
    assert not login.value.retry
    assert login.value.text.startswith(f"SMTP server 127.0.0.1:{smtp.port} refused the login of alerts (535")
    with pytest.raises(SendError) as untrusted:
        send(mail_channel(smtp, ca_file=""), 1, red_body())  # the test CA is not among the system's
    assert "certificate not trusted" in untrusted.value.text
    smtp.answer = "451 4.3.0 try again later"
    with pytest.raises(SendError) as later:
        send(mail_channel(smtp), 1, red_body())
    assert later.value.retry and "451 4.3.0 try again later" in later.value.text
    smtp.answer = "554 5.7.1 rejected"
    with pytest.raises(SendError) as rejected:
        send(mail_channel(smtp), 1, red_body())
    assert not rejected.value.retry
    with pytest.raises(SendError) as refused:
        send(mail_channel(smtp, port=free_port()), 1, red_body())
    assert refused.value.retry and refused.value.text.endswith("could not connect (connection refused)")
    assert smtp.messages == []
    for exc in (login, untrusted, later, rejected, refused):
        assert_no_secret(exc.value.text, smtp.password, "wrong-pass-Xy7")


def test_a_hostile_commit_title_reaches_each_receiver_as_text(receiver, github, smtp):
    body = red_body(commit_title=HOSTILE)
    send(slack_channel(receiver), 1, body)
    text = receiver.requests[-1].json()["text"]
    assert "&lt;!channel&gt;" in text and "&lt;script&gt;" in text
    assert "<!channel>" not in text and "<script>" not in text and "@octocat" not in text and "](" not in text
    send(Channel("ops", "webhook", url=receiver.url + "/hook"), 2, body)
    assert receiver.requests[-1].json()["first_bad"]["title"] == HOSTILE
    send(issue_channel(github, repo="acme/web"), 3, body)
    issue = github.all_issues()[0]["body"]
    assert r"\<script\>alert(1)\</script\>" in issue and r"Fix \[docs\](https://evil.example)" in issue
    assert "<script>" not in issue and "@octocat" not in issue and "<!channel>" not in issue
    send(mail_channel(smtp), 4, body)
    mail = smtp.messages[0]["message"]
    assert HOSTILE in mail.get_body(("plain",)).get_content()
    page = mail.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page


def test_the_message_id_differs_for_another_message():
    channel = Channel("mail", "email", sender="ci@example.com")
    body = red_body()
    first = channels.message_id_header(channel, 1, body)
    assert first == channels.message_id_header(channel, 1, json.loads(json.dumps(body)))
    assert first != channels.message_id_header(channel, 2, body)
    assert first != channels.message_id_header(channel, 1, body | {"decided": body["decided"] + 1})
    assert first.endswith("@example.com>")
