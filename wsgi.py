"""WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi`."""

from app import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line naming what is wrong, never a traceback (nor a secret's value).
    raise SystemExit(f"Error: {error}") from None
