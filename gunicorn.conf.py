"""Production gunicorn settings, read from the working directory by `python -m serving` (or `gunicorn wsgi:app`).

Server knobs only. Every value can be tuned through the environment or `.env` (PORT,
GUNICORN_BIND, WEB_CONCURRENCY, WORKER_CONNECTIONS, LOG_LEVEL; BODY_TIMEOUT_SECONDS is the
worker's), checked together here (config.ServerSettings) so that a bad one stops the master in
one line naming it, before it listens; command-line flags still win over this file. The app's
own settings (the cache backend among them) come from config.py, like every other entry point.
"""

from __future__ import annotations

import os

# _private names only: gunicorn takes every other module-level name for a setting (even a
# module: `config` is its -c option).
import config as _config
from observability import logs as _logs

_config.load_env_file()
try:
    _server = _config.load_server_settings()
except _config.ConfigError as _error:
    _logs.refuse_to_start(f"Error: {_error}")

# --- Socket ----------------------------------------------------------------------------
# PaaS platforms hand the port in PORT; GUNICORN_BIND replaces the whole address
# (e.g. "127.0.0.1:9000" or "unix:/run/posts.sock").
bind = _server.bind

# --- Concurrency -----------------------------------------------------------------------
workers = _server.web_concurrency
# gevent, hardened (serving/worker.py; the measurements are in docs/serving.md):
# a connection costs a greenlet rather than a thread, so clients that trickle their headers or
# bodies cannot occupy the few slots every other request needs, as they would with a few threads
# per worker. Password hashing runs on a few native threads per worker (serving/offload.py).
worker_class = "serving.worker.Worker"
# Connections each worker holds at once (idle keep-alive and slow ones included); past it a
# worker stops accepting until one closes.
worker_connections = _server.worker_connections
# preload_app stays off (the default): the app must load in each worker, after the fork,
# since database pools and cache clients are not fork-safe (and gevent patches them there).

# Workers heartbeat through a temp file; on container overlay filesystems /tmp writes can
# stall long enough to get healthy workers killed, so use memory-backed /dev/shm if present.
if os.path.isdir("/dev/shm"):  # noqa: S108 - a heartbeat file, not data
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# gunicorn >= 25.1 opens a runtime-control socket (resize workers, shut down) at one fixed
# per-user path, $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl. Nothing here
# uses it; off, it cannot be shared by two instances on one host (tests, dev server), and
# the container's user needs no writable home for it. Signals still control the master.
control_socket_disable = True

# --- Timeouts --------------------------------------------------------------------------
# Database connect/read timeouts (repositories/database.py) are well below `timeout`, so a database
# outage answers 503 instead of gunicorn killing the worker mid-request.
timeout = 30
# Time for in-flight requests to finish on SIGTERM; keep the orchestrator's stop grace
# period (docker-compose.yml stop_grace_period) above it.
graceful_timeout = 30
# Also the bound on receiving a request's headers, the first request's included: a connection
# that has not delivered complete headers this many seconds after it opened (or after its
# previous response) is closed. The body has BODY_TIMEOUT_SECONDS more (serving/worker.py).
keepalive = 5

# --- Logging ---------------------------------------------------------------------------
# One stream (stderr), one format: this logger class sends gunicorn's own lines and its access
# log through the app's log handler (observability.logs): one JSON object per line in
# production, readable lines in development. accesslog "-" turns the access log on; its
# fields are fixed (access_log_format is not used).
logger_class = "observability.gunicorn_logger.GunicornLogger"
accesslog = "-"
errorlog = "-"
loglevel = _server.log_level.lower()


# --- Hooks (observability.gunicorn_hooks and .tracing, serving.memory) ----------------
# Imported when called: the master has put the checkout on sys.path by then.
def on_starting(server: object) -> None:
    """Master, before forking: refuse bad settings in one line; prepare the metrics directory."""
    from observability import gunicorn_hooks

    gunicorn_hooks.on_starting(server)


def post_fork(server: object, worker: object) -> None:
    """In each new worker: large buffers are returned to the system when freed (serving/memory.py)."""
    from serving.memory import fix_mmap_threshold

    fix_mmap_threshold()


def post_worker_init(worker: object) -> None:
    """In each worker, the app loaded: the collector no longer walks it (serving/memory.py)."""
    from serving.memory import freeze_loaded_objects

    freeze_loaded_objects()


def when_ready(server: object) -> None:
    """Master, listening: serve every worker's metrics on METRICS_PORT (when set)."""
    from observability import gunicorn_hooks

    gunicorn_hooks.when_ready(server)


def child_exit(server: object, worker: object) -> None:
    """Master, a worker exited: drop its live gauges."""
    from observability import gunicorn_hooks

    gunicorn_hooks.child_exit(server, worker)


def on_exit(server: object) -> None:
    """Master, exiting: remove the metrics directory it made."""
    from observability import gunicorn_hooks

    gunicorn_hooks.on_exit(server)


def worker_exit(server: object, worker: object) -> None:
    """In each worker, as it exits (stop, HUP reload): send the spans it still holds (observability.tracing)."""
    from observability.tracing import shutdown_tracing

    shutdown_tracing()
