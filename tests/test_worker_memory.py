"""Workers return large buffers to the system: gunicorn.conf.py fixes glibc's mmap threshold in each worker."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import serving.memory
from serving.memory import ENVIRONMENT_TUNABLE, fix_mmap_threshold

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_every_worker_fixes_the_threshold_after_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def record() -> bool:
        calls.append("fixed")
        return True

    monkeypatch.setattr(serving.memory, "fix_mmap_threshold", record)
    hooks = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    hooks["post_fork"](object(), object())
    assert calls == ["fixed"]


def test_glibc_accepts_the_threshold() -> None:
    # In a child process: the setting is process-wide and would outlive this test here.
    code = "from serving.memory import fix_mmap_threshold; print(fix_mmap_threshold())"
    env = {"PATH": "/usr/bin:/bin"}
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert output.stdout.strip() == "True", output.stderr


def test_an_operators_own_tunable_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_TUNABLE, "1048576")
    assert fix_mmap_threshold() is False


def test_every_worker_freezes_the_loaded_app_for_the_collector() -> None:
    hooks = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    import gc

    try:
        hooks["post_worker_init"](object())
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # this test process's loaded modules, as a worker's app would be
        garbage: list[list[int]] = [[] for _ in range(100)]
        del garbage
        assert gc.get_freeze_count() == frozen  # later objects are collected as usual
    finally:
        gc.unfreeze()
