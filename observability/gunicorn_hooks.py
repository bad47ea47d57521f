"""gunicorn server hooks (gunicorn.conf.py calls them): settings checked once, metrics across workers.

All of these run in the gunicorn master:

- `on_starting`: validate the settings once, before any worker is forked, so a bad setting is
  reported in one line instead of once per worker (settings that clash with the worker count
  too); with METRICS_PORT set, give the workers a
  fresh PROMETHEUS_MULTIPROC_DIR, where each one writes its counters (prometheus_client's
  multiprocess mode).
- `when_ready`: serve every worker's metrics, summed, on METRICS_PORT.
- `child_exit`: drop a dead worker's live gauges (connections in use).
- `on_exit`: remove the directory `on_starting` made.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
from typing import Any, NoReturn

from config import ConfigError, Settings, load_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHM = "/dev/shm"  # noqa: S108 - mkdtemp makes the directory private

_settings: Settings | None = None
_created_dir: str | None = None


def on_starting(server: Any) -> None:
    """Refuse to start on bad settings (one log line); prepare the metrics directory if enabled."""
    global _settings, _created_dir
    try:
        _settings = load_settings()
    except ConfigError as exc:
        _refuse_to_start(server, f"Error: {exc}")
    if _settings.cache_backend == "simple" and server.cfg.workers > 1:
        _refuse_to_start(
            server,
            "Error: CACHE_BACKEND=simple is per process; with several workers a write or sign-out on one "
            "is unseen by the others: use filesystem or REDIS_URL, or WEB_CONCURRENCY=1",
        )
    if _settings.metrics_port is None:
        return
    operator_dir = os.environ.get(MULTIPROC_ENV)
    if operator_dir:
        # prometheus_client's rule: the directory must not keep a previous run's files.
        for path in glob.glob(os.path.join(operator_dir, "*.db")):
            os.remove(path)
        return
    # Memory-backed when possible: every counted request writes to these files.
    _created_dir = tempfile.mkdtemp(prefix="posts-api-metrics-", dir=SHM if os.path.isdir(SHM) else None)
    # Set before any worker is forked (and before prometheus_client is imported anywhere),
    # so every worker writes its values to files in this directory.
    os.environ[MULTIPROC_ENV] = _created_dir


def when_ready(server: Any) -> None:
    """Serve the sum of every worker's metrics on METRICS_PORT, from a thread of the master."""
    if _settings is None or _settings.metrics_port is None:
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]
    try:
        start_http_server(_settings.metrics_port, addr=_settings.metrics_addr, registry=registry)
    except OSError as exc:
        _refuse_to_start(server, f"cannot serve metrics on {_settings.metrics_addr}:{_settings.metrics_port}: {exc}")
    server.log.info("Serving metrics at http://%s:%s/metrics", _settings.metrics_addr, _settings.metrics_port)


def child_exit(_server: Any, worker: Any) -> None:
    """A worker is gone: its gauges no longer count (its counters do, as they should)."""
    if _settings is None or _settings.metrics_port is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(_server: Any) -> None:
    """Remove the metrics directory this master made."""
    if _created_dir is not None:
        shutil.rmtree(_created_dir, ignore_errors=True)


def _refuse_to_start(server: Any, message: str) -> NoReturn:
    server.log.error("%s", message)
    if server.pidfile is not None:
        server.pidfile.unlink()
    on_exit(server)
    sys.exit(1)
