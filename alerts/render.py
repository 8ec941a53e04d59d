"""What an alert message says, spelled for each kind of channel: pure functions of the message body.

The body (`alerts/message.py`) holds facts as plain text from outside: commit titles, author names,
job names and failure lines are data that must reach a reader literally, never as markup of the
place they are shown.  So the message is first laid out once (`_document`: paragraphs, headings,
list items made of text, links and mentions), then spelled per format with that format's escaping:

- `slack`: Slack's incoming-webhook JSON, whose `text` Mattermost also reads; `&`, `<`, `>` become
  entities (Slack's rule: `<!channel>` stays text), and `@` and `]` get an invisible word joiner so
  Mattermost's Markdown makes neither a mention nor a link of them;
- `markdown`: a GitHub issue or comment: ASCII punctuation backslash-escaped, `@` joined (GitHub
  would notify the login), links only to http(s) URLs;
- `plain` / `email_html`: an e-mail's text and HTML alternative (HTML-escaped);
- `webhook`: the body itself as JSON, for programs.

A chat handle from [mentions] is configuration, not data: Slack gets it as written, so it notifies.
`describe_channel` says what a channel is without any of its secrets.
"""
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from domain.text import clip, html_text, link_url, one_line

JOIN = "\u2060"  # WORD JOINER: invisible, but no mention or link syntax survives it
MAX_PART = 300  # characters of one piece of data (a title, a failure line)
MAX_JOBS, MAX_LINES = 10, 5  # failing jobs shown, failure lines per job
SLACK_SECTION = 2900  # Slack refuses a section's text past 3,000 characters
FIGURES = {"lag": "Processing lag", "failed_deliveries": "Failed deliveries"}
EMOJI = {"break": ":red_circle:", "recovery": ":large_green_circle:", "reminder": ":hourglass:", "test": ":wave:"}


@dataclass(frozen=True)
class Link:
    label: str
    url: str | None  # shown as a link only when `link_url` accepts it


@dataclass(frozen=True)
class Mention:
    handle: str  # a chat handle from the configuration's [mentions]


# --- small words -------------------------------------------------------------------------------------

def duration(seconds) -> str:
    """`seconds` for people: "45 s", "12 min", "2 h 5 min", "3 d 4 h"."""
    total = int(round(max(float(seconds or 0), 0)))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when(epoch) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(epoch))) if epoch is not None else "?"


def _text(value) -> str:
    return clip(one_line(value), MAX_PART)


def _short(sha) -> str:
    return _text(sha)[:7]


def host_of(url: str) -> str:
    """The host (and port) of `url`: what may be shown of a URL whose path can be a secret."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname, parts.port
    except ValueError:
        return "an unreadable URL"
    return (f"{host}:{port}" if port else host) if host else "no URL"


# --- describing a channel --------------------------------------------------------------------------------

def _source(channel, key: str) -> str:
    where = dict(channel.sources).get(key)
    if not where or where in ("config", "the alerts file"):
        return "in the alerts file"
    return f"from {where}"


def describe_channel(channel) -> str:
    """What `channel` is, for the Alerts page and the API: hosts and names, where secrets came from,
    never a secret itself (a Slack webhook's URL is one)."""
    kind = channel.type
    if kind == "slack":
        if not channel.url:
            return "Slack-compatible webhook (no URL configured)"
        return f"Slack-compatible webhook to {host_of(channel.url)} (URL {_source(channel, 'url')})"
    if kind == "webhook":
        signed = f"signed (secret {_source(channel, 'secret')})" if channel.secret else "unsigned"
        url = f", URL {_source(channel, 'url')}" if "url" in dict(channel.sources) else ""
        return f"JSON webhook to {host_of(channel.url)}, {signed}{url}"
    if kind == "github-issue":
        where = channel.repo or "the broken repository"
        labels = ", ".join(channel.labels) or "none"
        api = "" if host_of(channel.api_url) == "api.github.com" else f" via {host_of(channel.api_url)}"
        token = f"token {_source(channel, 'token')}" if channel.token else "no token configured"
        return f"GitHub issues in {where}{api}, label{'s' if len(channel.labels) > 1 else ''} {labels}, {token}"
    if kind == "email":
        security = {"starttls": "STARTTLS", "tls": "TLS"}.get(channel.security, "no TLS")
        text = f"e-mail via {channel.host}:{channel.port} ({security}) to {', '.join(channel.to) or 'nobody'}"
        if channel.username:
            text += f", login {channel.username} (password {_source(channel, 'password')})"
        return text + (f", CA {channel.ca_file}" if channel.ca_file else "")
    return f"unknown channel type {kind!r}"


# --- the message, laid out once --------------------------------------------------------------------------

def _commit(commit: dict, *, mention: bool = False) -> list:
    parts = [Link(_short(commit.get("sha")), commit.get("url")), " ", _text(commit.get("title"))]
    if commit.get("author"):
        parts += [" (", _text(commit["author"]), ")"]
    if mention and commit.get("mention"):
        parts.append(Mention(commit["mention"]))
    return parts


def _red(doc: list, body: dict) -> None:
    kind = body.get("kind")
    count = body.get("red_commits")
    commits = f", {count} red commit{'s' if count != 1 else ''}" if count else ""
    if body.get("red_for") is not None:
        lead = "Still red after" if kind == "reminder" else "Was red for" if kind == "recovery" else "Red for"
        since = f" (since {when(body['red_since'])})" if body.get("red_since") else ""
        doc.append(("p", [f"{lead} {duration(body['red_for'])}{since}{commits}."]))
    if kind == "recovery" and body.get("fixed_by"):
        doc.append(("p", ["Fixed by "] + _commit(body["fixed_by"])))
    if body.get("first_bad"):
        doc.append(("p", ["First bad commit: "] + _commit(body["first_bad"], mention=kind != "recovery")))
    if kind == "recovery":
        return
    doc.append(("p", ["Last green: "] + _commit(body["last_green"]) if body.get("last_green")
                else ["No green run before it in the history."]))
    blame, more = body.get("blame") or [], int(body.get("blame_more") or 0)
    if blame:
        total = len(blame) + more
        doc.append(("h", [f"Blame list: {total} commit{'s' if total != 1 else ''} between the last green "
                          f"and the first red"]))
        doc += [("li", _commit(c)) for c in blame]
        if more:
            doc.append(("li", [f"… and {more} more"]))
    jobs = body.get("jobs") or []
    if jobs:
        doc.append(("h", ["Failing jobs"]))
        for job in jobs[:MAX_JOBS]:
            verdict = f", verdict {_text(job['verdict'])}" if job.get("verdict") else ""
            doc.append(("li", [Link(_text(job.get("name")), job.get("url")), f" ({_text(job.get('conclusion'))}"
                               f"{verdict})"]))
            for line in (job.get("lines") or [])[:MAX_LINES]:
                place = f" ({_text(line['path'])}{':' + str(line['line']) if line.get('line') else ''})" \
                    if line.get("path") else ""
                doc.append(("sub", [_text(line.get("text")) + place]))
        if len(jobs) > MAX_JOBS:
            doc.append(("li", [f"… and {len(jobs) - MAX_JOBS} more jobs"]))
    runs = body.get("runs") or []
    if runs:
        doc.append(("h", ["Runs"]))
        for run in runs:
            attempt = f", attempt {run['attempt']}" if (run.get("attempt") or 1) > 1 else ""
            doc.append(("li", [Link(f"{_short(run.get('sha'))} {_text(run.get('conclusion'))}{attempt}",
                                    run.get("url")), f" at {when(run.get('created'))}"]))


def _document(body: dict) -> list[tuple[str, list]]:
    """The message as (style, parts) lines: style p | h (a heading) | li (an item) | sub (under an item)."""
    doc: list[tuple[str, list]] = []
    if body.get("summary"):
        doc.append(("p", [_text(body["summary"])]))
    facts = [f"{label} {_text(body[key])}" for key, label in
             (("repo", "Repository"), ("workflow", "workflow"), ("branch", "branch")) if body.get(key)]
    if facts:
        doc.append(("p", [", ".join(facts) + "."]))
    alert = body.get("alert")
    if alert == "red":
        _red(doc, body)
    elif alert == "stale" and body.get("run"):
        run = body["run"]
        doc.append(("p", ["Run ", Link(_text(run.get("name")), run.get("url")),
                          f" {_text(run.get('status'))} since {when(run.get('since'))}"
                          + (f" ({duration(body['decided'] - run['since'])})"
                             if body.get("decided") and run.get("since") else "") + "."]))
    elif alert in ("lag", "failed_deliveries") and body.get("figure") and not body.get("summary"):
        fig = body["figure"]
        value, limit = ((duration(fig["value"]), duration(fig["threshold"])) if alert == "lag"
                        else (f"{fig['value']:g}", f"{fig['threshold']:g}"))
        name = FIGURES.get(fig.get("name"), _text(fig.get("name")))
        doc.append(("p", [f"{name[:1].upper()}{name[1:]}: {value} (threshold {limit})."]))
    if body.get("kind") == "recovery" and alert != "red" and body.get("red_for") is not None:
        doc.append(("p", [f"It lasted {duration(body['red_for'])}."]))
    links = body.get("links") or {}
    shown = [Link(label, links.get(key)) for key, label in
             (("triage", "Triage"), ("failure", "Failure"), ("alerts", "Alerts")) if link_url(links.get(key))]
    if shown:
        parts: list = []
        for link in shown:
            parts += ([" · "] if parts else []) + [link]
        doc.append(("p", parts))
    return doc


# --- Slack and Mattermost ----------------------------------------------------------------------------

def _slack_escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("@", "@" + JOIN).replace("]", "]" + JOIN)


def _slack_parts(parts: list) -> str:
    out = []
    for part in parts:
        if isinstance(part, Link):
            url = link_url(part.url)
            label = _slack_escape(part.label)
            # In the URL `|` and `>` would end it; a label's `|` would break Mattermost's reading of the link.
            out.append(f"<{url.replace('&', '&amp;').replace('<', '%3C').replace('>', '%3E').replace('|', '%7C')}"
                       f"|{label.replace('|', '¦')}>" if url else label)
        elif isinstance(part, Mention):
            out.append(" " + one_line(part.handle))  # configuration: as written, so it notifies
        else:
            out.append(_slack_escape(part))
    return "".join(out)


def _slack_lines(body: dict) -> list[str]:
    style = {"p": "{}", "h": "*{}*", "li": "• {}", "sub": "      ◦ {}"}
    return [style[kind].format(_slack_parts(parts)) for kind, parts in _document(body)]


def slack(body: dict) -> dict:
    """The incoming-webhook payload: `text` complete on its own (Mattermost and notifications read it),
    and the same as Block Kit blocks for Slack."""
    title = _text(body.get("title"))
    emoji = EMOJI.get(body.get("kind"), ":information_source:")
    lines = _slack_lines(body)
    text = "\n".join([f"{emoji} *{_slack_escape(title)}*"] + lines)
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": clip(title, 150)}}]
    chunk = ""
    for line in lines:
        if chunk and len(chunk) + len(line) + 1 > SLACK_SECTION:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else clip(line, SLACK_SECTION)
    if chunk:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return {"text": text, "blocks": blocks[:50]}


# --- GitHub issues and comments (GitHub-flavoured Markdown) ------------------------------------------------

_MD_SPECIAL = set("\\`*_[]<>&~|$#")  # what makes markup, HTML, links or math of text, anywhere in a line
_MD_LINE_START = re.compile(r"^(\d+)([.)])|^([-+=>])")  # what makes a list, heading or quote of a line's start


def _md_escape(text: str) -> str:
    out = "".join("\\" + c if c in _MD_SPECIAL else c for c in text)
    return out.replace("@", "@" + JOIN)  # a backslash does not stop GitHub's @mention


def _md_url(url: str) -> str:
    for char, code in (("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E"), ('"', "%22"), ("\\", "%5C")):
        url = url.replace(char, code)
    return url


def _md_parts(parts: list) -> str:
    out = []
    for part in parts:
        if isinstance(part, Link):
            url = link_url(part.url)
            out.append(f"[{_md_escape(part.label)}]({_md_url(url)})" if url else _md_escape(part.label))
        elif isinstance(part, str):
            out.append(_md_escape(part))
        # a chat handle means nothing on GitHub
    return "".join(out)


def _join(lines: list[tuple[str, str]]) -> str:
    """Lines as blocks: a blank line between blocks, none in a list or after its heading (a Markdown list may
    follow a paragraph line)."""
    out, previous = [], None
    for kind, line in lines:
        listed = kind in ("li", "sub")
        if out:
            out.append("\n" if listed and previous in ("h", "li", "sub") else "\n\n")
        out.append(line)
        previous = kind
    return "".join(out)


def markdown(body: dict, marker: str) -> tuple[str, str]:
    """(issue title, Markdown body) for GitHub; `marker` (an HTML comment) ends the body, so that a
    later try finds what an earlier one posted."""
    style = {"p": "{}", "h": "**{}**", "li": "- {}", "sub": "  - {}"}
    lines = []
    for kind, parts in _document(body):
        text = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2) if m.group(1) else "\\" + m.group(3),
                                  _md_parts(parts))
        lines.append((kind, style[kind].format(text)))
    return clip(_text(body.get("title")), 250), _join(lines) + f"\n\n<sub>Sent by buildmon.</sub>\n{marker}\n"


# --- e-mail -------------------------------------------------------------------------------------------

def plain(body: dict) -> tuple[str, str]:
    """(subject, text/plain body): data as it is; links as "label <url>"."""
    style = {"p": "{}", "h": "{}:", "li": "  - {}", "sub": "      {}"}
    lines = []
    for kind, parts in _document(body):
        text = "".join(f"{p.label} <{link_url(p.url)}>" if isinstance(p, Link) and link_url(p.url)
                       else p.label if isinstance(p, Link) else p if isinstance(p, str) else "" for p in parts)
        lines.append((kind, style[kind].format(text)))
    return _text(body.get("title")), _join(lines) + "\n\n-- \nSent by buildmon.\n"


def email_html(body: dict) -> str:
    """The HTML alternative of the e-mail: every piece of data escaped, links only to http(s) URLs."""
    out = [f"<h2>{html_text(_text(body.get('title')))}</h2>"]
    listed = False
    for kind, parts in _document(body):
        text = "".join(
            (f'<a href="{html_text(link_url(p.url))}">{html_text(p.label)}</a>' if link_url(p.url)
             else html_text(p.label)) if isinstance(p, Link) else html_text(p) if isinstance(p, str) else ""
            for p in parts)
        if kind in ("li", "sub") and not listed:
            out.append("<ul>")
        if kind not in ("li", "sub") and listed:
            out.append("</ul>")
        listed = kind in ("li", "sub")
        out.append({"p": "<p>{}</p>", "h": "<h3>{}</h3>", "li": "<li>{}</li>",
                    "sub": '<li style="list-style:circle;margin-left:1.5em"><code>{}</code></li>'}[kind].format(text))
    if listed:
        out.append("</ul>")
    return "<!DOCTYPE html><html><body>" + "\n".join(out) + "<p><small>Sent by buildmon.</small></p></body></html>"


# --- generic webhook ----------------------------------------------------------------------------------

def webhook(body: dict, message_id: int) -> bytes:
    """The generic webhook's JSON: the message id (the receiver's key to drop a repeat) and the body."""
    return json.dumps({"id": message_id, **body}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
