"""Production gunicorn settings, read from the working directory by `gunicorn wsgi:app`.

Every value can be tuned through the environment (PORT, GUNICORN_BIND, WEB_CONCURRENCY,
WORKER_CONNECTIONS, LOG_LEVEL; BODY_TIMEOUT_SECONDS is read by the worker); command-line flags
still win over this file.
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
# gevent, hardened (serving/worker.py; the measurements are in the README, "Serving model"):
# a connection costs a greenlet rather than a thread, so clients that trickle their headers or
# bodies cannot occupy the slots every other request needs, as they did with gthread's 2 x 4
# threads. Password hashing runs on a few native threads per worker (serving/offload.py).
worker_class = "serving.worker.Worker"
# Connections each worker holds at once (idle keep-alive and slow ones included); past it a
# worker stops accepting until one closes.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
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
# Database connect/read timeouts (core/database.py) are well below `timeout`, so a database
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
# Both to stdout/stderr, where containers and process managers collect them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
