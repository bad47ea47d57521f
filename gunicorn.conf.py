"""Production gunicorn settings, read from the working directory by `gunicorn wsgi:app`.

Every value can be tuned through the environment (PORT, GUNICORN_BIND, WEB_CONCURRENCY,
GUNICORN_THREADS, LOG_LEVEL); command-line flags still win over this file.
"""

from __future__ import annotations

import hashlib
import os
import stat

# --- Listing-cache coherence across workers --------------------------------------------
# The per-user `get_my_posts` cache must give read-your-writes (CONTRACT.md, "Caching").
# With several workers, each holding its own in-process SimpleCache, a write handled by
# worker A would leave worker B serving its stale listing for up to 300 seconds.
# So unless the operator chose otherwise, use a backend every worker shares:
#   - REDIS_URL set       -> the app picks `redis` by itself (shared by every host).
#   - CACHE_BACKEND set   -> respected as is.
#   - neither             -> `filesystem`: one cache directory shared by all workers of this
#                            host (CACHE_DIR; default a private directory on memory-backed
#                            /dev/shm when there is one, else instance/cache).
# This file is imported in the master before workers fork and before the app is loaded
# (preload_app is off), so every worker inherits the variable and builds its app with it.


def _private_shm_cache_dir() -> str | None:
    """A directory on /dev/shm only this user can write, one per checkout; None when unusable.

    Every add-post and delete rewrites a version file, and a rename on a busy disk costs
    several times what it costs in memory. The cache holds pickles, so a directory another
    local user could have created (or a symlink) is refused rather than read.
    """
    if not os.path.isdir("/dev/shm"):  # noqa: S108 - checked to be private below
        return None
    checkout = hashlib.sha256(os.getcwd().encode()).hexdigest()[:12]
    path = f"/dev/shm/posts-api-cache-{os.geteuid()}-{checkout}"  # noqa: S108
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        return None
    return path


if not os.environ.get("REDIS_URL") and not os.environ.get("CACHE_BACKEND"):
    os.environ["CACHE_BACKEND"] = "filesystem"
    if not os.environ.get("CACHE_DIR"):
        shm_dir = _private_shm_cache_dir()
        if shm_dir:
            os.environ["CACHE_DIR"] = shm_dir

# --- Socket ----------------------------------------------------------------------------
# PaaS platforms hand the port in PORT; GUNICORN_BIND replaces the whole address
# (e.g. "127.0.0.1:9000" or "unix:/run/posts.sock").
bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"

# --- Concurrency -----------------------------------------------------------------------
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads rather than more processes: argon2 password hashing releases the GIL, so one
# sign-in hashing for a few hundred milliseconds does not block the worker's other requests.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# preload_app stays off (the default): the app must load in each worker, after the fork,
# since database pools and cache clients are not fork-safe.

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
# Database connect/read timeouts (core/database.py) are well below `timeout`, so a database
# outage answers 503 instead of gunicorn killing the worker mid-request.
timeout = 30
# Time for in-flight requests to finish on SIGTERM; keep the orchestrator's stop grace
# period (docker-compose.yml stop_grace_period) above it.
graceful_timeout = 30
keepalive = 5

# --- Logging ---------------------------------------------------------------------------
# One stream (stderr), one format: this logger class sends gunicorn's own lines and its access
# log through the app's log handler (observability.logs): one JSON object per line in
# production, readable lines in development. accesslog "-" turns the access log on; its
# fields are fixed (access_log_format is not used).
logger_class = "observability.gunicorn_logger.GunicornLogger"
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


# --- Hooks (observability.gunicorn_hooks) -------------------------------------------------
# Imported when called: the master has put the checkout on sys.path by then.
def on_starting(server: object) -> None:
    """Master, before forking: refuse bad settings in one line; prepare the metrics directory."""
    from observability import gunicorn_hooks

    gunicorn_hooks.on_starting(server)


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
