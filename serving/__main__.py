"""`python -m serving [gunicorn options]`: serve the API as `gunicorn wsgi:app` would, once its settings are checked.

gunicorn reads WEB_CONCURRENCY as it is imported (`int(os.environ.get("WEB_CONCURRENCY", 1))`
in gunicorn/config.py), before any file of this service runs, so `WEB_CONCURRENCY=abc gunicorn
wsgi:app` ends in a traceback quoting the value. This reads `.env` like every entry point
(config.load_env_file), checks the server's knobs (config.ServerSettings), refuses a bad one
in one line naming it (JSON in production), and only then hands over to gunicorn's own
command-line runner with the options given plus `wsgi:app`; gunicorn.conf.py does the rest.
"""

from __future__ import annotations

import sys

from config import ConfigError, load_env_file, load_server_settings
from observability.logs import refuse_to_start

APP = "wsgi:app"


def main(options: list[str]) -> None:
    """Check the server's settings, then run gunicorn with `options` and the app."""
    load_env_file()
    try:
        load_server_settings()
    except ConfigError as error:
        refuse_to_start(f"Error: {error}")
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", *options, APP]
    run(prog="python -m serving")


if __name__ == "__main__":
    main(sys.argv[1:])
