"""Plotly figures built from query frames (no queries here)."""
from __future__ import annotations  # `pd.DataFrame` annotations stay unevaluated: pandas loads on first use

import json
import math
from datetime import datetime, timezone
from functools import lru_cache

from plotly.subplots import make_subplots

from domain.text import plot_text
from store.lazymodules import pandas as pd

PALETTE = ("#1f77b4", "#9467bd", "#17becf", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#2ca02c", "#393b79", "#637939", "#8c6d31")
FAILURE_COLOUR = "#d62728"
NAME_LIMIT = 60  # characters of a workflow name in the legend and hover boxes


@lru_cache(maxsize=8)
def _skeleton(dark: bool, per: str) -> str:
    """The chart's layout (three stacked panels sharing x), as JSON: built by plotly once.

    Traces are added as plain dicts: plotly's validation of each trace cost ~90 ms a chart.
    """
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.42, 0.33, 0.25],
                        subplot_titles=(f"Build time per {per} (min)", f"Queue time per {per} (min)",
                                        f"Failed runs per {per}"))
    fig.update_layout(
        template="plotly_dark" if dark else "plotly_white", barmode="stack", height=560,
        margin={"l": 50, "r": 20, "t": 40, "b": 30}, hovermode="closest",
        legend={"orientation": "h", "y": -0.08, "title": {"text": "p50 solid · p90 dotted   "}},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 12},
    )
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(tickformat="d", row=3, col=1)  # whole runs
    for annotation in fig.layout.annotations:
        annotation.update(x=0, xanchor="left", font={"size": 12})
    return fig.to_json()


def _time(bucket) -> str:
    """A bucket (epoch seconds, or a timestamp) as ISO 8601 UTC, as plotly reads dates."""
    if isinstance(bucket, (int, float)):
        return datetime.fromtimestamp(bucket, timezone.utc).isoformat()
    return pd.Timestamp(bucket).isoformat()


def _minute(v):
    return None if v is None or v != v else round(float(v) / 60, 2)


def performance_figure(series, *, dark: bool = False, per: str = "day") -> dict:
    """Build time and queue time (p50 solid, p90 dotted) per workflow, failures as bars below.

    `series` is `store.queries.waterfall.performance_records` (dicts sorted by workflow, then
    bucket) or the same as a frame (`performance`); callers show an empty state instead of
    calling this with no rows.  A plotly figure dict, built from plain lists.
    """
    records = series.to_dict("records") if isinstance(series, pd.DataFrame) else series
    fig = json.loads(_skeleton(dark, per))
    bar_ms = (3600 if per == "hour" else 86400) * 1000 * 0.8  # a bar fills its bucket, not 1 ms of it
    by_workflow: dict[str, list] = {}
    per_bucket: dict = {}
    for r in records:
        by_workflow.setdefault(r["workflow"], []).append(r)
        per_bucket[r["bucket"]] = per_bucket.get(r["bucket"], 0) + (r["failures"] or 0)
    data = []
    for i, workflow in enumerate(sorted(by_workflow)):
        rows = sorted(by_workflow[workflow], key=lambda r: r["bucket"])
        colour = PALETTE[i % len(PALETTE)]
        # The name is data: Plotly must show it as text (no markup, entities or %{...} of its own).
        name = plot_text(workflow, NAME_LIMIT)
        hover = f"<b>{name}</b><br>%{{x}}<br>%{{meta}} %{{y:.1f}} min<extra></extra>"
        x = [_time(r["bucket"]) for r in rows]
        for axis, column, label in (("", "runtime", "build"), ("2", "queue", "queue")):
            for pct, dash_style, show in (("p50", "solid", axis == ""), ("p90", "dot", False)):
                values = [_minute(r[f"{column}_{pct}"]) for r in rows]
                if all(v is None for v in values):
                    continue
                data.append({
                    "type": "scatter", "x": x, "y": values, "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                    "mode": "lines+markers", "name": name, "legendgroup": workflow, "showlegend": show,
                    "line": {"color": colour, "dash": dash_style, "width": 2 if pct == "p50" else 1},
                    "marker": {"size": 4}, "meta": f"{label} {pct}", "hovertemplate": hover, "connectgaps": False,
                })
        failed = [(t, r) for t, r in zip(x, rows) if r["failures"] > 0]
        if failed:
            data.append({
                "type": "bar", "x": [t for t, _r in failed], "y": [int(r["failures"]) for _t, r in failed],
                "xaxis": "x3", "yaxis": "y3", "width": bar_ms, "name": name, "legendgroup": workflow,
                "showlegend": False, "marker": {"color": colour, "line": {"color": FAILURE_COLOUR, "width": 1.5}},
                "hovertemplate": f"<b>{name}</b><br>%{{x}}<br>%{{y}} failed<extra></extra>",
            })
    fig["data"] = data
    most = max(per_bucket.values(), default=0)
    fig["layout"]["yaxis3"]["dtick"] = max(1, math.ceil((most or 0) / 4))
    return fig
