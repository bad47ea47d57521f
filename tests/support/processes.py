"""Stopping and freezing the throwaway servers tests start (MariaDB, Redis, SMTP, gunicorn)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

FREEZE_TIMEOUT = 5.0


class Stoppable(Protocol):
    """A server a test started."""

    def stop(self) -> None:
        """Stop it; nothing if it is stopped already."""
        ...


P = ParamSpec("P")
S = TypeVar("S", bound=Stoppable)


def stopping_all(start: Callable[P, S]) -> Iterator[Callable[P, S]]:
    """For a factory fixture: yields `start`, and once the test is done stops all it started, in order."""
    started: list[S] = []

    def factory(*args: P.args, **kwargs: P.kwargs) -> S:
        server = start(*args, **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; nothing if it already has."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    # A test may have SIGSTOPped it (a frozen server); wake it so SIGTERM is handled.
    proc.send_signal(signal.SIGCONT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def freeze(pid: int) -> None:
    """SIGSTOP `pid` and return once every thread of it has stopped (a frozen server: TCP accepted, no answers).

    kill() returns before the threads of a busy process have all stopped: tens of milliseconds
    on a loaded machine, time enough to answer a request sent "after" the freeze.
    """
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + FREEZE_TIMEOUT
    while not _all_threads_stopped(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} did not stop within {FREEZE_TIMEOUT:.0f} s of SIGSTOP")
        time.sleep(0.001)


def _all_threads_stopped(pid: int) -> bool:
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # the thread exited meanwhile
            continue
        if state not in ("T", "t"):
            return False
    return True
