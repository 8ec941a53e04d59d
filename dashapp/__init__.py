"""The Dash application factory."""
import logging
import os

import dash

from dashapp import shell
from dashapp.config import Config
from dashapp.services import Services

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_DELIVERY_BYTES = 25 * 1024 * 1024  # GitHub never sends more


def create_app(config: Config | None = None) -> dash.Dash:
    """Build the Dash app (and its Flask server) for `config` (default: the environment)."""
    config = config or Config.from_env()
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = Services.start(config)
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=os.path.join(ROOT, "dashapp", "pages"),
        assets_folder=os.path.join(ROOT, "assets"),
        title="Build Monitor",
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_DELIVERY_BYTES
    server.extensions["buildmon"] = services

    from dashapp.observability import bp as observability_bp
    from dashapp.security import init_security
    from ingest.webhook import bp as webhook_bp

    server.register_blueprint(webhook_bp)
    from dashapp.api import bp as api_bp
    from live import ws as live_ws

    server.register_blueprint(api_bp)
    live_ws.init_app(server, services.hub)
    server.register_blueprint(observability_bp)
    init_security(server, config)
    app.layout = _layout
    shell.register_callbacks(app)
    if config.webhook_secret == "" and config.allow_unsigned != "loopback":
        logging.getLogger(__name__).warning("GITHUB_WEBHOOK_SECRET is not set: every delivery will be refused")
    elif config.webhook_secret == "":
        logging.getLogger(__name__).warning(
            "no GITHUB_WEBHOOK_SECRET: accepting UNSIGNED deliveries from loopback only (demo mode)"
        )
    return app


def _layout():
    return shell.layout()
