"""Throwaway MariaDB server for tests, run as a child process.

Pytest fixtures use :class:`MariaDBServer` to get a real server with normal
authentication on ``127.0.0.1:<free port>``, and to stop, kill and restart it
(on the same port and datadir) to simulate outages.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pymysql  # type: ignore[import-untyped, unused-ignore]  # no bundled stubs; types-PyMySQL is optional

from tests.support.net import free_port
from tests.support.processes import stop_process

__all__ = ["MariaDBServer", "mariadbd_path"]

_SEARCH_DIRS = ("/usr/sbin", "/usr/libexec", "/usr/local/sbin", "/usr/local/libexec")
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
# AF_UNIX paths are limited to 108 bytes including the NUL terminator.
_MAX_SOCKET_PATH = 100
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# ER_ACCESS_DENIED_ERROR, ER_HOST_NOT_PRIVILEGED: server is up, login is not.
_LOGIN_REFUSED = frozenset({1045, 1130})


def mariadbd_path() -> str | None:
    """Path of the mariadbd (or mysqld) binary, searching PATH and /usr/sbin, /usr/libexec; None if not installed."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SEARCH_DIRS])
    for name in ("mariadbd", "mysqld"):
        found = shutil.which(name, path=search_path)
        if found:
            return found
    return None


def _install_db_path(server_binary: str) -> str | None:
    """Path of mariadb-install-db (or mysql_install_db), preferring the server's own install."""
    server_dir = pathlib.Path(server_binary).resolve().parent
    # The installer lives in bin/ next to sbin/ on most layouts.
    extra_dirs = [str(server_dir), str(server_dir.parent / "bin"), str(server_dir.parent / "scripts")]
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs, *_SEARCH_DIRS])
    for name in ("mariadb-install-db", "mysql_install_db"):
        found = shutil.which(name, path=search_path)
        if found:
            return found
    return None


class MariaDBServer:
    """A throwaway MariaDB server in a temp dir, listening on 127.0.0.1:<free port>.

    All files (datadir, socket, pid file, log) live in a fresh directory
    created inside ``base_dir``; :meth:`close` removes that directory only.
    Root logs in over TCP with an empty password.
    """

    def __init__(self, base_dir: pathlib.Path) -> None:
        """Prepare (but do not start) a server whose files live under ``base_dir``."""
        binary = mariadbd_path()
        if binary is None:
            raise RuntimeError("mariadbd/mysqld not found (is mariadb-server installed?)")
        self._binary = binary
        base_dir.mkdir(parents=True, exist_ok=True)
        # A private subdirectory, so close() never deletes anything the caller owns.
        self.root_dir = pathlib.Path(tempfile.mkdtemp(prefix="mariadb-", dir=base_dir))
        self.data_dir = self.root_dir / "data"
        self.tmp_dir = self.root_dir / "tmp"
        self.pid_file = self.root_dir / "mariadbd.pid"
        self.log_path = self.root_dir / "mariadbd.log"
        self._socket_dir: pathlib.Path | None = None
        socket_path = self.root_dir / "mariadbd.sock"
        if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            # pytest tmp paths can be long; fall back to a short private dir in /tmp.
            self._socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="mdb-"))
            socket_path = self._socket_dir / "mariadbd.sock"
        self.socket_path = socket_path
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._initialised = False
        self._closed = False

    @property
    def port(self) -> int:
        """TCP port the server listens on; fixed at the first start()."""
        if self._port is None:
            raise RuntimeError("server has not been started yet")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server process is currently alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (initialising the datadir on first use) and wait until it accepts logins.

        Later calls restart it on the same port and datadir, which is how tests
        simulate recovery after stop() or kill().
        """
        if self._closed:
            raise RuntimeError("server has been closed")
        if self.running:
            return
        if not self._initialised:
            self._initialise()
        if self._port is not None:
            self._launch(self._port)
            return
        # The port found free may be taken before mariadbd binds it; retry only
        # on the first start, since restarts must keep the port.
        last_error: RuntimeError | None = None
        for _ in range(3):
            port = free_port()
            try:
                self._launch(port)
            except RuntimeError as exc:
                last_error = exc
                if "already in use" not in str(exc):
                    raise
                continue
            self._port = port
            return
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """Stop the server cleanly (SIGTERM, then wait); does nothing if it is not running."""
        proc = self._proc
        if proc is None:
            return
        stop_process(proc, _STOP_TIMEOUT)
        self._proc = None

    def kill(self) -> None:
        """Kill the server with SIGKILL (hard outage); does nothing if it is not running."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def create_database(self, name: str) -> str:
        """Create database ``name`` (utf8mb4 / utf8mb4_unicode_ci) if missing; return its SQLAlchemy URL."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid database name: {name!r}")
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}?charset=utf8mb4"

    def close(self) -> None:
        """Stop the server and remove its temp dir; idempotent."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        shutil.rmtree(self.root_dir, ignore_errors=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of the server/installer log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> MariaDBServer:
        """Start the server and return it."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the server."""
        self.close()

    # -- internals ---------------------------------------------------------

    def _user_args(self) -> list[str]:
        # mariadbd refuses to run as root unless told to explicitly.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _common_args(self) -> list[str]:
        # --no-defaults must come first; it keeps the host's /etc/mysql config
        # (system socket path, plugin providers, ...) out of the test server.
        return [
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--tmpdir={self.tmp_dir}",
            *self._user_args(),
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=2",
            # Containers often block io_uring/libaio; simulated AIO always works.
            "--innodb-use-native-aio=0",
            "--skip-innodb-doublewrite",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]

    def _initialise(self) -> None:
        installer = _install_db_path(self._binary)
        if installer is None:
            raise RuntimeError("mariadb-install-db/mysql_install_db not found")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            installer,
            *self._common_args(),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            # --force skips the hostname DNS check, which fails in sandboxes.
            "--force",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(cmd)}\n".encode())
            log.flush()
            result = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                check=False,
                timeout=120,
            )
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed (exit {result.returncode}):\n{self.log_tail()}")
        self._initialised = True

    def _launch(self, port: int) -> None:
        cmd = [
            self._binary,
            *self._common_args(),
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket_path}",
            f"--pid-file={self.pid_file}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--max-connections=300",
            "--max-allowed-packet=64M",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(cmd)}\n".encode())
            log.flush()
            # Own session: Ctrl-C in pytest must not SIGINT the server mid-write.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(port)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        last_error: Exception | None = None
        repaired = False
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise RuntimeError(f"mariadbd exited (code {code}) during startup:\n{self.log_tail()}")
            try:
                conn = self._connect(port=port, timeout=2)
            except pymysql.err.OperationalError as exc:
                last_error = exc
                code = exc.args[0] if exc.args else None
                if code in _LOGIN_REFUSED:
                    # The server is up but refuses root@127.0.0.1: repair once
                    # via the socket, then give up rather than spin until timeout.
                    if repaired:
                        raise RuntimeError(
                            f"root login over TCP refused after repair: {exc}\n{self.log_tail()}"
                        ) from exc
                    self._grant_tcp_root()
                    repaired = True
                    continue
                time.sleep(0.05)
                continue
            conn.close()
            return
        raise RuntimeError(
            f"mariadbd did not accept connections on 127.0.0.1:{port} within "
            f"{_START_TIMEOUT:.0f}s (last error: {last_error}):\n{self.log_tail()}"
        )

    def _grant_tcp_root(self) -> None:
        # Over the socket root@localhost has an empty password after
        # --auth-root-authentication-method=normal.
        conn = pymysql.connect(unix_socket=str(self.socket_path), user="root", password="", connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''")
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        finally:
            conn.close()

    def _connect(
        self, port: int | None = None, timeout: int = 10
    ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port if port is None else port,
            user="root",
            password="",
            charset="utf8mb4",
            connect_timeout=timeout,
            # Without these a listener that never sends a handshake (e.g. a
            # foreign process on the port) would block forever.
            read_timeout=timeout,
            write_timeout=timeout,
            autocommit=True,
        )
