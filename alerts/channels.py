"""Send one alert message to one channel, with that channel's own protocol.

`send` either returns a `SendResult` (delivered; `ref` is what later messages of the same break need:
a GitHub issue's number, an e-mail's Message-ID) or raises `SendError` with a text for the Alerts page
and whether trying again may help.  Those texts name the host and the answer, never a secret: a Slack
webhook's URL path is its credential, so no exception text of `requests` (which quotes the URL) is
ever passed on; tokens and passwords are never in a text at all.

Delivery is at least once (a crash between sending and recording sends again), so every message
carries its id for the receiver to drop a repeat: `X-Buildmon-Delivery` on webhooks, a stable
Message-ID on e-mail, and a marker in GitHub issues and comments that is looked for before posting.
"""
import hashlib
import hmac
import json
import re
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import requests

from alerts import render
from domain.text import clip, one_line
from ingest.restclient import links, rate_limit_wait

USER_AGENT = "buildmon-alerts"
GITHUB_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                  "User-Agent": USER_AGENT}
PAGES = 10  # pages of 100 issues or comments looked through for a marker
RETRY_STATUSES = (408, 425, 429)  # client errors that pass; other 4xx will answer the same again
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# What a network failure was, found in the text of requests' exception (which also holds the URL).
_REASONS = (("Connection refused", "connection refused"), ("Name or service not known", "host name not found"),
            ("nodename nor servname", "host name not found"), ("Temporary failure in name resolution",
                                                              "host name not found"),
            ("getaddrinfo failed", "host name not found"), ("CERTIFICATE_VERIFY_FAILED", "certificate not trusted"),
            ("Connection reset", "connection reset"), ("RemoteDisconnected", "connection closed by the server"),
            ("Connection aborted", "connection closed by the server"), ("timed out", "timed out"))


class SendError(Exception):
    """The message was not delivered: `text` says why (no secret in it); `retry` is False when trying again
    cannot help (a revoked webhook, a refused token); `wait` is the receiver's Retry-After, in seconds."""

    def __init__(self, text: str, retry: bool = True, wait: float | None = None):
        super().__init__(text)
        self.text = text
        self.retry = retry
        self.wait = wait


@dataclass(frozen=True)
class SendResult:
    ref: str | None = None  # kept on the message: what later messages of the break need
    detail: str = ""  # what was done, in words (a test message says what was checked)
    skipped: bool = False  # nothing to do (a recovery for an issue that was never opened)


def send(channel, message_id: int, body: dict, *, ref: str | None = None,
         break_message_ref: str | None = None) -> SendResult:
    """Deliver message `message_id` (`body`, see the contract) on `channel`; `break_message_ref` is the ref of
    the break's own message on this channel (for a recovery or reminder).  `ref`, the message's own ref from an
    earlier try, is accepted for channels that may need it; none does yet (a marker finds an earlier try)."""
    senders = {"slack": _slack, "webhook": _webhook, "github-issue": _github, "email": _email}
    if channel.type not in senders:
        raise SendError(f"unknown channel type {channel.type!r}", retry=False)
    return senders[channel.type](channel, message_id, body, ref, break_message_ref)


# --- HTTP ----------------------------------------------------------------------------------------------

def _no_auth(request):
    # Passed as `auth`: without it requests would add credentials from ~/.netrc (over our own header).
    return request


def _reason(exc: Exception) -> str:
    text = str(exc)
    return next((why for needle, why in _REASONS if needle in text), type(exc).__name__)


def _request(method: str, url: str, who: str, timeout: float, **kwargs) -> requests.Response:
    """One HTTP request; a failure to reach `who` (its host, named) is a retryable SendError."""
    try:
        return requests.request(method, url, timeout=timeout, allow_redirects=False, auth=_no_auth, **kwargs)
    except requests.Timeout:
        raise SendError(f"{who}: no answer within {timeout:g} s") from None
    except requests.exceptions.SSLError as exc:
        raise SendError(f"{who}: TLS failed ({_reason(exc)})") from None
    except requests.ConnectionError as exc:
        raise SendError(f"{who}: could not connect ({_reason(exc)})") from None
    except requests.RequestException as exc:
        raise SendError(f"{who}: request failed ({type(exc).__name__})") from None


def _answer(response: requests.Response) -> str:
    """The receiver's own words about an error, short: GitHub's `message`, Slack's plain text."""
    try:
        data = response.json()
        text = data.get("message") if isinstance(data, dict) else None
    except ValueError:
        text = None
    return clip(one_line(text if text is not None else response.text[:300]), 160)


def _check(response: requests.Response, who: str, *, hint: str = "") -> None:
    """Raise a SendError for anything but 2xx: retryable for 408/425/429, rate limits and 5xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    said = _answer(response)
    text = f"{who} answered HTTP {status}" + (f": {said}" if said else "")
    wait = rate_limit_wait(status, dict(response.headers), said, time.time()) if status in (403, 429) else None
    if wait is not None or status in RETRY_STATUSES or status >= 500:
        raise SendError(text, retry=True, wait=wait)
    if 300 <= status < 400:
        raise SendError(f"{text} (a redirect: the URL is out of date)", retry=False)
    raise SendError(text + (f" ({hint})" if hint else ""), retry=False)


def _slack(channel, message_id, body, ref, break_message_ref) -> SendResult:
    who = f"Slack webhook at {render.host_of(channel.url)}"
    if not channel.url:
        raise SendError("the Slack channel has no URL", retry=False)
    data = json.dumps(render.slack(body), ensure_ascii=False).encode("utf-8")
    response = _request("POST", channel.url, who, channel.timeout, data=data,
                        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    _check(response, who, hint="the webhook was revoked or deleted" if response.status_code in (404, 410) else "")
    return SendResult(detail=f"posted to {render.host_of(channel.url)}")


def signature(secret: str, data: bytes) -> str:
    """GitHub's scheme: "sha256=" + hex HMAC-SHA256 of the raw body with the shared secret."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()


def _webhook(channel, message_id, body, ref, break_message_ref) -> SendResult:
    who = f"webhook at {render.host_of(channel.url)}"
    if not channel.url:
        raise SendError("the webhook channel has no URL", retry=False)
    data = render.webhook(body, message_id)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-Buildmon-Event": str(body.get("kind")), "X-Buildmon-Delivery": str(message_id)}
    if channel.secret:
        headers["X-Hub-Signature-256"] = signature(channel.secret, data)
    _check(_request("POST", channel.url, who, channel.timeout, data=data, headers=headers), who)
    return SendResult(detail=f"posted to {render.host_of(channel.url)}")


# --- GitHub issues -----------------------------------------------------------------------------------------

class _GitHub:
    def __init__(self, channel):
        if not channel.token:
            raise SendError("the GitHub issue channel has no token", retry=False)
        self.api = channel.api_url.rstrip("/")
        self.host = render.host_of(self.api)
        self.timeout = channel.timeout
        self.headers = dict(GITHUB_HEADERS, Authorization=f"Bearer {channel.token}")

    def call(self, method: str, path: str, what: str, **kwargs) -> requests.Response:
        """`path` on the API (or a `Link` URL, only when on the API: the token goes nowhere else)."""
        url = path if path.startswith(self.api + "/") else self.api + path
        who = f"GitHub at {self.host}"
        response = _request(method, url, who, self.timeout, headers=self.headers, **kwargs)
        if response.status_code == 401:
            raise SendError(f"{who} refused the token (HTTP 401: {_answer(response)})", retry=False)
        hint = {404: f"{what} not found, or the token may not see it", 410: f"{what} is gone (issues turned off?)",
                403: f"the token may not write {what}"}.get(response.status_code, "")
        _check(response, f"{who} ({method} {what})", hint=hint)
        return response

    def json(self, response: requests.Response):
        try:
            return response.json()
        except ValueError:
            raise SendError(f"GitHub at {self.host} answered something that is not JSON "
                            f"(HTTP {response.status_code})") from None

    def pages(self, path: str, what: str, params: dict):
        url = path
        for _ in range(PAGES):
            response = self.call("GET", url, what, params=params)
            page = self.json(response)
            yield from (item for item in page if isinstance(item, dict)) if isinstance(page, list) else ()
            url, params = links(response.headers.get("Link")).get("next"), None
            if not url or not url.startswith(self.api + "/"):
                return

    def find_issue(self, repo: str, label: str | None, marker: str) -> int | None:
        params = {"state": "all", "per_page": 100, **({"labels": label} if label else {})}
        for issue in self.pages(f"/repos/{repo}/issues", f"issues of {repo}", params):
            if "pull_request" not in issue and marker in (issue.get("body") or ""):
                return int(issue["number"])
        return None

    def has_comment(self, repo: str, number: int, marker: str) -> bool:
        return any(marker in (c.get("body") or "") for c in
                   self.pages(f"/repos/{repo}/issues/{number}/comments", f"issue #{number} of {repo}",
                              {"per_page": 100}))


def _github(channel, message_id, body, ref, break_message_ref) -> SendResult:
    gh = _GitHub(channel)
    kind = body.get("kind")
    if kind == "test":
        return _github_check(gh, channel)
    repo = channel.repo or body.get("repo") or ""
    if not _REPO.fullmatch(repo):
        raise SendError(f"no repository to open the issue in ({repo!r} is not owner/name)", retry=False)
    label = channel.labels[0] if channel.labels else None
    opened = f"<!-- buildmon-alert:{body.get('break_id') if body.get('break_id') is not None else message_id} -->"
    if kind == "break":
        found = gh.find_issue(repo, label, opened)
        if found is not None:  # an earlier try opened it, then failed to record it
            return SendResult(ref=str(found), detail=f"issue #{found} of {repo} was already open")
        title, text = render.markdown(body, opened)
        response = gh.call("POST", f"/repos/{repo}/issues", f"issues of {repo}",
                           json={"title": title, "body": text, "labels": list(channel.labels)})
        number = int(gh.json(response)["number"])
        return SendResult(ref=str(number), detail=f"opened issue #{number} of {repo}")
    number = int(break_message_ref) if break_message_ref else gh.find_issue(repo, label, opened)
    if number is None:
        return SendResult(skipped=True, detail=f"no issue of {repo} was opened for this break")
    marker = f"<!-- buildmon-message:{message_id} -->"
    done = []
    if not gh.has_comment(repo, number, marker):
        gh.call("POST", f"/repos/{repo}/issues/{number}/comments", f"issue #{number} of {repo}",
                json={"body": render.markdown(body, marker)[1]})
        done.append("commented on")
    if kind == "recovery":
        gh.call("PATCH", f"/repos/{repo}/issues/{number}", f"issue #{number} of {repo}",
                json={"state": "closed", "state_reason": "completed"})
        done.append("closed")
    return SendResult(ref=str(number), detail=f"{' and '.join(done) or 'found'} issue #{number} of {repo}")


def _github_check(gh: _GitHub, channel) -> SendResult:
    """A test opens no issue: it checks that the token works (and can see the channel's repository)."""
    if channel.repo:
        if not _REPO.fullmatch(channel.repo):
            raise SendError(f"{channel.repo!r} is not an owner/name repository", retry=False)
        data = gh.json(gh.call("GET", f"/repos/{channel.repo}", f"repository {channel.repo}"))
        if data.get("has_issues") is False:
            raise SendError(f"issues are turned off in {channel.repo}", retry=False)
        push = (data.get("permissions") or {}).get("push")
        note = "" if push is None else "; the token can write to it" if push else \
            "; the token cannot write to it: issues may open without their label"
        return SendResult(detail=f"checked GitHub at {gh.host}: the token can read {channel.repo}{note} "
                                 f"(no issue opened)")
    core = (gh.json(gh.call("GET", "/rate_limit", "rate limit")).get("resources") or {}).get("core") or {}
    left = f" ({core['remaining']} of {core['limit']} requests left)" if "remaining" in core else ""
    return SendResult(detail=f"checked GitHub at {gh.host}: the token is accepted{left}; issues go to each "
                             f"broken repository, not checked (no issue opened)")


# --- e-mail ----------------------------------------------------------------------------------------------

def message_id_header(channel, message_id: int, body: dict) -> str:
    """The same Message-ID on every try of a message (receivers drop repeats), different for another store's
    message with the same id (the body's decision time differs)."""
    digest = hashlib.sha256(json.dumps([channel.name, message_id, body], sort_keys=True).encode()).hexdigest()
    domain = channel.sender.rpartition("@")[2].strip("> ") or "buildmon.invalid"
    return f"<buildmon.{message_id}.{digest[:16]}@{domain}>"


def _email_message(channel, message_id, body, break_message_ref) -> EmailMessage:
    subject, text = render.plain(body)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = formatdate(body.get("decided"), usegmt=True)
    msg["Message-ID"] = message_id_header(channel, message_id, body)
    if break_message_ref and body.get("kind") in ("recovery", "reminder"):  # a thread under the break's mail
        msg["In-Reply-To"] = msg["References"] = break_message_ref
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg["X-Buildmon-Delivery"] = str(message_id)
    msg.set_content(text)
    msg.add_alternative(render.email_html(body), subtype="html")
    return msg


def _smtp(channel, where: str) -> smtplib.SMTP:
    """A connection, encrypted as configured and verified against `ca_file` (or the system's CAs)."""
    try:
        context = ssl.create_default_context(cafile=channel.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SendError(f"the CA file {channel.ca_file} could not be read ({type(exc).__name__})", retry=False) \
            from None
    if channel.security == "tls":
        return smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout, context=context)
    smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
    if channel.security == "none":
        return smtp
    smtp.ehlo()
    if not smtp.has_extn("starttls"):
        smtp.close()
        raise SendError(f"{where} does not offer STARTTLS (set security = \"tls\" for port 465)", retry=False)
    smtp.starttls(context=context)
    smtp.ehlo()
    return smtp


def _email(channel, message_id, body, ref, break_message_ref) -> SendResult:
    where = f"SMTP server {channel.host}:{channel.port}"
    if not channel.host or not channel.to or not channel.sender:
        raise SendError("the e-mail channel needs a host, a sender and recipients", retry=False)
    msg = _email_message(channel, message_id, body, break_message_ref)
    try:
        smtp = _smtp(channel, where)
        try:
            if channel.username:
                smtp.login(channel.username, channel.password)
            refused = smtp.send_message(msg, from_addr=channel.sender, to_addrs=list(channel.to))
            smtp.quit()
        finally:
            smtp.close()
    except SendError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"{where} refused the login of {channel.username} ({_smtp_said(exc)})", retry=False) \
            from None
    except smtplib.SMTPNotSupportedError:
        raise SendError(f"{where} does not support AUTH (remove username, or use security = starttls)",
                        retry=False) from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _said in exc.recipients.values()]
        raise SendError(f"{where} refused every recipient ({', '.join(map(str, codes))})",
                        retry=any(code < 500 for code in codes)) from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"{where} answered {_smtp_said(exc)}", retry=exc.smtp_code < 500) from None
    except smtplib.SMTPServerDisconnected:
        raise SendError(f"{where} closed the connection") from None
    except ssl.SSLCertVerificationError as exc:
        raise SendError(f"{where}: certificate not trusted ({exc.verify_message})") from None
    except ssl.SSLError as exc:
        raise SendError(f"{where}: TLS failed ({exc.reason or type(exc).__name__})") from None
    except (socket.timeout, TimeoutError):
        raise SendError(f"{where}: no answer within {channel.timeout:g} s") from None
    except ConnectionRefusedError:
        raise SendError(f"{where}: could not connect (connection refused)") from None
    except socket.gaierror:
        raise SendError(f"{where}: host name not found") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"{where}: {type(exc).__name__} {getattr(exc, 'strerror', '') or ''}".rstrip()) from None
    note = f" (refused: {', '.join(sorted(refused))})" if refused else ""
    return SendResult(ref=msg["Message-ID"], detail=f"accepted by {where} for "
                                                    f"{len(channel.to) - len(refused)} recipients{note}")


def _smtp_said(exc: smtplib.SMTPResponseException) -> str:
    said = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return clip(f"{exc.smtp_code} {one_line(said)}", 160)
