"""WSGI entry point for production: `gunicorn -w 1 --threads 256 dashapp.wsgi:server` (see README)."""
from dashapp import create_app

app = create_app()
server = app.server
