"""Fixtures: a real gunicorn (the shipped gunicorn.conf.py, three workers) on a fresh database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.net import free_port
from tests.support.schema import create_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_SECRET = "e2e-signing-key-that-is-at-least-32-bytes-long!"
WORKERS = 3
START_TIMEOUT = 60.0  # a worker boots in 15-20 s when the shared 2-core machine runs at a load of 12
STOP_TIMEOUT = 45.0  # above gunicorn.conf.py's graceful_timeout (30 s)
# The access log shows which worker served each request (access_log_pids() reads it).
ACCESS_LOG_FORMAT = 'pid=%(p)s "%(r)s" %(s)s %(b)s'
# Variables of the developer's shell that would change what is under test.
_SCRUBBED = (
    "REDIS_URL",
    "CACHE_BACKEND",
    "CACHE_DIR",
    "PORT",
    "GUNICORN_CMD_ARGS",
    "WORKER_CONNECTIONS",
    "BODY_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "RATE_LIMITS_ENABLED",
    "RATE_LIMIT_SIGN_IN_FAILURES",
    "RATE_LIMIT_AUTH_PER_ADDRESS",
    "TRUSTED_PROXY_HOPS",
)


@dataclass
class LiveServer:
    """A running gunicorn master and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        """Base URL, e.g. http://127.0.0.1:1234."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything gunicorn wrote so far (error log and access log)."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the log, for failure messages."""
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, wait for the graceful shutdown, SIGKILL the process group if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only gunicorn and its workers
            self.process.wait()


StartServer = Callable[..., LiveServer]


def _wait_until_up(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            response = requests.get(server.base + "/", headers={"Connection": "close"}, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer GET / within {START_TIMEOUT:.0f}s ({last}):\n{server.log_tail()}")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Factory: schema into the given empty database, then gunicorn on it; all stopped afterwards."""
    servers: list[LiveServer] = []

    def start(database_url: str, *, create_tables: bool = True, **extra_env: str) -> LiveServer:
        if create_tables:
            create_schema(database_url)
        index = len(servers)
        cache_dir = tmp_path / f"cache-{index}"
        cache_dir.mkdir()
        env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
        port = free_port()
        env.update(
            APP_ENV="production",
            DATABASE_URL=database_url,
            JWT_SECRET_KEY=E2E_SECRET,
            WEB_CONCURRENCY=str(WORKERS),
            GUNICORN_BIND=f"127.0.0.1:{port}",
            CACHE_DIR=str(cache_dir),
            PYTHONUNBUFFERED="1",
            **extra_env,
        )
        log_path = tmp_path / f"gunicorn-{index}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--access-logformat", ACCESS_LOG_FORMAT, "wsgi:app"],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = LiveServer(process, port, log_path)
        servers.append(server)
        _wait_until_up(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(start_server: StartServer, database_url: str) -> LiveServer:
    """gunicorn with three workers on a fresh database of the backend under test."""
    return start_server(database_url)
