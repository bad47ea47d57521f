"""py-spy on one gunicorn worker while wrk drives a workload; the top functions by own and total samples."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

PY_SPY_HINT = "py-spy is not installed: run the bench with `uv run --group bench --with py-spy python -m bench ...`"


def top_entries(collapsed: str, limit: int = 15) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """From py-spy's raw (collapsed) output: the top frames by own samples, by total samples, and the sample count."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return own.most_common(limit), total.most_common(limit), samples


def format_top(title: str, entries: list[tuple[str, int]], samples: int) -> str:
    """Entries as `percent  frame` lines under a title."""
    lines = [title]
    lines += [f"  {100 * count / max(1, samples):5.1f}%  {frame}" for frame, count in entries]
    return "\n".join(lines)


class Profiler:
    """py-spy record on a pid for a while, in a background thread (started before wrk, joined after)."""

    def __init__(self, pid: int, duration_s: float, output: Path) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(py_spy).exists():
            raise SystemExit(PY_SPY_HINT)
        self._command = [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(duration_s))),
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
        ]
        self._output = output
        self._errors = ""
        self._thread = threading.Thread(target=self._record, daemon=True)

    def _record(self) -> None:
        completed = subprocess.run(self._command, capture_output=True, text=True, check=False)
        self._errors = "" if completed.returncode == 0 else completed.stderr.strip()[-500:]

    def start(self) -> None:
        """Begin sampling."""
        self._thread.start()

    def report(self) -> str:
        """Wait for py-spy to finish and format its top entries."""
        self._thread.join()
        collapsed = self._output.read_text() if self._output.exists() else ""
        own, total, samples = top_entries(collapsed)
        text = "\n".join(
            [
                f"py-spy: {samples} samples" + (f" (py-spy failed: {self._errors})" if self._errors else ""),
                format_top("top by own samples:", own, samples),
                format_top("top by total samples:", total, samples),
            ]
        )
        self._output.with_suffix(".top.txt").write_text(text + "\n")
        return text
