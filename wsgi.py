"""WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi`."""

from core.factory import create_app

app = create_app()
