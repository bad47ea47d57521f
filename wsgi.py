"""WSGI entry point: `python -m serving` (gunicorn) and `flask --app wsgi`; reads `.env` like every entry point."""

from app import create_app
from config import ConfigError, load_env_file

load_env_file()
try:
    app = create_app()
except ConfigError as error:
    # One line naming what is wrong, never a traceback (nor a secret's value).
    raise SystemExit(f"Error: {error}") from None
