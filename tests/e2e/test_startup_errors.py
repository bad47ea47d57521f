"""A bad configuration stops every entry point with one line naming the variable, never its value.

Real processes from the repository root, as an operator runs them: `gunicorn wsgi:app` (the
master checks once, before any worker), `flask --app wsgi users list` and `alembic upgrade head`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from config import Settings
from tests.support.gunicorn import REPO_ROOT
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

# Bounded: a process that starts instead of refusing is killed and fails the test.
RUN_TIMEOUT = 60
GOOD_KEY = "a-good-signing-key-that-is-long-enough-0123456789"
SHORT_KEY = "Sh0rt-s3cret-Kz9"  # 16 bytes
DB_PASSWORD = "Db-Pa55w0rd-q8Zt"
REDIS_PASSWORD = "R3dis-Pa55-w7Yx"
DB_URL = f"mysql+pymysql://posts:{DB_PASSWORD}@127.0.0.1:1/posts"

CASES = {
    "short signing key": (
        {"APP_ENV": "production", "JWT_SECRET_KEY": SHORT_KEY, "DATABASE_URL": DB_URL},
        ["JWT_SECRET_KEY"],
        [SHORT_KEY, DB_PASSWORD],
    ),
    "database password, bad value elsewhere": (
        {"APP_ENV": "production", "JWT_SECRET_KEY": GOOD_KEY, "DATABASE_URL": DB_URL, "ACCESS_TOKEN_MINUTES": "-5"},
        ["ACCESS_TOKEN_MINUTES"],
        [GOOD_KEY, DB_PASSWORD],
    ),
    "several problems, secrets everywhere": (
        {
            "APP_ENV": "production",
            "JWT_SECRET_KEY": SHORT_KEY,
            "DATABASE_URL": DB_URL,
            "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
            "RATE_LIMIT_SIGN_IN_FAILURES": "lots",
        },
        ["JWT_SECRET_KEY", "RATE_LIMIT_SIGN_IN_FAILURES"],
        [SHORT_KEY, DB_PASSWORD, REDIS_PASSWORD],
    ),
    "no signing key in production": (
        {"APP_ENV": "production", "DATABASE_URL": DB_URL},
        ["JWT_SECRET_KEY"],
        [DB_PASSWORD],
    ),
}

COMMANDS = {
    "gunicorn": [sys.executable, "-m", "gunicorn", "wsgi:app"],
    "flask": [sys.executable, "-m", "flask", "--app", "wsgi", "users", "list"],
    "alembic": [sys.executable, "-m", "alembic", "upgrade", "head"],
}


def _environment(tmp_path: Path, settings: dict[str, str]) -> dict[str, str]:
    """The caller's environment without any of the service's settings, plus `settings`."""
    ours = {name.upper() for name in Settings.model_fields}
    clean = {key: value for key, value in os.environ.items() if key.upper() not in ours and "GUNICORN" not in key}
    return {
        **clean,
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",  # if it ever started, only on loopback
        "WEB_CONCURRENCY": "3",
        "CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


def _run(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Exit status and everything the process wrote; killed (and failed) if it runs past RUN_TIMEOUT."""
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the process and its children only
        output, _ = process.communicate()
        pytest.fail(f"{command} did not stop within {RUN_TIMEOUT}s:\n{output.decode(errors='replace')[-2000:]}")
    return process.returncode, output.decode(errors="replace")


def _messages(output: str) -> list[str]:
    """Each line's message: gunicorn logs JSON objects (the service's log format), the CLIs plain lines."""
    messages = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            messages.append(line)
            continue
        messages.append(str(record.get("message", "")) if isinstance(record, dict) else line)
    return messages


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("entry_point", list(COMMANDS))
def test_a_bad_configuration_is_one_line_without_secrets(tmp_path: Path, entry_point: str, case: str) -> None:
    settings, named, secrets = CASES[case]
    status, output = _run(COMMANDS[entry_point], _environment(tmp_path, settings))
    assert status != 0, output
    errors = [message for message in _messages(output) if message.startswith("Error:")]
    assert len(errors) == 1, output
    assert all(name in errors[0] for name in named), errors[0]
    assert [secret for secret in secrets if secret in output] == [], output
    assert "Traceback" not in output, output


def test_the_in_process_cache_with_several_workers_is_refused(tmp_path: Path) -> None:
    # Each worker would keep its own listings: a write on one, a stale read on another.
    env = _environment(
        tmp_path,
        {
            "APP_ENV": "production",
            "JWT_SECRET_KEY": GOOD_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'ok.db'}",
            "CACHE_BACKEND": "simple",
        },
    )
    status, output = _run(COMMANDS["gunicorn"], env)
    assert status != 0, output
    errors = [message for message in _messages(output) if message.startswith("Error:")]
    assert len(errors) == 1 and "CACHE_BACKEND" in errors[0] and "WEB_CONCURRENCY" in errors[0], output
    assert "Booting worker" not in output, output


def test_a_good_configuration_passes_the_same_checks(tmp_path: Path) -> None:
    # The cases above differ from this one only in the configuration: with it, the CLI runs.
    database = tmp_path / "ok.db"
    env = _environment(
        tmp_path, {"APP_ENV": "production", "JWT_SECRET_KEY": GOOD_KEY, "DATABASE_URL": f"sqlite:///{database}"}
    )
    status, output = _run(COMMANDS["alembic"], env)
    assert status == 0, output
    status, output = _run(COMMANDS["flask"], env)
    assert status == 0, output
    assert "0 user(s)" in output
