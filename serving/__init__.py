"""How the service is served by gunicorn: the worker class, its HTTP hygiene and its gevent helpers.

- `python -m serving` (`serving.__main__`): the serving command, gunicorn after a check of its settings.
- `serving.worker`: the gunicorn worker class `gunicorn.conf.py` names (gevent, hardened).
- `serving.connection`: the WSGI wrapper that worker puts around the app (honest
  `Connection: close`, a deadline for reading request bodies).
- `serving.errors`: gunicorn's own errors (400, 414, 431, 501, ...) as JSON responses.
- `serving.offload`: runs blocking CPU work (password hashing) on real OS threads under gevent.

Nothing here is imported by `services/`; the app factory injects `serving.offload`.
"""
