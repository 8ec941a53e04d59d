"""The alerts file (alerts/config.py): a complete example reads, and every mistake is named."""
import pytest

from alerts.config import ConfigError, load

EXAMPLE = '''
dashboard_url = "https://ci.example.com/"
hold_seconds = 120

[delivery]
retry_seconds = 10
give_up_hours = 12

[mentions]
octocat = "<@U024BE7LH>"

[channels.team]
type = "slack"
url_env = "TEST_SLACK_URL"

[channels.hooks]
type = "webhook"
url = "https://hooks.example.com/ci"
secret_file = "SECRET_FILE"

[channels.tracker]
type = "github-issue"
labels = ["ci-broken", "triage"]

[channels.mail]
type = "email"
host = "smtp.example.com"
username = "buildmon"
password_env = "TEST_SMTP_PASSWORD"
from = "Build Monitor <buildmon@example.com>"
to = ["ci@example.com", "lead@example.com"]

[[rules]]
name = "main"
repos = ["acme/*"]
channels = ["team", "tracker", "mail"]
red_hours = 6
stale = true

[[rules]]
name = "releases"
branches = ["release/*"]
consecutive = 1
ignore_verdicts = []
channels = ["hooks"]

[operator]
channels = ["hooks"]
max_lag_seconds = 300
max_failed_deliveries = 10
'''
ENV = {"TEST_SLACK_URL": "https://hooks.slack.com/services/T0/B0/sekrit", "TEST_SMTP_PASSWORD": "pw"}


def write(tmp_path, text: str) -> str:
    (tmp_path / "hmac").write_text("s3cret\n")
    path = tmp_path / "alerts.toml"
    path.write_text(text.replace("SECRET_FILE", str(tmp_path / "hmac")))
    return str(path)


def test_a_complete_example_reads(tmp_path):
    config = load(write(tmp_path, EXAMPLE), ENV, github_token="ghp_x", github_api_url="https://ghe.example.com/api/v3")
    assert config.dashboard_url == "https://ci.example.com" and config.hold_seconds == 120
    assert config.delivery.retry_seconds == 10 and config.delivery.give_up_hours == 12
    assert config.delivery.max_retry_seconds == 3600
    assert config.mentions == {"octocat": "<@U024BE7LH>"}
    team, hooks, tracker, mail = (config.channels[n] for n in ("team", "hooks", "tracker", "mail"))
    assert team.url == ENV["TEST_SLACK_URL"] and team.sources == (("url", "$TEST_SLACK_URL"),)
    assert hooks.secret == "s3cret" and hooks.sources[1] == ("secret", f"file {tmp_path / 'hmac'}")
    assert tracker.token == "ghp_x" and tracker.api_url == "https://ghe.example.com/api/v3"
    assert tracker.labels == ("ci-broken", "triage") and tracker.repo == ""
    assert (mail.port, mail.security, mail.password, mail.to) == (587, "starttls", "pw",
                                                                  ("ci@example.com", "lead@example.com"))
    main, releases = config.rules
    assert main.repos == ("acme/*",) and main.branches == () and main.consecutive == 2
    assert main.ignore_verdicts == {"FLAKY", "INFRA"} and main.red_hours == 6 and main.stale
    assert releases.ignore_verdicts == frozenset() and releases.consecutive == 1
    assert config.operator.max_lag_seconds == 300 and config.operator.max_failed_deliveries == 10


@pytest.mark.parametrize("change, message", [
    (("[[rules]]\nname = \"main\"", "[[rules]]\nname = \"main\"\nconsecutive = 0"),
     "rules[1].consecutive: must be at least 1, not 0"),
    (('channels = ["team", "tracker", "mail"]', 'channels = ["team", "pager"]'),
     "rules[1].channels: no channel is named 'pager'"),
    (('type = "slack"', 'type = "sms"'), "channels.team.type: must be one of slack, webhook, github-issue, email"),
    (('url_env = "TEST_SLACK_URL"', 'url_env = "NOT_SET_ANYWHERE"'),
     "channels.team.url_env: the environment variable NOT_SET_ANYWHERE is not set"),
    (('url_env = "TEST_SLACK_URL"', ''), "channels.team.url: missing"),
    (('red_hours = 6', 'red_hour = 6'), "rules[1].red_hour: unknown setting"),
    (('ignore_verdicts = []', 'ignore_verdicts = ["FLAKEY"]'), "'FLAKEY' is not a verdict"),
    (('to = ["ci@example.com", "lead@example.com"]', ''), "channels.mail.to: missing"),
    (('password_env = "TEST_SMTP_PASSWORD"', ''), "channels.mail.password: missing"),
    (('hold_seconds = 120', 'hold_seconds = "soon"'), "hold_seconds: must be a number, not 'soon'"),
    (('url = "https://hooks.example.com/ci"', 'url = "ftp://x"'), "channels.hooks.url: must be an http"),
    (('name = "releases"', 'name = "main"'), "two rules are named 'main'"),
    (('max_lag_seconds = 300\nmax_failed_deliveries = 10', ''), "[operator] needs max_lag_seconds"),
    (('dashboard_url = "https://ci.example.com/"', 'dashboard_url = "ci.example.com"'),
     "dashboard_url must start with http"),
    (('stale = true', 'stale = "yes"'), "rules[1].stale: must be true or false"),
])
def test_every_mistake_is_named_with_the_file_and_the_entry(tmp_path, change, message):
    old, new = change
    assert old in EXAMPLE
    path = write(tmp_path, EXAMPLE.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load(path, ENV, github_token="ghp_x")
    assert str(caught.value).startswith(path + ":") and message in str(caught.value)


def test_a_github_issue_channel_needs_a_token(tmp_path):
    with pytest.raises(ConfigError, match="channels.tracker.token: a github-issue channel needs a token"):
        load(write(tmp_path, EXAMPLE), ENV, github_token="")


def test_a_missing_file_and_bad_toml_are_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the alerts file"):
        load(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "rules = [[["))


def test_the_server_refuses_to_start_on_a_bad_file(tmp_path):
    from dashapp.config import Config
    from dashapp.services import Services

    path = write(tmp_path, EXAMPLE.replace('type = "slack"', 'type = "pager"'))
    config = Config.from_env({}, database_path=str(tmp_path / "b.db"), alerts_config=path)
    with pytest.raises(ConfigError, match="channels.team.type"):
        Services.start(config, processor=False)


def test_the_readmes_example_is_a_valid_file(tmp_path):
    import os
    import re

    from tests.helpers import ROOT

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    section = readme[readme.index("### Configuration file"):]
    example = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "example.toml"
    path.write_text(example)
    env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x", "ALERT_WEBHOOK_SECRET": "s",
           "SMTP_PASSWORD": "p"}
    config = load(str(path), env, github_token="ghp_x")
    assert set(config.channels) == {"team-chat", "ops-hook", "tracker", "mail"}
    assert [rule.name for rule in config.rules] == ["main", "releases"] and config.operator is not None
