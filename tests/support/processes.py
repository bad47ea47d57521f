"""Stopping the throwaway servers tests start (MariaDB, Redis)."""

from __future__ import annotations

import signal
import subprocess


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
