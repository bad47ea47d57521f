"""The one gunicorn launcher of the tests and the benchmark: the shipped gunicorn.conf.py, a throwaway port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 45.0  # above gunicorn.conf.py's graceful_timeout (30 s)
# Variables of the caller's shell that would change what is under test.
SCRUBBED = (
    "REDIS_URL",
    "CACHE_BACKEND",
    "CACHE_DIR",
    "PORT",
    "GUNICORN_CMD_ARGS",
    "GUNICORN_THREADS",
    "WORKER_CONNECTIONS",
    "BODY_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "RATE_LIMITS_ENABLED",
    "RATE_LIMIT_SIGN_IN_FAILURES",
    "RATE_LIMIT_AUTH_PER_ADDRESS",
    "RATE_LIMIT_DEVICE_SIGN_IN_FAILURES",
    "DEVICE_COOKIE_DAYS",
    "TRUSTED_PROXY_HOPS",
    "LOG_FORMAT",
    "METRICS_PORT",
    "METRICS_ADDR",
    "PROMETHEUS_MULTIPROC_DIR",
)
# Likewise every OpenTelemetry setting (OTEL_EXPORTER_OTLP_ENDPOINT, ...): a test traces only when it says so.
SCRUBBED_PREFIX = "OTEL_"


@dataclass
class LiveServer:
    """A running gunicorn master, the port it listens on and the file its output goes to."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        """Base URL, e.g. http://127.0.0.1:1234."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Every complete line gunicorn wrote so far (error log and access log).

        A line still being written (the server is live) is left out, so each line read is whole.
        """
        text = self.log_path.read_text(errors="replace")
        return text if text.endswith("\n") or self.process.poll() is not None else text[: text.rfind("\n") + 1]

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the log, for failure messages."""
        return "\n".join(self.log().splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """Pids of the master's worker processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def worker_rss_mib(self) -> dict[int, float]:
        """VmRSS of each worker, in MiB."""
        return {pid: proc_status_kib(pid, "VmRSS") / 1024 for pid in self.worker_pids()}

    def worker_peak_rss_mib(self) -> dict[int, float]:
        """VmHWM of each worker (the most it was ever resident), in MiB."""
        return {pid: proc_status_kib(pid, "VmHWM") / 1024 for pid in self.worker_pids()}

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


def proc_status_kib(pid: int, field: str) -> int:
    """A KiB line of /proc/<pid>/status, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def start_gunicorn(
    app: str,
    *,
    port: int,
    workers: int,
    log_path: Path,
    env: Mapping[str, str],
    extra_args: Sequence[str] = (),
) -> LiveServer:
    """`gunicorn [extra_args] <app>` from the repository root with its gunicorn.conf.py; waits until GET / answers.

    The caller's environment is kept except SCRUBBED and OTEL_*; `env` adds to it. Returns once every
    worker has booted and one of them answered.
    """
    clean = {
        key: value for key, value in os.environ.items() if key not in SCRUBBED and not key.startswith(SCRUBBED_PREFIX)
    }
    full_env = {
        **clean,
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *extra_args, app],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(process, port, log_path)
    try:
        _wait_until_up(server, workers)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_up(server: LiveServer, workers: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            request = urllib.request.Request(server.base + "/", headers={"Connection": "close"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200 and len(server.worker_pids()) == workers:
                    return
                last = f"{response.status}, {len(server.worker_pids())} of {workers} workers"
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer GET / within {START_TIMEOUT:.0f}s ({last}):\n{server.log_tail()}")
