"""What every bench run needs: a throwaway MariaDB, gunicorn with the shipped config, wrk, and a contract client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql  # type: ignore[import-untyped, unused-ignore]  # no bundled stubs

from tests.support.gunicorn import LiveServer, start_gunicorn
from tests.support.mariadb import MariaDBServer, mariadbd_path
from tests.support.net import free_port

BENCH_SECRET = "bench-signing-key-that-is-at-least-32-bytes-long!"
PASSWORD = "bench-password-1"
WORKERS = 2
# Rate limits set high enough that their cost is measured but they never answer 429.
UNLIMITED = "1000000 per minute"
LUA_DIR = Path(__file__).resolve().parent / "lua"
RESULT_MARKER = "BENCH_RESULT "
HTTP_TIMEOUT = 60
API = "/api/v1"


# --- servers ---------------------------------------------------------------------------


def start_mariadb(base_dir: Path) -> MariaDBServer:
    """A throwaway MariaDB server under base_dir (the one the tests use)."""
    if mariadbd_path() is None:
        raise SystemExit("mariadbd is not installed: apt-get install -y mariadb-server")
    server = MariaDBServer(base_dir)
    server.start()
    return server


def server_connection(server_url: str) -> Any:
    """An autocommit PyMySQL connection to the MariaDB server at `server_url` (mysql+pymysql://user@host:port)."""
    parts = urllib.parse.urlsplit(server_url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or "root"),
        password=urllib.parse.unquote(parts.password or ""),
        autocommit=True,
    )


def database_url(server_url: str, name: str) -> str:
    """The SQLAlchemy URL of database `name` on the server at `server_url`."""
    return f"{server_url.rstrip('/')}/{name}?charset=utf8mb4"


def _create_database(server_url: str, name: str, *, drop: bool) -> str:
    connection = server_connection(server_url)
    try:
        with connection.cursor() as cursor:
            if drop:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        connection.close()
    return database_url(server_url, name)


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database `name` on the MariaDB at `server_url` (mysql+pymysql://user@host:port); its URL."""
    return _create_database(server_url, name, drop=True)


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the MariaDB at `server_url` unless it exists (its data kept); its URL."""
    return _create_database(server_url, name, drop=False)


@dataclass
class Gunicorn:
    """A gunicorn master started with the shipped gunicorn.conf.py, and its private cache directory."""

    name: str
    server: LiveServer
    cache_dir: Path

    @property
    def base(self) -> str:
        """Base URL, e.g. http://127.0.0.1:1234."""
        return self.server.base

    @property
    def port(self) -> int:
        """The port it listens on (127.0.0.1)."""
        return self.server.port

    def peak_rss_mib(self) -> float:
        """The largest VmHWM (the most ever resident) of its workers, in MiB."""
        return max(self.server.worker_peak_rss_mib().values(), default=0.0)

    def stop(self) -> None:
        """Stop gunicorn gracefully and drop its cache."""
        self.server.stop()
        shutil.rmtree(self.cache_dir, ignore_errors=True)


def start_server(
    name: str, app: str, work_dir: Path, env: dict[str, str], *, workers: int = WORKERS, gunicorn_args: str = ""
) -> Gunicorn:
    """`gunicorn -c gunicorn.conf.py [gunicorn_args] <app>` in production shape on a free port; waits until it answers.

    Each server gets its own cache directory where the settings would put it (memory-backed
    /dev/shm when there is one), so two servers never share listings.
    """
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes it private
    cache_dir = Path(tempfile.mkdtemp(prefix=f"bench-cache-{name}-", dir=shm if shm.is_dir() else work_dir))
    full_env = {
        "APP_ENV": "production",
        "JWT_SECRET_KEY": BENCH_SECRET,
        "CACHE_DIR": str(cache_dir),
        "RATE_LIMIT_AUTH_PER_ADDRESS": UNLIMITED,
        "RATE_LIMIT_SIGN_IN_FAILURES": UNLIMITED,
        "LOG_LEVEL": "warning",
        # The bench's own OTEL_* settings reach the servers (start_gunicorn drops the caller's),
        # so the cost of tracing can be measured (docs/operations.md, "Traces").
        **{key: value for key, value in os.environ.items() if key.startswith("OTEL_")},
        **env,
    }
    server = start_gunicorn(
        app,
        port=free_port(),
        workers=workers,
        log_path=work_dir / f"gunicorn-{name}.log",
        env=full_env,
        extra_args=("-c", "gunicorn.conf.py", *gunicorn_args.split()),
    )
    return Gunicorn(name, server, cache_dir)


# --- wrk -------------------------------------------------------------------------------


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        """Answers of 400 and above plus socket errors: any is one too many."""
        return self.non_2xx + self.socket_errors


def parse_result(output: str) -> WrkResult:
    """The WrkResult in wrk's stdout (the line report.lua writes); WrkError when there is none."""
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            data = json.loads(line[len(RESULT_MARKER) :])
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                non_2xx=int(data["non_2xx"]),
                socket_errors=int(data["socket_errors"]),
            )
    raise WrkError(f"no {RESULT_MARKER.strip()} line in wrk output:\n{output[-2000:]}")


def wrk_path() -> str:
    """Path of wrk, or exit with the command that installs it."""
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    return found


def script_text(script: str) -> str:
    """The workload script with the shared set-up before it and the result reporter after it."""
    parts = [LUA_DIR / "common.lua", LUA_DIR / f"{script}.lua", LUA_DIR / "report.lua"]
    return "\n".join(part.read_text() for part in parts)


def run_wrk(url: str, script: str, args: list[str], *, duration_s: float, connections: int, threads: int) -> WrkResult:
    """Run wrk once against `url` with `script` (a name under lua/) and its arguments."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script_text(script))
        script_path = handle.name
    command = [
        wrk_path(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration_s))}s",
        "--timeout=10s",
        f"--script={script_path}",
        url,
        "--",
        *args,
    ]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=duration_s + 60)
    finally:
        os.unlink(script_path)
    if completed.returncode != 0:
        raise WrkError(f"wrk exited with {completed.returncode}: {completed.stderr[-2000:]}")
    return parse_result(completed.stdout)


# --- the HTTP contract (docs/api.md), as any server speaking it answers -----------------


def call(base: str, method: str, path: str, *, token: str = "", json_body: Any = None, form: Any = None) -> Any:
    """One request on a fresh connection; the decoded JSON of a 2xx answer (HTTPError otherwise)."""
    headers = {"Connection": "close"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if json_body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(json_body).encode()
    elif form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(base + API + path, data=data, headers=headers, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 - a server under test
        return json.loads(response.read() or b"null")


@dataclass(frozen=True)
class Account:
    """An account on a server under test: its id, email and an access token."""

    id: str
    email: str
    token: str


def new_account(base: str, role: str) -> Account:
    """Sign up through the API, then sign in (the original's sign-up answers no token)."""
    email = f"{role}-{uuid.uuid4().hex[:10]}@bench.example.com"
    body = {"email_address": email, "password": PASSWORD, "confirm_password": PASSWORD}
    user = call(base, "POST", "/auth/sign_up", json_body=body)
    signed_in = call(base, "POST", "/auth/sign_in", form={"username": email, "password": PASSWORD})
    return Account(str(user["id"]), email, str(signed_in["access_token"]))


def add_posts(base: str, account: Account, count: int, text: str = "a post of about tweet length " * 3) -> None:
    """`count` posts for the account, through add-post."""
    for _ in range(count):
        call(base, "POST", "/posts/add-post", token=account.token, json_body={"text": text})
