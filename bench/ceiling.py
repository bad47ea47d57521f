"""The ceiling: a bare Flask view returning a constant small JSON, served by the same gunicorn config.

`gunicorn -c gunicorn.conf.py bench.ceiling:app` — whatever the service adds on top of this
(routing through flask-smorest, auth, cache, database, serialization) is what the ratios measure.
"""

from __future__ import annotations

from flask import Flask, Response

BODY = b'{"message": "ceiling"}'

app = Flask(__name__)


@app.get("/")
def constant() -> Response:
    """A constant small JSON body."""
    return Response(BODY, mimetype="application/json")
