"""One source of settings: every entry point reads `.env` the way the `flask` command does, in a copy of the checkout.

Issue 27: `cp .env.example .env` broke every `flask` command (Flask's CLI loads `.env`; the
example's placeholder secret was too short) while gunicorn and Alembic ignored the file. Now
`flask run` (the README's first command), the operator CLI, `python -m serving` (gunicorn) and
`alembic` all read it, through Flask's own loader: the same files, the process environment
first, FLASK_SKIP_DOTENV=1 to turn it off. Each case runs real processes in a fresh copy of
the tracked files, as a newcomer's clone would be, with this checkout's virtualenv.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from config import Settings
from tests.e2e.helpers import CLOSE, TIMEOUT, log_records
from tests.support.api import SIGN_IN
from tests.support.gunicorn import REPO_ROOT
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 60
KEY = "a-dotenv-signing-key-that-is-long-enough-42"
EMAIL = "dotenv@example.com"
PASSWORD = "correct horse battery"
PYTHON = sys.executable
ALEMBIC = [PYTHON, "-m", "alembic", "upgrade", "head"]
FLASK = [PYTHON, "-m", "flask", "--app", "wsgi"]
SERVING = [PYTHON, "-m", "serving"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A fresh copy of the tracked files (what a clone holds), without .env, instance/ or a virtualenv."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    copy = tmp_path / "checkout"
    for path in filter(None, tracked):
        if (REPO_ROOT / path).is_file():
            (copy / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / path, copy / path)
    return copy


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any setting of ours or gunicorn's, nor FLASK_SKIP_DOTENV (tests set it)."""
    ours = {name.upper() for name in Settings.model_fields} | {
        "WEB_CONCURRENCY", "WORKER_CONNECTIONS", "BODY_TIMEOUT_SECONDS", "PORT", "GUNICORN_BIND", "FLASK_SKIP_DOTENV",
    }  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key.upper() not in ours and "GUNICORN" not in key}
    # The default filesystem cache would be a /dev/shm directory per checkout path: keep it in tmp_path.
    return {**env, "CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1", **extra}


def _run(command: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


@contextmanager
def _serving(command: list[str], cwd: Path, env: Mapping[str, str], port: int) -> Iterator[str]:
    """Start a server, wait until /healthz answers on `port`, yield its base URL; stopped afterwards."""
    log_path = cwd.parent / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(base + "/healthz", headers=CLOSE, timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or its worker still booting
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and its workers only
            process.wait()


def _sign_in(base: str) -> int:
    response = requests.post(
        base + SIGN_IN, json={"email_address": EMAIL, "password": PASSWORD}, headers=CLOSE, timeout=TIMEOUT
    )
    return response.status_code


def test_every_entry_point_takes_its_settings_from_dotenv_and_the_environment_wins(
    checkout: Path, tmp_path: Path
) -> None:
    database = checkout / "from-dotenv.db"
    (checkout / ".env").write_text(
        "APP_ENV=production\n"
        f"DATABASE_URL=sqlite:///{database}\n"
        f"JWT_SECRET_KEY={KEY}\n"
        "LOG_FORMAT=json\n"
        "WEB_CONCURRENCY=3\n"
    )
    env = _environment(tmp_path, WEB_CONCURRENCY="1")  # the environment wins over .env
    migrated = _run(ALEMBIC, checkout, env)
    assert migrated.returncode == 0, migrated.stderr
    assert database.exists()
    log_records(migrated.stderr)  # JSON: LOG_FORMAT and APP_ENV came from .env too
    created = _run([*FLASK, "users", "create", EMAIL, "--password", PASSWORD], checkout, env)
    assert created.returncode == 0, created.stderr
    listed = _run([*FLASK, "users", "list"], checkout, env)
    assert listed.returncode == 0 and EMAIL in listed.stdout, listed.stderr

    port = free_port()
    with _serving(SERVING, checkout, {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}, port) as base:
        assert _sign_in(base) == 200  # the database and the signing key of .env
    records = log_records((checkout.parent / f"server-{port}.log").read_text())
    booted = [record for record in records if str(record["message"]).startswith("Booting worker")]
    assert len(booted) == 1, records  # WEB_CONCURRENCY=1 from the environment, not 3 from .env

    port = free_port()
    with _serving([*FLASK, "run", "--port", str(port)], checkout, env, port) as base:
        assert _sign_in(base) == 200


def test_a_copied_env_example_breaks_no_entry_point(checkout: Path, tmp_path: Path) -> None:
    """`cp .env.example .env` (docker compose's first step) in the checkout: development keeps working."""
    shutil.copy(checkout / ".env.example", checkout / ".env")
    env = _environment(tmp_path)
    for command in (ALEMBIC, [*FLASK, "users", "list"], [*FLASK, "openapi", "write", str(tmp_path / "api.json")]):
        result = _run(command, checkout, env)
        assert result.returncode == 0, (command, result.stderr)
    port = free_port()
    with _serving(SERVING, checkout, {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}, port) as base:
        assert requests.get(base + "/readyz", timeout=TIMEOUT).status_code == 200
    port = free_port()
    with _serving([*FLASK, "run", "--port", str(port)], checkout, env, port) as base:
        assert requests.get(base + "/readyz", timeout=TIMEOUT).status_code == 200
    # Empty in the example: production refuses until a real key is set, wherever it starts.
    refused = _run(ALEMBIC, checkout, {**env, "APP_ENV": "production"})
    assert refused.returncode == 1 and "JWT_SECRET_KEY must be set" in refused.stderr, refused.stderr


@pytest.mark.parametrize("skip", [False, True], ids=["read", "FLASK_SKIP_DOTENV"])
def test_a_bad_dotenv_stops_every_entry_point_alike_unless_dotenv_is_switched_off(
    checkout: Path, tmp_path: Path, skip: bool
) -> None:
    (checkout / ".env").write_text("JWT_SECRET_KEY=change-me\n")  # the old placeholder: too short
    env = _environment(tmp_path, **({"FLASK_SKIP_DOTENV": "1"} if skip else {}))
    port = free_port()
    commands = {
        "alembic": ALEMBIC,
        "flask users list": [*FLASK, "users", "list"],
        "flask run": [*FLASK, "run", "--port", str(port)],
        "python -m serving": SERVING,
    }
    for name, command in commands.items():
        if skip:
            if name in ("alembic", "flask users list"):
                assert _run(command, checkout, env).returncode == 0, name
            continue
        result = _run(command, checkout, {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"})
        output = result.stdout + result.stderr
        errors = [line for line in output.splitlines() if "Error:" in line]
        assert result.returncode != 0 and len(errors) == 1, (name, output)
        assert "JWT_SECRET_KEY: must be at least 32 bytes" in errors[0], (name, output)
        assert "change-me" not in output and "Traceback" not in output, (name, output)
