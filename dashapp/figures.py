"""Plotly figures built from query frames (no queries here)."""
import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#1f77b4", "#9467bd", "#17becf", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#2ca02c", "#393b79", "#637939", "#8c6d31")
FAILURE_COLOUR = "#d62728"


def _minutes(series: pd.Series) -> list:
    return [None if v is None or v != v else round(float(v) / 60, 2) for v in series]


def performance_figure(series: pd.DataFrame, *, dark: bool = False, per: str = "day") -> go.Figure:
    """Build time and queue time (p50 solid, p90 dotted) per workflow, failures as bars below.

    `series` is `store.queries.waterfall.performance_series`; callers show an
    empty state instead of calling this with an empty frame.
    """
    bar_ms = (3600 if per == "hour" else 86400) * 1000 * 0.8  # a bar fills its bucket, not 1 ms of it
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.42, 0.33, 0.25],
                        subplot_titles=(f"Build time per {per} (min)", f"Queue time per {per} (min)",
                                        f"Failed runs per {per}"))
    for i, (workflow, rows) in enumerate(series.groupby("workflow", sort=True)):
        colour = PALETTE[i % len(PALETTE)]
        hover = f"<b>{workflow}</b><br>%{{x}}<br>%{{meta}} %{{y:.1f}} min<extra></extra>"
        for row, column, label in ((1, "runtime", "build"), (2, "queue", "queue")):
            for pct, dash_style, show in (("p50", "solid", row == 1), ("p90", "dot", False)):
                values = _minutes(rows[f"{column}_{pct}"])
                if all(v is None for v in values):
                    continue
                fig.add_trace(go.Scatter(
                    x=rows["bucket"], y=values, mode="lines+markers", name=workflow, legendgroup=workflow,
                    showlegend=show, line={"color": colour, "dash": dash_style, "width": 2 if pct == "p50" else 1},
                    marker={"size": 4}, meta=f"{label} {pct}", hovertemplate=hover, connectgaps=False,
                ), row=row, col=1)
        failed = rows[rows["failures"] > 0]
        if len(failed):
            fig.add_trace(go.Bar(
                x=failed["bucket"], y=failed["failures"], width=bar_ms, name=workflow, legendgroup=workflow, showlegend=False,
                marker={"color": colour, "line": {"color": FAILURE_COLOUR, "width": 1.5}},
                hovertemplate=f"<b>{workflow}</b><br>%{{x}}<br>%{{y}} failed<extra></extra>",
            ), row=3, col=1)
    fig.update_layout(
        template="plotly_dark" if dark else "plotly_white", barmode="stack", height=560,
        margin={"l": 50, "r": 20, "t": 40, "b": 30}, hovermode="closest",
        legend={"orientation": "h", "y": -0.08, "title": {"text": "p50 solid · p90 dotted   "}},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 12},
    )
    fig.update_yaxes(rangemode="tozero")
    most = series.groupby("bucket")["failures"].sum().max() if len(series) else 0
    fig.update_yaxes(tickformat="d", dtick=max(1, math.ceil((most or 0) / 4)), row=3, col=1)  # whole runs
    for annotation in fig.layout.annotations:
        annotation.update(x=0, xanchor="left", font={"size": 12})
    return fig
