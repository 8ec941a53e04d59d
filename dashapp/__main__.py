"""`python -m dashapp`: serve with the development server (threads, WebSockets)."""
from dashapp import create_app
from dashapp.config import Config


def main() -> None:
    config = Config.from_env()
    app = create_app(config)
    app.run(host=config.host, port=config.port, debug=False, threaded=True)


if __name__ == "__main__":
    main()
