"""The live-update pieces of the page shell.

`components()` is placed in every page's shell.  `live-version` is a counter
the views' callbacks take as an Input: bumping it makes the metric cards and
the commit grid re-query.  `live-badge` says whether the page is live.

Both are driven by `assets/live.js`, which Dash loads on every page: it holds
the WebSocket to `/ws` (URL from the page's own address, so it works behind
a reverse proxy and TLS), reconnects with backoff, batches bursts of
messages into one redraw, applies pushed runs to the Waterfall's build
stream (`stream-grid`) as a `rowTransaction`, bumps `live-version` at most
once a second, and catches up after a reconnect.  A plain script rather than
dash-extensions' `WebSocket` component, because that component neither
reconnects nor batches: every message would be a Dash prop change of its own.
"""
from dash import dcc, html


def components() -> list:
    return [
        dcc.Store(id="live-version", data=0),
        html.Span("offline", id="live-badge", className="badge bg-secondary ms-2", role="status",
                  title="Live updates: offline"),
    ]
