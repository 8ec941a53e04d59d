"""The Dash application factory."""
import logging
import os

import dash

from dashapp import shell
from dashapp.config import Config
from dashapp.services import Services

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Dash callbacks and the API take small bodies (the webhook, served before Flask, has its own cap);
# a larger one is refused from its Content-Length, unread.
MAX_REQUEST_BYTES = 1024 * 1024


def create_app(config: Config | None = None) -> dash.Dash:
    """Build the Dash app (and its Flask server) for `config` (default: the environment)."""
    config = config or Config.from_env()
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = Services.start(config)
    app = _Dash(
        __name__,
        use_pages=True,
        pages_folder=os.path.join(ROOT, "dashapp", "pages"),
        assets_folder=os.path.join(ROOT, "assets"),
        title="Build Monitor",
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    server.extensions["buildmon"] = services
    server.extensions["buildmon.dash"] = app  # what a request's code may ask of the app (`dashapp.rawhtml`)

    from dashapp import inputs, jsonerrors
    from dashapp.api import bp as api_bp
    from dashapp.api.views import share as share_bp
    from dashapp.capacity import Threads
    from dashapp.headers import init_headers
    from dashapp.observability import bp as observability_bp
    from dashapp.security import behind_proxies, init_security
    from dashapp.signin import init_signin
    from ingest import webhook
    from live import ws as live_ws
    from live.admission import Admission

    # Everything but /webhook shares WEB_THREADS - WEBHOOK_RESERVE threads (WebSockets included: /ws
    # takes its place itself, to close with a reason), so the rest are always free for /webhook, which
    # is served in front of that limit, and of Flask and Dash: it needs none of their machinery.
    threads = Threads.for_pages(config)
    services.stats.watch_threads(threads)
    server.wsgi_app = threads.limit_app(server.wsgi_app, counts_itself=("/ws",),
                                        refused=services.stats.busy_refused.inc)
    server.wsgi_app = webhook.wrap(server.wsgi_app, services)
    server.register_blueprint(api_bp)
    server.register_blueprint(share_bp)
    init_signin(server, services)
    live_ws.init_app(server, services.hub, Admission(
        threads=threads, per_client=config.live_max_per_client, origins=config.live_allowed_origins,
        refused=lambda reason: services.stats.live_refused.labels(reason=reason).inc()))
    services.watch_lag()
    server.register_blueprint(observability_bp)
    init_security(server, config)
    init_headers(app, inline_scripts=(_THEME_JS, _RENDERER_JS))
    # Outermost, so the webhook route, the limits and /ws all see the client past the trusted proxies.
    server.wsgi_app = behind_proxies(server.wsgi_app, config)
    app.layout = _layout
    shell.register_callbacks(app)
    # Dash's JSON endpoints answer errors as JSON; a callback request is checked before Dash reads it.
    jsonerrors.json_routes(server, *(app.config.routes_pathname_prefix + name for name in
                                     ("_dash-update-component", "_dash-layout", "_dash-dependencies")))
    inputs.install(app)
    if config.webhook_secret == "" and config.allow_unsigned != "loopback":
        logging.getLogger(__name__).warning("GITHUB_WEBHOOK_SECRET is not set: every delivery will be refused")
    elif config.webhook_secret == "":
        logging.getLogger(__name__).warning(
            "no GITHUB_WEBHOOK_SECRET: accepting UNSIGNED deliveries from loopback only (demo mode)"
        )
    return app


def _layout():
    return shell.layout()


# Applies the persisted dark theme before the first paint (Dash's own persistence applies it later).
# The inline scripts' texts are named by their hashes in the Content-Security-Policy (dashapp/headers.py).
_THEME_JS = """try{var v=localStorage.getItem('_dash_persistence.theme-switch.value');
if(v&&JSON.parse(v)[0]===true){document.documentElement.setAttribute('data-bs-theme','dark');}}catch(e){}"""
_THEME_SCRIPT = f"<script>{_THEME_JS}</script>"
_RENDERER_JS = "document.addEventListener('DOMContentLoaded', function () { window.renderer = new DashRenderer(); });"


class _Dash(dash.Dash):
    """Dash, with the page's first screen drawn in the HTML response itself.

    A page registered with `first_screen=` (a function of the query string returning HTML) is sent
    already drawn inside `#prerender`, before `#react-entry-point`: the browser paints it while it is
    still loading the app's scripts, and `assets/prerender.js` removes it when the live page has
    drawn the same section.  Any failure falls back to the plain page.
    """

    def interpolate_index(self, **kwargs):
        kwargs["app_entry"] = _first_screen() + kwargs.get("app_entry", "")
        # The scripts (2.7 MB) no longer hold up the parser, hence the first paint: they load in
        # parallel and run in order once the document is parsed; the renderer starts after them.
        kwargs["scripts"] = kwargs.get("scripts", "").replace("<script src=", "<script defer src=")
        kwargs["renderer"] = f'<script id="_dash-renderer" type="application/javascript">{_RENDERER_JS}</script>'
        return super().interpolate_index(**kwargs)


def _first_screen() -> str:
    import flask

    if not flask.has_request_context():
        return ""
    path = "/" + flask.request.path.lstrip("/")
    page = next((p for p in dash.page_registry.values() if p.get("path") == path and p.get("first_screen")), None)
    if page is None:
        return ""
    query = {k: (v[0] if len(v) == 1 else v) for k, v in flask.request.args.lists()}
    try:
        markup = page["first_screen"](query)
    except Exception:  # the live page still draws everything
        logging.getLogger(__name__).exception("first screen of %s failed", path)
        return ""
    return f'{_THEME_SCRIPT}<div id="prerender" class="prerender">{markup}</div>'
