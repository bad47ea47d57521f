"""Schemathesis fuzzes the live service against its own /openapi.json, authenticated with a real token."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from blueprints.auth.schemas import EXAMPLE_EMAIL, EXAMPLE_PASSWORD
from tests.e2e.helpers import StartServer, mail_env, sign_up
from tests.support.api import CHANGE_PASSWORD, DELETE_ACCOUNT, SIGN_OUT
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.e2e

# Every check Schemathesis has: server errors, undeclared statuses, wrong content types, bodies and
# headers that do not match the declared schema, invalid data that is accepted, wrong Allow headers,
# auth that is ignored, deleted posts that are still served...
CHECKS = "all"
# ...but one: positive_data_acceptance wants every schema-valid body accepted, and the contract
# refuses two that JSON Schema cannot describe: an email that is already taken, and a
# confirm_password that differs from password (400 both, docs/api.md, "Errors").
EXCLUDED_CHECKS = "positive_data_acceptance"
# Bounded and seeded: the same ~800 cases every run, in well under a minute on a 2-core machine.
MAX_EXAMPLES = 100
SEED = 20261126
RUN_TIMEOUT = 600
# Rate limits (another branch) would turn the fuzzer's bursts into 429s; off for this run.
NO_RATE_LIMITS = {
    "RATE_LIMITS_ENABLED": "false",
    "RATE_LIMIT_AUTH_PER_ADDRESS": "100000 per minute",
    "RATE_LIMIT_SIGN_IN_FAILURES": "100000 per minute",
}


def _schemathesis() -> str:
    # The console script installed beside this interpreter (uv's .venv/bin).
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert found, "schemathesis is not installed: uv sync (it is a dev dependency)"
    return found


# These end the session of the tokens every request carries (and the last one the account), so
# each is fuzzed in a run of its own, with an account of its own, after the rest: otherwise the
# other operations would see nothing but 401s once one of them succeeded. Their examples use the
# account's real password, so their 200s are checked too.
SESSION_ENDERS = (SIGN_OUT, CHANGE_PASSWORD, DELETE_ACCOUNT)


def test_schemathesis_finds_no_failure_against_the_live_openapi(
    backend: str, database_url: str, start_server: StartServer, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    if backend != "mariadb":
        pytest.skip("one fuzzing run is enough; it runs against the production-like backend, MariaDB")
    # With a mail server, so the recovery endpoints answer their 202/400/422 rather than 501.
    live = start_server(database_url, **NO_RATE_LIMITS, **mail_env(smtp_server.port))
    # The documented example account, so the examples phase signs in for real; with real access and
    # refresh tokens on every request, every operation's 200 is checked too, not only its 401.
    tokens = sign_up(live.base, EXAMPLE_EMAIL, EXAMPLE_PASSWORD)
    spec = requests.get(f"{live.base}/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert all(path in spec["paths"] for path in SESSION_ENDERS)

    rest = tuple(option for path in SESSION_ENDERS for option in ("--exclude-path", path))
    runs = [(tokens, rest, operations - len(SESSION_ENDERS)), (tokens, ("--include-path", SIGN_OUT), 1)]
    for number, path in enumerate((CHANGE_PASSWORD, DELETE_ACCOUNT)):
        own = sign_up(live.base, f"fuzz-{number}@example.com", EXAMPLE_PASSWORD)
        runs.append((own, ("--include-path", path), 1))
    for run_tokens, selection, expected in runs:
        output = _fuzz(live.base, run_tokens, selection, tmp_path)
        # Guard against a run that passes by testing nothing (e.g. a spec that failed to load).
        assert re.search(rf"Tested:\s+{expected}\b", output), output
        generated = re.search(r"(\d+) generated, (\d+) passed", output)
        assert generated and int(generated[1]) >= expected * 10 and generated[1] == generated[2], output
        print(output[-600:])  # the summary, shown with -s or -rP
    log = live.log()
    assert "unhandled error" not in log and "WORKER TIMEOUT" not in log, live.log_tail()


def _fuzz(base: str, tokens: dict[str, Any], selection: tuple[str, ...], tmp_path: Path) -> str:
    """Run the Schemathesis CLI on the selected operations; its output, after asserting it exited 0."""
    command = [
        _schemathesis(),
        "run",
        f"{base}/openapi.json",
        *selection,
        "--header",
        f"Authorization: Bearer {tokens['access_token']}",
        "--header",
        f"refresh-token: {tokens['refresh_token']}",
        "--checks",
        CHECKS,
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--request-timeout",
        "30",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output
