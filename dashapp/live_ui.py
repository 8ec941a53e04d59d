"""The live-update pieces of the page shell.

`components()` is placed in every page's shell.  `live-version` is a counter
the views' callbacks take as an Input: bumping it makes the metric cards and
the commit grid re-query.  (The WebSocket feed that bumps it, and applies
pushed rows to the build stream, is added by the live-updates work.)
"""
from dash import dcc, html


def components() -> list:
    return [
        dcc.Store(id="live-version", data=0),
        html.Span("offline", id="live-badge", className="badge bg-secondary ms-2"),
    ]
