"""The alert configuration: rules, channels and mentions, read from ALERTS_CONFIG (TOML) at start.

A bad file stops the start with an error naming the file, the entry and the
problem.  Secrets (webhook URLs, HMAC secrets, tokens, SMTP passwords) come
from the environment (`KEY_env`) or a file (`KEY_file`), or the file itself
(`KEY`); what is shown back (`Channel.describe`) never includes them.
"""
import os
import tomllib
from dataclasses import dataclass, field

CHANNEL_TYPES = ("slack", "webhook", "github-issue", "email")
VERDICTS = ("NEW", "BROKEN TRUNK", "FLAKY", "INFRA", "KNOWN")


@dataclass(frozen=True)
class Channel:
    name: str
    type: str  # one of CHANNEL_TYPES
    url: str = ""  # slack, webhook: where to POST (a secret for Slack: never shown)
    secret: str = ""  # webhook: HMAC-SHA256 key of X-Hub-Signature-256 ("" = unsigned)
    token: str = ""  # github-issue
    api_url: str = "https://api.github.com"  # github-issue
    repo: str = ""  # github-issue: the repository issues go to ("" = the broken repository)
    labels: tuple[str, ...] = ("main-broken",)  # github-issue: the first one finds earlier issues
    host: str = ""  # email: SMTP server
    port: int = 587
    security: str = "starttls"  # email: starttls | tls (implicit, port 465) | none
    username: str = ""
    password: str = ""
    sender: str = ""  # email: From
    to: tuple[str, ...] = ()  # email: recipients
    ca_file: str = ""  # email: CA bundle to verify the server with ("" = the system's)
    timeout: float = 10.0  # seconds for one send
    sources: tuple[tuple[str, str], ...] = ()  # (secret key, where it came from: "$ENV", "file PATH", "config")

    def describe(self) -> str:
        """What the channel is, for the page and the API: never a secret (a Slack URL is one)."""
        from alerts.render import describe_channel

        return describe_channel(self)


@dataclass(frozen=True)
class Rule:
    name: str
    repos: tuple[str, ...] = ("*",)  # globs of owner/name
    workflows: tuple[str, ...] = ("*",)  # globs of workflow names
    branches: tuple[str, ...] = ()  # branch names (globs); () = each repository's default branch
    consecutive: int = 2  # red commits in a row that make a break
    ignore_verdicts: frozenset[str] = frozenset({"FLAKY", "INFRA"})  # failures that do not count
    channels: tuple[str, ...] = ()
    red_hours: float | None = None  # one reminder when a break is still red after this long
    stale: bool = False  # also alert on a run queued or running past STALE_HOURS


@dataclass(frozen=True)
class Operator:
    channels: tuple[str, ...]
    max_lag_seconds: float | None = None  # processing lag past which the operator hears
    max_failed_deliveries: int | None = None  # dead letters (deliveries logged failed) past which they hear


@dataclass(frozen=True)
class Delivery:
    retry_seconds: float = 30.0  # the first retry's wait; doubled each try
    max_retry_seconds: float = 3600.0
    give_up_hours: float = 24.0  # a message still undelivered this long after it was decided is given up


@dataclass(frozen=True)
class AlertConfig:
    path: str
    rules: tuple[Rule, ...]
    channels: dict[str, Channel]
    mentions: dict[str, str] = field(default_factory=dict)  # GitHub login -> chat handle
    dashboard_url: str = ""  # where message links point ("" = http://HOST:PORT)
    hold_seconds: float = 300.0  # how long a decision waits for failed jobs' failure lines (verdicts)
    delivery: Delivery = Delivery()
    operator: Operator | None = None

    def mention(self, login: str | None) -> str | None:
        return self.mentions.get(login) if login else None


class ConfigError(ValueError):
    """An alerts file that cannot be used; the message names the file, the entry and the problem."""


def load(path: str, environ=None, *, github_token: str = "", github_api_url: str = "") -> AlertConfig:
    """Read and check the alerts file at `path` (TOML).  `github_token`/`github_api_url` are the
    server's GITHUB_TOKEN and GITHUB_API_URL: a github-issue channel's defaults."""
    environ = os.environ if environ is None else environ
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the alerts file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    top = _Table(path, "", data, environ)
    channels = {}
    for name, table in top.tables("channels").items():
        channels[name] = _channel(top.sub(f"channels.{name}", table), name, github_token, github_api_url)
    mentions = top.mapping("mentions")
    rules = tuple(_rule(top.sub(f"rules[{i}]", table), i, channels) for i, table in enumerate(top.array("rules"), 1))
    names = [rule.name for rule in rules]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{path}: two rules are named {name!r}")
    operator = None
    if "operator" in data:
        section = top.sub("operator", data["operator"])
        operator = Operator(channels=_channel_names(section, channels),
                            max_lag_seconds=section.number("max_lag_seconds", None),
                            max_failed_deliveries=section.integer("max_failed_deliveries", None))
        section.done()
        if operator.max_lag_seconds is None and operator.max_failed_deliveries is None:
            raise ConfigError(f"{path}: [operator] needs max_lag_seconds or max_failed_deliveries")
    delivery = Delivery()
    if "delivery" in data:
        section = top.sub("delivery", data["delivery"])
        delivery = Delivery(retry_seconds=section.number("retry_seconds", 30.0, positive=True),
                            max_retry_seconds=section.number("max_retry_seconds", 3600.0, positive=True),
                            give_up_hours=section.number("give_up_hours", 24.0, positive=True))
        section.done()
    config = AlertConfig(path=path, rules=rules, channels=channels, mentions=mentions,
                         dashboard_url=top.text("dashboard_url", "").rstrip("/"),
                         hold_seconds=top.number("hold_seconds", 300.0), delivery=delivery, operator=operator)
    if config.dashboard_url and not config.dashboard_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: dashboard_url must start with http:// or https://")
    top.done(extra=("channels", "mentions", "rules", "operator", "delivery"))
    return config


class _Table:
    """One TOML table being read: typed getters that say where a bad value is, and what was left unread."""

    def __init__(self, path: str, where: str, data, environ):
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: {where or 'the file'} must be a table")
        self.path, self.where, self.data, self.environ = path, where, data, environ
        self.read: set[str] = set()

    def sub(self, where: str, data) -> "_Table":
        return _Table(self.path, where, data, self.environ)

    def error(self, key: str, problem: str) -> ConfigError:
        place = f"{self.where}.{key}" if self.where else key
        return ConfigError(f"{self.path}: {place}: {problem}")

    def _get(self, key: str, kinds, what: str, default):
        self.read.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(key, f"must be {what}, not {value!r}")
        return value

    def text(self, key: str, default=None) -> str | None:
        return self._get(key, (str,), "a string", default)

    def boolean(self, key: str, default: bool) -> bool:
        return self._get(key, (bool,), "true or false", default)

    def number(self, key: str, default, *, positive: bool = False):
        value = self._get(key, (int, float), "a number", default)
        if value is not None and (value < 0 or (positive and value == 0)):
            raise self.error(key, f"must be {'above' if positive else 'at least'} 0, not {value!r}")
        return float(value) if value is not None else None

    def integer(self, key: str, default, *, least: int = 0):
        value = self._get(key, (int,), "a whole number", default)
        if value is not None and value < least:
            raise self.error(key, f"must be at least {least}, not {value!r}")
        return value

    def strings(self, key: str, default: tuple) -> tuple[str, ...]:
        value = self._get(key, (list, str), "a list of strings", None)
        if value is None:
            return default
        value = [value] if isinstance(value, str) else value
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise self.error(key, "must be a list of non-empty strings")
        return tuple(item.strip() for item in value)

    def tables(self, key: str) -> dict:
        value = self._get(key, (dict,), "a table of tables", {})
        for name, table in value.items():
            if not isinstance(table, dict):
                raise self.error(f"{key}.{name}", "must be a table")
        return value

    def array(self, key: str) -> list:
        value = self._get(key, (list,), "an array of tables ([[rules]])", [])
        for i, table in enumerate(value, 1):
            if not isinstance(table, dict):
                raise self.error(f"{key}[{i}]", "must be a table")
        return value

    def mapping(self, key: str) -> dict[str, str]:
        value = self._get(key, (dict,), "a table of login = \"handle\"", {})
        for login, handle in value.items():
            if not isinstance(handle, str):
                raise self.error(f"{key}.{login}", f"must be a string, not {handle!r}")
        return dict(value)

    def secret(self, key: str, *, required: bool) -> tuple[str, str]:
        """`key`'s value and where it came from: `key_env` (an environment variable), `key_file` or `key`."""
        given = [k for k in (key, f"{key}_env", f"{key}_file") if k in self.data]
        self.read.update((key, f"{key}_env", f"{key}_file"))
        if len(given) > 1:
            raise self.error(key, f"give one of {', '.join(given)}, not several")
        if not given:
            if required:
                raise self.error(key, f"missing: set {key}_env (an environment variable's name), {key}_file or {key}")
            return "", ""
        name = given[0]
        source = self.data[name]
        if not isinstance(source, str) or not source.strip():
            raise self.error(name, "must be a non-empty string")
        if name.endswith("_env"):
            value = self.environ.get(source, "")
            if not value.strip():
                raise self.error(name, f"the environment variable {source} is not set")
            return value.strip(), f"${source}"
        if name.endswith("_file"):
            try:
                with open(source, encoding="utf-8") as handle:
                    value = handle.read().strip()
            except OSError as exc:
                raise self.error(name, f"cannot read {source}: {exc.strerror or exc}") from None
            if not value:
                raise self.error(name, f"{source} is empty")
            return value, f"file {source}"
        return source.strip(), "the alerts file"

    def done(self, extra=()) -> None:
        unknown = sorted(set(self.data) - self.read - set(extra))
        if unknown:
            raise self.error(unknown[0], "unknown setting" + (f" (known: {', '.join(sorted(self.read))})"
                                                              if self.read else ""))


def _url(section: _Table, key: str, required: bool = True) -> tuple[str, str]:
    value, source = section.secret(key, required=required)
    if value and not value.startswith(("http://", "https://")):
        raise section.error(key, "must be an http:// or https:// URL")
    return value, source


def _channel(section: _Table, name: str, github_token: str, github_api_url: str) -> Channel:
    kind = section.text("type")
    if kind not in CHANNEL_TYPES:
        raise section.error("type", f"must be one of {', '.join(CHANNEL_TYPES)}, not {kind!r}")
    values: dict = {"name": name, "type": kind, "timeout": section.number("timeout", 10.0, positive=True)}
    sources = []
    if kind in ("slack", "webhook"):
        values["url"], source = _url(section, "url")
        sources.append(("url", source))
        if kind == "webhook":
            values["secret"], source = section.secret("secret", required=False)
            if source:
                sources.append(("secret", source))
    elif kind == "github-issue":
        token, source = section.secret("token", required=False)
        if not token:
            token, source = github_token, "$GITHUB_TOKEN"
        if not token:
            raise section.error("token", "a github-issue channel needs a token: set GITHUB_TOKEN or token_env")
        sources.append(("token", source))
        values.update(token=token, repo=section.text("repo", ""),
                      api_url=(section.text("api_url", "") or github_api_url or Channel.api_url).rstrip("/"),
                      labels=section.strings("labels", Channel.labels))
        if values["repo"] and values["repo"].count("/") != 1:
            raise section.error("repo", f"must be owner/name, not {values['repo']!r}")
    else:
        security = section.text("security", "starttls")
        if security not in ("starttls", "tls", "none"):
            raise section.error("security", f"must be starttls, tls or none, not {security!r}")
        values.update(host=section.text("host", ""), security=security,
                      port=section.integer("port", 465 if security == "tls" else 587, least=1),
                      username=section.text("username", ""), sender=section.text("from", ""),
                      to=section.strings("to", ()), ca_file=section.text("ca_file", ""))
        if not values["host"]:
            raise section.error("host", "missing: the SMTP server's host name")
        if not values["sender"]:
            raise section.error("from", "missing: the From address")
        if not values["to"]:
            raise section.error("to", "missing: at least one recipient")
        values["password"], source = section.secret("password", required=bool(values["username"]))
        if source:
            sources.append(("password", source))
        if values["ca_file"] and not os.access(values["ca_file"], os.R_OK):
            raise section.error("ca_file", f"cannot read {values['ca_file']}")
    section.done()
    return Channel(sources=tuple(sources), **values)


def _channel_names(section: _Table, channels: dict) -> tuple[str, ...]:
    names = section.strings("channels", ())
    if not names:
        raise section.error("channels", "missing: the names of the channels to send to")
    for name in names:
        if name not in channels:
            raise section.error("channels", f"no channel is named {name!r} (defined: {', '.join(channels) or 'none'})")
    return names


def _rule(section: _Table, number: int, channels: dict) -> Rule:
    ignore = section.strings("ignore_verdicts", ("FLAKY", "INFRA"))
    for verdict in ignore:
        if verdict.upper() not in VERDICTS:
            raise section.error("ignore_verdicts", f"{verdict!r} is not a verdict ({', '.join(VERDICTS)})")
    rule = Rule(name=section.text("name", f"rule {number}"), repos=section.strings("repos", ("*",)),
                workflows=section.strings("workflows", ("*",)), branches=section.strings("branches", ()),
                consecutive=section.integer("consecutive", 2, least=1),
                ignore_verdicts=frozenset(v.upper() for v in ignore), channels=_channel_names(section, channels),
                red_hours=section.number("red_hours", None, positive=True), stale=section.boolean("stale", False))
    section.done()
    return rule
