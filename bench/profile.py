"""py-spy on a server's gunicorn workers while wrk drives a workload; the top functions by own and total samples.

Two recordings run side by side: every active thread (where requests spend their time, waits in
socket and database calls included) and only the thread holding the GIL (where the worker's Python
CPU goes: a gthread worker runs at most one core of Python, so this is what speed work can cut).
Samples are aggregated by function (py-spy --function), and "total" lists only the service's own
code, since the framework frames around it are in nearly every sample.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from collections.abc import Collection
from pathlib import Path

PY_SPY_HINT = "py-spy is not installed: run the bench with `uv run --group bench --with py-spy python -m bench ...`"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The service's packages (blueprints, services, repositories, ...): top-level folders with Python code,
# the harness and the tests left out.
PROJECT_DIRS = frozenset(
    path.name
    for path in REPO_ROOT.iterdir()
    if path.is_dir() and (path / "__init__.py").exists() and path.name not in ("bench", "tests")
)
TOP = 15


def top_entries(collapsed: str, limit: int = TOP) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """From py-spy's raw (collapsed) output: the top frames by own samples, by total samples, and the sample count."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for frames, count in _stacks(collapsed):
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return own.most_common(limit), total.most_common(limit), samples


def project_entries(collapsed: str, project_dirs: Collection[str], limit: int = TOP) -> list[tuple[str, int]]:
    """The top frames of the service's own code (files under `project_dirs`) by total samples."""
    total: collections.Counter[str] = collections.Counter()
    for frames, count in _stacks(collapsed):
        for frame in set(frames):
            if frame_dir(frame) in project_dirs:
                total[frame] += count
    return total.most_common(limit)


def frame_dir(frame: str) -> str:
    """The top folder of a py-spy frame's file: `add_post (blueprints/posts/routes.py:30)` -> `blueprints`."""
    _, _, location = frame.rpartition(" (")
    return location.split("/", 1)[0] if "/" in location else ""


def _stacks(collapsed: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            stacks.append((stack.split(";"), int(count_text)))
    return stacks


def format_top(title: str, entries: list[tuple[str, int]], samples: int) -> str:
    """Entries as `percent  frame` lines under a title."""
    lines = [title]
    lines += [f"  {100 * count / max(1, samples):5.1f}%  {frame}" for frame, count in entries]
    return "\n".join(lines)


def summary(collapsed: str, heading: str) -> str:
    """Sample count, top by own samples, and the service's own code by total samples."""
    own, _, samples = top_entries(collapsed)
    return "\n".join(
        [
            f"{heading}: {samples} samples",
            format_top("top by own samples:", own, samples),
            format_top("service code by total samples:", project_entries(collapsed, PROJECT_DIRS), samples),
        ]
    )


def merge(collapsed_texts: list[str]) -> str:
    """Several py-spy raw outputs as one (the same stack's counts summed)."""
    counts: collections.Counter[str] = collections.Counter()
    for text in collapsed_texts:
        for frames, count in _stacks(text):
            counts[";".join(frames)] += count
    return "".join(f"{stack} {count}\n" for stack, count in counts.items())


class Profiler:
    """py-spy record on every worker for a while, in background threads (started before wrk, joined after).

    Every worker, because keep-alive connections can all land on one of them: profiling only the
    first worker once gave 4 samples of sign-in while the other served every request.
    """

    MODES: tuple[tuple[str, tuple[str, ...]], ...] = (("active threads", ()), ("GIL holder", ("--gil",)))

    def __init__(self, pids: list[int], duration_s: float, output: Path) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(py_spy).exists():
            raise SystemExit(PY_SPY_HINT)
        self._output = output
        self._errors: list[str] = []
        self._files: dict[str, list[Path]] = {mode: [] for mode, _ in self.MODES}
        self._threads = []
        for mode, extra in self.MODES:
            for pid in pids:
                path = output.with_name(f"{output.stem}.{'gil' if extra else 'all'}.{pid}.txt")
                self._files[mode].append(path)
                command = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s)))]
                command += ["--format", "raw", "--function", "--nonblocking", "--output", str(path), *extra]
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
        """Wait for py-spy to finish; the top entries of both recordings, all workers merged."""
        for thread in self._threads:
            thread.join()
        parts = []
        for mode, paths in self._files.items():
            merged = merge([path.read_text() for path in paths if path.exists()])
            for path in paths:
                path.unlink(missing_ok=True)
            self._output.with_name(f"{self._output.stem}.{mode.split()[0].lower()}.txt").write_text(merged)
            parts.append(summary(merged, f"py-spy, {mode}, {len(paths)} workers"))
        if self._errors:
            parts.append("py-spy failed: " + " | ".join(self._errors))
        text = "\n\n".join(parts)
        self._output.with_suffix(".top.txt").write_text(text + "\n")
        return text
