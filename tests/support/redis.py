"""Throwaway Redis server for tests, run as a child process.

Tests use :class:`RedisServer` to get a real Redis on ``127.0.0.1:<free port>``
that keeps nothing on disk, and to stop and restart it (same port) to simulate outages.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.support.net import free_port
from tests.support.processes import stop_process

__all__ = ["RedisServer", "redis_server_path"]

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 15.0


def redis_server_path() -> str | None:
    """Path of the redis-server binary; None if it is not installed."""
    return shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/local/bin")


class RedisServer:
    """A Redis server, its log in ``base_dir``; restartable on the same port.

    By default it keeps nothing on disk, so a restart empties it. ``persistent=True`` keeps an
    append-only file in ``base_dir`` (fsync on every write), so a restart brings the data back,
    as a production Redis with persistence does.
    """

    def __init__(self, base_dir: Path, *, persistent: bool = False) -> None:
        """Prepare (but do not start) a server whose log (and data, if persistent) live under ``base_dir``."""
        binary = redis_server_path()
        if binary is None:
            raise RuntimeError("redis-server not found (is redis-server installed?)")
        self._binary = binary
        base_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = base_dir / "redis.log"
        self.port = free_port()
        self._persistent = persistent
        self._base_dir = base_dir
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The REDIS_URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        cmd = [
            self._binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self._persistent:
            cmd += ["--dir", str(self._base_dir), "--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no"]
        # Own session: Ctrl-C in pytest must not reach the server first.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {_START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL if it hangs); nothing if it is not running."""
        proc = self._proc
        if proc is None:
            return
        stop_process(proc, _STOP_TIMEOUT)
        self._proc = None

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections, but nothing answers (a hung server)."""
        assert self._proc is not None and self.running
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def flush(self) -> None:
        """Empty every database, so tests do not see each other's keys."""
        self.client().flushall()

    def client(self) -> redis.Redis:
        """A client with short timeouts."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
