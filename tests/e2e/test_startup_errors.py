"""A bad configuration stops every entry point with one line naming the variable, never its value.

Real processes from the repository root, as an operator runs them: `python -m serving` and
`gunicorn wsgi:app` (checked before the master listens, then once before any worker), `flask
--app wsgi users list` and `alembic upgrade head`. In production every line the server and
Alembic write is a JSON object, a failing migration included; the CLI answers its operator in
plain words.
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
            "RATE_LIMIT_SIGN_IN_FAILURES": "lots-Qz7-per-minute",
        },
        ["JWT_SECRET_KEY", "RATE_LIMIT_SIGN_IN_FAILURES"],
        [SHORT_KEY, DB_PASSWORD, REDIS_PASSWORD, "lots-Qz7"],
    ),
    "no signing key in production": (
        {"APP_ENV": "production", "DATABASE_URL": DB_URL},
        ["JWT_SECRET_KEY"],
        [DB_PASSWORD],
    ),
}

COMMANDS = {
    "serving": [sys.executable, "-m", "serving"],
    "gunicorn": [sys.executable, "-m", "gunicorn", "wsgi:app"],
    "flask": [sys.executable, "-m", "flask", "--app", "wsgi", "users", "list"],
    "alembic": [sys.executable, "-m", "alembic", "upgrade", "head"],
}
# Entry points that write the service's log stream (JSON in production), not a terminal's words.
LOGGING = ("serving", "gunicorn", "alembic")
GOOD_APP = {"APP_ENV": "production", "JWT_SECRET_KEY": GOOD_KEY, "DATABASE_URL": DB_URL}
# gunicorn's own knobs and the worker's: each value is distinctive, so an echo would be seen.
SERVER_CASES = {
    "WEB_CONCURRENCY": ["Wc-abc-3", "0"],
    "WORKER_CONNECTIONS": ["Wk-abc-5"],
    "BODY_TIMEOUT_SECONDS": ["Bt-abc-9", "nan"],
    "PORT": ["Pt-abc-1", "70000"],
    "LOG_LEVEL": ["Loud-abc-2"],
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


def _json_lines(output: str) -> list[dict[str, object]]:
    """Every line as a JSON object; fails naming the first line that is not one."""
    records = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line in production: {line!r}\n{output}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def _assert_refused_in_one_line(entry_point: str, status: int, output: str, named: list[str]) -> str:
    """The process failed with exactly one `Error:` line naming `named`, and no traceback; returns that line."""
    assert status != 0, output
    errors = [message for message in _messages(output) if message.startswith("Error:")]
    assert len(errors) == 1, output
    assert all(name in errors[0] for name in named), errors[0]
    assert "Traceback" not in output, output
    assert "Booting worker" not in output, output
    if entry_point in LOGGING:
        _json_lines(output)
    return errors[0]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("entry_point", list(COMMANDS))
def test_a_bad_configuration_is_one_line_without_secrets(tmp_path: Path, entry_point: str, case: str) -> None:
    settings, named, secrets = CASES[case]
    status, output = _run(COMMANDS[entry_point], _environment(tmp_path, settings))
    _assert_refused_in_one_line(entry_point, status, output, named)
    assert [secret for secret in secrets if secret in output] == [], output


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in SERVER_CASES.items() for value in values]
)
@pytest.mark.parametrize("entry_point", ["serving", "gunicorn"])
def test_a_bad_server_setting_stops_the_master_in_one_line_without_its_value(
    tmp_path: Path, entry_point: str, name: str, value: str
) -> None:
    if entry_point == "gunicorn" and name == "WEB_CONCURRENCY" and not value.lstrip("-").isdigit():
        pytest.skip("gunicorn int()s WEB_CONCURRENCY as it is imported, before any file of ours: `python -m serving`")
    status, output = _run(COMMANDS[entry_point], _environment(tmp_path, {**GOOD_APP, name: value}))
    _assert_refused_in_one_line(entry_point, status, output, [name])
    if "abc" in value:  # a number could be anywhere in a log line (a timestamp, a pid)
        assert value not in output, output
    assert "Listening at" not in output, output


def test_gunicorn_itself_dies_on_a_non_numeric_web_concurrency_which_the_serving_command_reports(
    tmp_path: Path,
) -> None:
    """Why `python -m serving` is the documented command: gunicorn reads WEB_CONCURRENCY as it is imported."""
    env = _environment(tmp_path, {**GOOD_APP, "WEB_CONCURRENCY": "Wc-abc-3"})
    status, output = _run(COMMANDS["gunicorn"], env)
    assert status != 0 and "Traceback" in output and "Wc-abc-3" in output, output
    status, output = _run(COMMANDS["serving"], env)
    assert _assert_refused_in_one_line("serving", status, output, ["WEB_CONCURRENCY"])
    assert "Wc-abc-3" not in output, output


def test_a_failing_migration_in_production_is_one_json_record_with_its_traceback(tmp_path: Path) -> None:
    # Nothing listens on port 1: the migration cannot connect.
    status, output = _run(COMMANDS["alembic"], _environment(tmp_path, GOOD_APP))
    assert status == 1, output
    records = _json_lines(output)
    errors = [record for record in records if record["level"] == "ERROR"]
    assert len(errors) == 1, output
    (error,) = errors
    assert str(error["message"]).startswith("Error: migration failed: OperationalError:"), error
    assert "Can't connect" in str(error["message"]), error
    assert str(error["traceback"]).startswith("Traceback (most recent call last)"), error
    assert DB_PASSWORD not in output and GOOD_KEY not in output, output


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
    error = _assert_refused_in_one_line("gunicorn", status, output, ["CACHE_BACKEND", "WEB_CONCURRENCY"])
    assert error.startswith("Error: CACHE_BACKEND=simple"), error


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
