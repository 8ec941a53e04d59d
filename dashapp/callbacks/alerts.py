"""The Alerts view's callbacks: the store's breaks and messages drawn, and a test message per channel.

`register()` is called by the page module, once per app.

A test button's click becomes `al-test-request` (`{channel, at}`) in the browser (a clientside callback: the
buttons are one per channel, pattern-matched there); the server callback then sends the test, by the API's
rule (`dashapp.api.refusal_to_test`), and draws the channels again, each with its newest test's outcome.
"""
import time

from dash import ALL, Input, Output, callback, clientside_callback, html, no_update
from dash.exceptions import PreventUpdate

from dashapp import inputs
from dashapp.alerts_tables import cards, channels_table, history_table, messages_table, open_table
from dashapp.api import alert_config, channel_data, refusal_to_test
from dashapp.components import empty_state
from dashapp.shell import services
from dashapp.rawhtml import compact
from dashapp.security import audit
from store.engine import writing
from store.queries import alerts as aq

MESSAGES_SHOWN = 50  # the newest messages drawn (GET /api/alerts?limit= reads more)
HISTORY_SHOWN = 25  # the newest closed breaks drawn
MAX_CHANNEL = 200  # characters of a channel's name in a request (dashapp.api.MAX_CHANNEL_NAME)


def _empty(message: str, element_id: str, hint: str | None = None):
    return empty_state(message, hint=hint, id=element_id, className="empty-state empty-compact")


def overview(*, now: float | None = None) -> tuple:
    """The cards, open breaks, messages and history, from one connection."""
    now = time.time() if now is None else now
    with services().engine.connect() as conn:
        counts = aq.counts(conn)
        open_ = aq.open_breaks(conn, now=now) if counts["open"] else []
        messages = aq.messages(conn, limit=MESSAGES_SHOWN)
        history = aq.history(conn, limit=HISTORY_SHOWN) if counts["closed"] else []
    return (
        cards(counts),
        open_table(open_, now=now) if open_ else _empty("Nothing is broken.", "al-open-empty",
                                                        "A watched branch that turns red shows here until it is "
                                                        "fixed."),
        messages_table(messages, now=now) if messages else _empty("No message yet.", "al-messages-empty"),
        history_table(history, now=now) if history else _empty("No break fixed yet.", "al-history-empty"),
    )


def refusal() -> str | None:
    """Why this request's client may not send a test message (None: it may), by the API's rule."""
    return refusal_to_test(services().config)


def channels_section(config, *, note=None, now: float | None = None):
    """The channels with their newest tests' outcomes and the test buttons (disabled with the reason when this
    client may not send one); `note`: what came of a test that was not sent."""
    if config is None:
        return _empty("No channels: alerts are not configured.", "al-channels-empty")
    channels = [channel_data(c) for c in config.channels.values()]
    if not channels:
        return _empty("No channels in ALERTS_CONFIG.", "al-channels-empty")
    with services().engine.connect() as conn:
        tests = aq.last_tests(conn, [c["name"] for c in channels])
    table = channels_table(channels, tests, refusal=refusal(), now=time.time() if now is None else now)
    if note is None:
        return table
    return [html.Div(note, id="al-test-note", className="small text-danger-emphasis px-2 py-1 border-bottom"), table]


def send_test(channel: str):
    """Send a test message to `channel` now if this request may (the page is no way around the API's rule),
    then the channels drawn again; and the time sent, for the messages to redraw (`no_update` when not sent)."""
    config = alert_config()
    reason = refusal()
    if reason is None and config is None:
        reason = "alerts are not configured"
    elif reason is None and channel not in config.channels:
        reason = "no such channel any more"
    if reason:
        return channels_section(config, note=f"Not sent: {reason}."), no_update
    from alerts.sender import send_test as send  # the sender's module loads only when a test is asked for

    now = time.time()
    outcome = send(services().engine, config, channel, now=now, publish=services().broadcast)  # others redraw
    with writing(services().engine) as conn:
        audit(conn, "alert.test", f"channel:{channel}", {"state": outcome.get("state"), "from": "page"})
    return channels_section(config, now=now), now


# `al-test-request` as the clientside callback writes it.
TEST_REQUEST = {"channel": inputs.checker(inputs.text, max_len=MAX_CHANNEL),
                "at": inputs.checker(inputs.integer, lo=0)}

# A click on one of the test buttons -> {channel, at}; nothing for the buttons appearing (n_clicks empty).
_CLICKED = """function (_clicks) {
    var dc = window.dash_clientside, hit = (dc.callback_context.triggered || [])[0];
    if (!hit || !hit.value) { return dc.no_update; }
    var id = JSON.parse(hit.prop_id.slice(0, hit.prop_id.lastIndexOf('.')));
    return {channel: id.channel, at: Date.now()};
}"""


def register() -> None:
    @callback(Output("al-cards", "children"), Output("al-open", "children"), Output("al-messages", "children"),
              Output("al-history", "children"), Input("live-version", "data"), Input("al-sent", "data"))
    def _overview(_version, _sent):
        return compact(overview())

    clientside_callback(_CLICKED, Output("al-test-request", "data"), Input({"type": "al-test", "channel": ALL},
                                                                            "n_clicks"), prevent_initial_call=True)

    @callback(Output("al-channels", "children"), Output("al-sent", "data"), Input("al-test-request", "data"),
              prevent_initial_call=True)
    def _test(request):
        request = inputs.record(request, "al-test-request.data", TEST_REQUEST)
        if not request["channel"]:
            raise PreventUpdate
        return compact(send_test(request["channel"]))
