"""Processes the benchmark runs: a throwaway MariaDB and gunicorn masters with the shipped config."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.accesslog import WorkerShare, worker_shares
from tests.support.gunicorn import LiveServer, start_gunicorn
from tests.support.mariadb import MariaDBServer, mariadbd_path
from tests.support.net import free_port

BENCH_SECRET = "bench-signing-key-that-is-at-least-32-bytes-long!"
WORKERS = 2
# Limits of another branch, set so their cost is measured but they never answer 429.
UNLIMITED = "1000000 per minute"
LOG_SETTLE_SECONDS = 0.2


def start_mariadb(base_dir: Path) -> MariaDBServer:
    """A throwaway MariaDB server under base_dir (the one the tests use)."""
    if mariadbd_path() is None:
        raise SystemExit("mariadbd is not installed: apt-get install -y mariadb-server")
    server = MariaDBServer(base_dir)
    server.start()
    return server


@dataclass
class Gunicorn:
    """A benchmarked gunicorn master (`gunicorn -c gunicorn.conf.py <app>`) with its own cache directory."""

    name: str
    server: LiveServer
    cache_dir: Path

    @property
    def base(self) -> str:
        """Base URL, e.g. http://127.0.0.1:1234."""
        return self.server.base

    @property
    def log_path(self) -> Path:
        """Where its error and access logs go."""
        return self.server.log_path

    def worker_pids(self) -> list[int]:
        """Pids of the master's worker processes."""
        return self.server.worker_pids()

    def worker_rss_mib(self) -> dict[int, float]:
        """VmRSS of each worker, in MiB."""
        return self.server.worker_rss_mib()

    def worker_peak_rss_mib(self) -> dict[int, float]:
        """VmHWM of each worker (the most it was ever resident), in MiB."""
        return self.server.worker_peak_rss_mib()

    def log_size(self) -> int:
        """Bytes gunicorn has logged so far (an offset for `shares_since`)."""
        return self.log_path.stat().st_size

    def shares_since(self, offset: int) -> dict[int, WorkerShare]:
        """Requests and connections per worker pid in the access log after `offset`."""
        # The last request's line can trail wrk's end by a moment.
        time.sleep(LOG_SETTLE_SECONDS)
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return worker_shares(log.read().decode(errors="replace"))

    def cache_bytes(self) -> int:
        """Bytes the filesystem listing cache holds on its (memory-backed) disk."""
        return sum(path.stat().st_size for path in self.cache_dir.rglob("*") if path.is_file())

    def stop(self) -> None:
        """Stop gunicorn gracefully and drop its cache."""
        self.server.stop()
        shutil.rmtree(self.cache_dir, ignore_errors=True)


def check_worker_class(worker_class: str) -> None:
    """Exit with a hint when the worker class needs a package that is not installed (gevent)."""
    if worker_class == "gevent" and importlib.util.find_spec("gevent") is None:
        raise SystemExit("gevent is not installed: `uv add gevent`, or run the bench with `uv run --with gevent ...`")


def start_gunicorn_server(
    name: str, app: str, work_dir: Path, *, worker_class: str | None = None, **extra_env: str
) -> Gunicorn:
    """`gunicorn -c gunicorn.conf.py <app>` with 2 workers on a free port; waits until GET / answers.

    `worker_class` replaces gunicorn.conf.py's on the command line, which wins over the file.
    The access log (JSON, as in production) names the worker and the client port of each request.
    """
    # Where the settings put the cache by default (private, on /dev/shm when there is one),
    # but one directory per server: the miss server must not read the app's listings.
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes it private
    cache_dir = Path(tempfile.mkdtemp(prefix=f"bench-cache-{name}-", dir=shm if shm.is_dir() else work_dir))
    env = {
        "APP_ENV": "production",
        "JWT_SECRET_KEY": BENCH_SECRET,
        "CACHE_DIR": str(cache_dir),
        "RATE_LIMIT_AUTH_PER_ADDRESS": UNLIMITED,
        "RATE_LIMIT_SIGN_IN_FAILURES": UNLIMITED,
        **extra_env,
    }
    server = start_gunicorn(
        app,
        port=free_port(),
        workers=WORKERS,
        log_path=work_dir / f"gunicorn-{name}.log",
        env=env,
        extra_args=("-c", "gunicorn.conf.py", *(("--worker-class", worker_class) if worker_class else ())),
    )
    return Gunicorn(name, server, cache_dir)
