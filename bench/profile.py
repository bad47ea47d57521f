"""py-spy on our gunicorn workers while wrk drives a workload: the top functions by own and by total samples.

Only the thread holding the GIL is sampled (`--gil`): that is where a worker's Python CPU goes,
which is what speed work can cut. "Total" lists only the service's own code, since the
framework frames around it are in nearly every sample.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from collections.abc import Collection
from pathlib import Path

PY_SPY_HINT = "py-spy is not installed: `uv sync --group bench`, then run with `uv run --group bench`"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The service's packages: top-level folders with Python code, the harness and the tests left out.
PROJECT_DIRS = frozenset(
    path.name
    for path in REPO_ROOT.iterdir()
    if path.is_dir() and (path / "__init__.py").exists() and path.name not in ("bench", "tests")
)
TOP = 15


def _stacks(collapsed: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            stacks.append((stack.split(";"), int(count_text)))
    return stacks


def frame_dir(frame: str) -> str:
    """The top folder of a py-spy frame's file: `add_post (blueprints/posts/routes.py:30)` -> `blueprints`."""
    _, _, location = frame.rpartition(" (")
    return location.split("/", 1)[0] if "/" in location else ""


def top_entries(
    collapsed: str, project_dirs: Collection[str] = PROJECT_DIRS, limit: int = TOP
) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """From py-spy's raw output: top frames by own samples, the service's frames by total samples, the sample count."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for frames, count in _stacks(collapsed):
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if frame_dir(frame) in project_dirs:
                total[frame] += count
    return own.most_common(limit), total.most_common(limit), samples


def merge(collapsed_texts: list[str]) -> str:
    """Several py-spy raw outputs as one (the same stack's counts summed)."""
    counts: collections.Counter[str] = collections.Counter()
    for text in collapsed_texts:
        for frames, count in _stacks(text):
            counts[";".join(frames)] += count
    return "".join(f"{stack} {count}\n" for stack, count in counts.items())


def summary(collapsed: str, heading: str) -> str:
    """Sample count, the top by own samples, and the service's own code by total samples, as percentages."""
    own, total, samples = top_entries(collapsed)
    lines = [f"{heading}: {samples} samples", "top by own samples:"]
    lines += [f"  {100 * n / max(1, samples):5.1f}%  {frame}" for frame, n in own]
    lines.append("service code by total samples:")
    lines += [f"  {100 * n / max(1, samples):5.1f}%  {frame}" for frame, n in total]
    return "\n".join(lines)


class Profiler:
    """py-spy record on every worker (keep-alive connections may all land on one), in background threads."""

    def __init__(self, pids: list[int], duration_s: float, output: Path) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(py_spy).exists():
            raise SystemExit(PY_SPY_HINT)
        output.parent.mkdir(parents=True, exist_ok=True)
        self._output = output
        self._errors: list[str] = []
        self._files = [output.with_name(f"{output.stem}.{pid}.raw") for pid in pids]
        self._threads = []
        for pid, path in zip(pids, self._files, strict=True):
            command = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))), "--gil"]
            command += ["--format", "raw", "--function", "--nonblocking", "--output", str(path)]
            self._threads.append(threading.Thread(target=self._record, args=(command,), daemon=True))

    def _record(self, command: list[str]) -> None:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            self._errors.append(completed.stderr.strip()[-500:])

    def start(self) -> None:
        """Begin sampling."""
        for thread in self._threads:
            thread.start()

    def report(self) -> str:
        """Wait for py-spy to finish; the top entries, all workers merged (also written beside `output`)."""
        for thread in self._threads:
            thread.join()
        merged = merge([path.read_text() for path in self._files if path.exists()])
        for path in self._files:
            path.unlink(missing_ok=True)
        self._output.with_suffix(".raw").write_text(merged)
        text = summary(merged, f"py-spy --gil, {len(self._files)} workers, {self._output.stem}")
        if self._errors:
            text += "\npy-spy failed: " + " | ".join(self._errors)
        self._output.write_text(text + "\n")
        return text
