"""The Alerts page drawn: its cards, open breaks, messages, history and channels.

Pure functions of what `store.queries.alerts` returns and of the alert configuration (no queries).
Every text from the store (names, commit titles, message titles, receivers' errors) goes into Dash
components as children or attribute values (React writes them as text) after `as_text`; the only links
are to commits' pages here (`commit_href`, whose sha is checked to be letters and digits).  A channel is
shown by its name, type and `Channel.describe()`, which never holds a secret.
"""
from __future__ import annotations

import time

import dash_bootstrap_components as dbc
from dash import html

from dashapp.components import format_duration, metric_card
from dashapp.tables import ago, short_sha_link, utc
from domain.text import as_text, clip, one_line

NAME_SHOWN = 60  # characters of a repository, workflow, branch or channel name in a cell
TITLE_SHOWN = 120  # characters of a commit's or message's title in a cell (the whole is its hover)
ERROR_SHOWN = 160  # characters of a delivery's last error in a cell (the whole is its hover)
# A state's badge: a word AND a colour (assets/app.css); a pending message already tried is being retried.
STATE_CLASSES = {"delivered": "row-badge-green", "failed": "row-badge-red", "pending": "row-badge-pending",
                 "sending": "row-badge-pending", "retrying": "row-badge-flaky"}
MUTED = "bg-secondary-subtle text-secondary-emphasis"  # quiet, skipped, and a state this page does not know
STATE_HINTS = {
    "pending": "waiting for its turn to be sent",
    "retrying": "the last try failed; it is tried again at “next try”",
    "sending": "being sent now", "delivered": "the receiver took it", "failed": "given up: every try failed",
    "quiet": "recorded, never sent (found by a backfill)", "skipped": "nothing to send (e.g. no issue to close)",
}
KIND_WORDS = {"break": "broken", "recovery": "recovered", "reminder": "still red", "test": "test"}
ALERT_WORDS = {"red": "red", "stale": "stuck run", "lag": "processing lag", "failed_deliveries": "failed deliveries"}


def _text(value) -> str:
    return as_text(value).strip()


def _name(value) -> str:
    return clip(one_line(value), NAME_SHOWN)


def _dash() -> html.Span:
    return html.Span("—", className="text-muted")


def _when(epoch, now: float, **kwargs) -> html.Span | None:
    if epoch is None:
        return _dash()
    return html.Span(ago(epoch, now), title=utc(epoch), className="fi-when", **kwargs)


def _until(epoch, now: float) -> html.Span:
    """"in 4m" for a time to come, "due" once it has come."""
    if epoch is None:
        return _dash()
    left = float(epoch) - now
    return html.Span(f"in {format_duration(left)}" if left >= 1 else "due", title=utc(epoch), className="fi-when")


def _sent(epoch, now: float) -> html.Span:
    if epoch is None:
        return _dash()
    return html.Span(f"sent {ago(epoch, now)}", title=utc(epoch), className="fi-when text-muted")


def shown_state(state, tries=0) -> str:
    """The word a message's state is shown as: a pending message that was tried already is "retrying"."""
    state = _text(state)
    return "retrying" if state == "pending" and (tries or 0) > 0 else state


def state_badge(state, tries=0, **kwargs) -> html.Span:
    word = shown_state(state, tries)
    return html.Span(word or "unknown", className=f"row-badge {STATE_CLASSES.get(word, MUTED)} al-state",
                     title=STATE_HINTS.get(word, ""),
                     **{"data-state": _text(state)}, **kwargs)


def commit_cell(repo, commit: dict | None, *, klass: str = "al-commit"):
    """A commit as its short sha linking to its page here, then its title (the whole title and author on hover)."""
    if not commit or not commit.get("sha"):
        return _dash()
    title, author = one_line(commit.get("title")), _text(commit.get("author"))
    return html.Span([short_sha_link(_text(repo), commit.get("sha"), className="font-monospace me-2 al-sha"),
                      html.Span(clip(title, TITLE_SHOWN) or "(no message)", title=title),
                      html.Span(f" · {clip(author, NAME_SHOWN)}", className="text-muted") if author else None],
                     className=klass)


def deliveries_cell(deliveries) -> html.Div:
    """Each channel with the state of its newest message for the break (every message on hover)."""
    newest: dict[str, dict] = {}
    for d in deliveries or []:
        if d.get("id") is not None and (d["channel"] not in newest or d["id"] > newest[d["channel"]]["id"]):
            newest[d["channel"]] = d
    if not newest:
        return html.Div(html.Span("no message", className="text-muted small"))
    chips = []
    for channel, d in sorted(newest.items()):
        history = "; ".join(f"{KIND_WORDS.get(x.get('kind'), _text(x.get('kind')))}: "
                            f"{shown_state(x.get('state'), x.get('tries'))}"
                            for x in deliveries if x.get("channel") == channel)
        chips.append(html.Span([html.Span(_name(channel), className="me-1"),
                                state_badge(d.get("state"), d.get("tries"))],
                               className="al-delivery me-2 text-nowrap d-inline-block", title=history,
                               **{"data-channel": _text(channel)}))
    return html.Div(chips, className="al-deliveries")


def _subject(brk: dict) -> list:
    """Repository, workflow and branch cells; a break about no workflow (a stuck run, a threshold) shows its
    title in their place."""
    if brk.get("workflow") or brk.get("branch"):
        return [html.Td(_name(brk.get("repo")) or "—", title=one_line(brk.get("repo"))),
                html.Td(_name(brk.get("workflow")) or "—", title=one_line(brk.get("workflow"))),
                html.Td(_name(brk.get("branch")) or "—", title=one_line(brk.get("branch")))]
    title = one_line(brk.get("title")) or ALERT_WORDS.get(brk.get("kind"), _text(brk.get("kind")))
    return [html.Td(_name(brk.get("repo")) or "—"), html.Td(clip(title, TITLE_SHOWN), colSpan=2, title=title)]


def _table(heads, rows, element_id: str, *, numeric=()) -> html.Div:
    head = html.Thead(html.Tr([html.Th(h, className="text-end" if h in numeric else None) for h in heads]))
    return html.Div(dbc.Table([head, html.Tbody(rows)], className="mb-0 align-middle fi-table", size="sm", hover=True,
                              id=element_id), className="table-responsive")


OPEN_HEADS = ("Repository", "Workflow", "Branch", "Red for", "First bad commit", "Red commits", "Delivery")


def open_table(breaks: list[dict], *, now: float | None = None) -> html.Div:
    """The open breaks, newest first: what is red, since when, the first bad commit and each channel's delivery."""
    now = time.time() if now is None else now
    rows = []
    for brk in breaks:
        red_for = brk.get("red_for")
        rows.append(html.Tr([
            *_subject(brk),
            html.Td(format_duration(red_for), title=f"red since {utc(brk.get('red_since'))}" if brk.get("red_since")
                    else None, className="text-nowrap al-red-for"),
            html.Td(commit_cell(brk.get("repo"), brk.get("first_bad"))),
            html.Td("—" if brk.get("red_count") is None else f"{int(brk['red_count']):,}",
                    className="text-end al-red-count"),
            html.Td(deliveries_cell(brk.get("deliveries"))),
        ], className="al-open-row", **{"data-break": str(brk.get("id"))}))
    return _table(OPEN_HEADS, rows, "al-open-table", numeric=("Red commits",))


MESSAGE_HEADS = ("Time", "Kind", "Subject", "Channel", "State", "Tries", "Next try", "Last error")


def messages_table(messages: list[dict], *, now: float | None = None) -> html.Div:
    """The outbox, newest first: each message's delivery state, tries, next try and last error (retries show)."""
    now = time.time() if now is None else now
    rows = []
    for msg in messages:
        error, title = one_line(msg.get("last_error")), one_line(msg.get("title"))
        pending = msg.get("state") == "pending"
        rows.append(html.Tr([
            html.Td(_when(msg.get("created"), now)),
            html.Td(KIND_WORDS.get(msg.get("kind"), _text(msg.get("kind"))), className="text-nowrap al-kind"),
            html.Td(clip(title, TITLE_SHOWN) or _dash(), title=title or None, className="al-subject"),
            html.Td(_name(msg.get("channel")), className="text-nowrap al-channel"),
            html.Td(state_badge(msg.get("state"), msg.get("tries"))),
            html.Td(f"{int(msg.get('tries') or 0):,}", className="text-end al-tries"),
            html.Td(_until(msg.get("next_try"), now) if pending else _sent(msg.get("sent"), now), className="al-next"),
            html.Td(clip(error, ERROR_SHOWN) if error else _dash(), title=error or None,
                    className="al-error small" + (" text-danger-emphasis" if error else "")),
        ], className="al-message-row", **{"data-message": str(msg.get("id")), "data-state": _text(msg.get("state"))}))
    return _table(MESSAGE_HEADS, rows, "al-messages-table", numeric=("Tries",))


HISTORY_HEADS = ("Opened", "Closed", "Repository", "Workflow", "Branch", "Red for", "Red commits", "Fixed by")


def history_table(breaks: list[dict], *, now: float | None = None) -> html.Div:
    """Closed breaks, newest closed first: how long each was red and the commit that fixed it."""
    now = time.time() if now is None else now
    rows = []
    for brk in breaks:
        rows.append(html.Tr([
            html.Td(_when(brk.get("opened"), now)),
            html.Td(_when(brk.get("closed"), now)),
            *_subject(brk),
            html.Td(format_duration(brk.get("red_for")), className="text-nowrap al-red-for"),
            html.Td("—" if brk.get("red_count") is None else f"{int(brk['red_count']):,}", className="text-end"),
            html.Td(commit_cell(brk.get("repo"), brk.get("fixed_by"), klass="al-fixed-by")),
        ], className="al-history-row" + (" text-muted" if brk.get("quiet") else ""),
            title="recorded by a backfill: no message was sent" if brk.get("quiet") else None,
            **{"data-break": str(brk.get("id"))}))
    return _table(HISTORY_HEADS, rows, "al-history-table", numeric=("Red commits",))


def last_test_cell(test: dict | None, *, now: float | None = None):
    """What a channel's newest test message came to: "delivered 5m ago", or its state and error."""
    if not test:
        return html.Span("not tested yet", className="text-muted small")
    now = time.time() if now is None else now
    error = one_line(test.get("last_error") or test.get("error"))
    when = test.get("sent") or test.get("created")
    return html.Span([state_badge(test.get("state"), test.get("tries")),
                      html.Span(f" {ago(when, now)}" if when else "", className="small text-muted"),
                      html.Span(f" {clip(error, ERROR_SHOWN)}", className="small text-danger-emphasis", title=error)
                      if error else None], className="al-test-result")


CHANNEL_HEADS = ("Channel", "Type", "Where", "Test")


def channels_table(channels: list[dict], tests: dict, *, refusal: str | None = None,
                   now: float | None = None) -> html.Div:
    """Each channel (name, type, description) with a "Send a test message" button and its newest test's outcome;
    the button is disabled with the reason when this client may not send one (`refusal`)."""
    rows = []
    for ch in channels:
        name = ch["name"]
        button = dbc.Button("Send a test message", id={"type": "al-test", "channel": name}, size="sm",
                            color="secondary", outline=True, disabled=bool(refusal), className="me-2 text-nowrap",
                            title=refusal or f"send a test message to {one_line(name)} now")
        rows.append(html.Tr([
            html.Td(_name(name), className="fw-semibold text-nowrap"),
            html.Td(html.Span(_text(ch.get("type")), className="fi-class")),
            html.Td(_text(ch.get("description")), className="al-describe"),
            html.Td(html.Div([button, html.Span(last_test_cell(tests.get(name), now=now),
                                                className="al-test-outcome")],
                             className="d-flex align-items-center flex-wrap gap-1")),
        ], className="al-channel-row", **{"data-channel": _text(name)}))
    out = [_table(CHANNEL_HEADS, rows, "al-channels-table")]
    if refusal:
        out.insert(0, html.Div(f"Test messages are disabled here: {refusal}.", id="al-test-refusal",
                               className="small text-muted px-2 py-1 border-bottom"))
    return html.Div(out)


def cards(counts: dict) -> dbc.Row:
    """Open breaks, messages waiting, failed and delivered: the outbox at a glance."""
    by_state = counts.get("messages") or {}
    open_, closed = int(counts.get("open") or 0), int(counts.get("closed") or 0)
    waiting, sending = int(by_state.get("pending") or 0), int(by_state.get("sending") or 0)
    failed, delivered = int(by_state.get("failed") or 0), int(by_state.get("delivered") or 0)
    quiet = int(by_state.get("quiet") or 0) + int(by_state.get("skipped") or 0)
    items = [
        metric_card("Open breaks", f"{open_:,}", f"{closed:,} closed", card_id="al-card-open",
                    tone="bad" if open_ else "good"),
        metric_card("Messages pending", f"{waiting + sending:,}", f"{sending:,} sending now",
                    card_id="al-card-pending"),
        metric_card("Failed", f"{failed:,}", "given up after their retries", card_id="al-card-failed",
                    tone="bad" if failed else None),
        metric_card("Delivered", f"{delivered:,}", f"{quiet:,} quiet or skipped", card_id="al-card-delivered"),
    ]
    return dbc.Row([dbc.Col(item, xs=6, md=3, className="mb-3") for item in items], className="metric-cards g-3")
