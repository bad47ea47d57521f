"""Processes the benchmark runs: a throwaway MariaDB and gunicorn masters with the shipped config."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.mariadb import MariaDBServer, mariadbd_path
from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_SECRET = "bench-signing-key-that-is-at-least-32-bytes-long!"
WORKERS = 2
START_TIMEOUT = 60.0
STOP_TIMEOUT = 45.0
# Limits of another branch, set so their cost is measured but they never answer 429.
UNLIMITED = "1000000 per minute"
# Variables of the caller's shell that would change what is measured.
_SCRUBBED = (
    "REDIS_URL",
    "CACHE_BACKEND",
    "CACHE_DIR",
    "PORT",
    "GUNICORN_CMD_ARGS",
    "WORKER_CONNECTIONS",
    "BODY_TIMEOUT_SECONDS",
    "LOG_LEVEL",
)


def start_mariadb(base_dir: Path) -> MariaDBServer:
    """A throwaway MariaDB server under base_dir (the one the tests use)."""
    if mariadbd_path() is None:
        raise SystemExit("mariadbd is not installed: apt-get install -y mariadb-server")
    server = MariaDBServer(base_dir)
    server.start()
    return server


@dataclass
class Gunicorn:
    """A running gunicorn master (`gunicorn -c gunicorn.conf.py <app>`) and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    cache_dir: Path

    @property
    def base(self) -> str:
        """Base URL, e.g. http://127.0.0.1:1234."""
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """Pids of the master's worker processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def worker_rss_mib(self) -> dict[int, float]:
        """VmRSS of each worker, in MiB."""
        return {pid: vm_rss_kib(pid) / 1024 for pid in self.worker_pids()}

    def cache_bytes(self) -> int:
        """Bytes the filesystem listing cache holds on its (memory-backed) disk."""
        return sum(path.stat().st_size for path in self.cache_dir.rglob("*") if path.is_file())

    def stop(self) -> None:
        """SIGTERM and wait for the graceful shutdown (SIGKILL its process group if it hangs); drop its cache."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only gunicorn and its workers
                self.process.wait()
        shutil.rmtree(self.cache_dir, ignore_errors=True)


def vm_rss_kib(pid: int) -> int:
    """The VmRSS line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_gunicorn(name: str, app: str, work_dir: Path, **extra_env: str) -> Gunicorn:
    """`gunicorn -c gunicorn.conf.py <app>` with 2 workers on a free port; waits until GET / answers."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    # Where gunicorn.conf.py puts the cache by default (private, on /dev/shm when there is
    # one), but one directory per server: the miss server must not read the app's listings.
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes it private
    cache_dir = Path(tempfile.mkdtemp(prefix=f"bench-cache-{name}-", dir=shm if shm.is_dir() else work_dir))
    env.update(
        APP_ENV="production",
        JWT_SECRET_KEY=BENCH_SECRET,
        WEB_CONCURRENCY=str(WORKERS),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        CACHE_DIR=str(cache_dir),
        RATE_LIMIT_AUTH_PER_ADDRESS=UNLIMITED,
        RATE_LIMIT_SIGN_IN_FAILURES=UNLIMITED,
        **extra_env,
    )
    log_path = work_dir / f"gunicorn-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(name, process, port, log_path, cache_dir)
    _wait_until_up(server)
    return server


def _wait_until_up(server: Gunicorn) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"gunicorn {server.name} exited with {server.process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(server.base + "/", timeout=2) as response:  # noqa: S310 - our own server
                if response.status == 200 and len(server.worker_pids()) == WORKERS:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn {server.name} did not answer within {START_TIMEOUT:.0f}s")
