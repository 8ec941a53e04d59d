"""WSGI entry point for production: `gunicorn -w 1 --threads 16 dashapp.wsgi:server`."""
from dashapp import create_app

app = create_app()
server = app.server
