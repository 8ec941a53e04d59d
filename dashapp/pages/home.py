"""Placeholder home page until the Waterfall view lands."""
import dash
from dash import html

dash.register_page(__name__, path="/", title="Build Monitor")

layout = html.Div([html.H2("Build Monitor"), html.P("Webhooks are received at POST /webhook.")], id="home")
