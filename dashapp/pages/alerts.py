"""The Alerts view (`/alerts`): open breaks, the messages they sent and how their delivery went, the history,
and the channels with a test message each.

The configuration is the server's (ALERTS_CONFIG, read at start); the breaks and messages are the store's.
`layout` draws the channels (with whether this client may send a test message); the callbacks in
`dashapp.callbacks.alerts` fill the cards, open breaks, messages and history, again on every
`live-version` bump (the sender and the decisions publish `{"type": "alerts"}`) and after a test;
a test button's click sends the test and draws the channels again with its outcome.
"""
import dash
from dash import dcc, html

from dashapp.api import alert_config
from dashapp.callbacks import alerts as callbacks
from dashapp.components import empty_state, section

dash.register_page(__name__, path="/alerts", name="Alerts", title="Alerts · Build Monitor", order=3)
callbacks.register()




def not_configured() -> html.Div:
    return empty_state(
        "Alerts are not configured.",
        hint=["Set ", html.Code("ALERTS_CONFIG"), " to a TOML file of rules and channels (Slack or Mattermost, "
              "a signed JSON webhook, a GitHub issue, e-mail) and restart: the README's “Alerts” section has a "
              "complete example and each channel's set-up. Breaks already recorded are still listed below."],
        id="al-notice", className="empty-state mb-3 bg-body border rounded")


def layout(**_query):
    config = alert_config()
    if config is None:
        scope = "not configured"
    else:
        scope = f"{len(config.rules)} rule{'s' if len(config.rules) != 1 else ''} · {len(config.channels)} " \
                f"channel{'s' if len(config.channels) != 1 else ''}"
    loading = {"type": "dot", "delay_show": 400}
    return html.Div([
        dcc.Store(id="al-sent", data=0),  # bumped after a test message: the messages redraw
        dcc.Store(id="al-test-request"),  # {channel, at}: the test button clicked (a clientside callback writes it)
        html.H1(["Alerts ", html.Small(scope, className="text-muted fs-6", id="al-heading-scope")],
                className="h4 mb-2"),
        not_configured() if config is None else None,
        html.Div(id="al-cards"),
        section("Open", dcc.Loading(html.Div(id="al-open"), **loading),
                hint="breaks not fixed yet, newest first; each channel's delivery of their messages",
                section_id="al-open-section"),
        section("Messages", dcc.Loading(html.Div(id="al-messages"), **loading),
                hint="every message decided, newest first: a failed try is retried with a growing wait until it "
                     "is delivered or given up",
                section_id="al-messages-section"),
        section("History", dcc.Loading(html.Div(id="al-history"), **loading),
                hint="breaks fixed, newest fixed first", section_id="al-history-section"),
        section("Channels", dcc.Loading(html.Div(callbacks.channels_section(config), id="al-channels"),
                                        **loading),
                hint="where messages go (secrets are never shown); a test message checks the set-up",
                section_id="al-channels-section"),
    ], id="alerts-page")
