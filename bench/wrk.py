"""Drives wrk with a workload's Lua script and parses the one result line the script prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
RESULT_MARKER = "BENCH_RESULT "
INSTALL_COMMAND = "apt-get update && apt-get install -y wrk"


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


def ensure_wrk() -> str:
    """Path of wrk; installs the Debian package when missing and running as root, else exits with the command."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"wrk is not installed; run: sudo sh -c '{INSTALL_COMMAND}'")
    print(f"installing wrk: {INSTALL_COMMAND}", flush=True)
    subprocess.run(["sh", "-c", INSTALL_COMMAND], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def script_text(script: str) -> str:
    """The workload script with the shared set-up before it and the result reporter after it."""
    parts = [LUA_DIR / "common.lua", LUA_DIR / f"{script}.lua", LUA_DIR / "report.lua"]
    return "\n".join(part.read_text() for part in parts)


def run_wrk(
    url: str,
    script: str,
    args: list[str],
    *,
    duration_s: float,
    connections: int,
    threads: int,
) -> WrkResult:
    """Run wrk once against `url` with `script` (a name under lua/) and its arguments."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script_text(script))
        script_path = handle.name
    command = [
        ensure_wrk(),
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
