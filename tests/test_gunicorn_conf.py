"""gunicorn.conf.py's choice of listing-cache directory: private memory-backed storage, or none it cannot trust."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHM = Path("/dev/shm")

pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm on this host")


def _cache_env_after_loading(checkout: Path, **env: str) -> tuple[str, str]:
    """CACHE_BACKEND and CACHE_DIR as set by executing gunicorn.conf.py from `checkout`."""
    shutil.copy(REPO_ROOT / "gunicorn.conf.py", checkout / "gunicorn.conf.py")
    code = (
        "import os, runpy; runpy.run_path('gunicorn.conf.py'); "
        "print(os.environ.get('CACHE_BACKEND', ''), os.environ.get('CACHE_DIR', ''), sep='|')"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CACHE_BACKEND", "CACHE_DIR")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, env={**clean, **env}, capture_output=True, text=True, check=True
    )
    backend, _, cache_dir = result.stdout.strip().partition("|")
    return backend, cache_dir


def _expected_dir(checkout: Path) -> Path:
    digest = hashlib.sha256(str(checkout).encode()).hexdigest()[:12]
    return SHM / f"posts-api-cache-{os.geteuid()}-{digest}"


def test_default_cache_dir_is_private_and_memory_backed(tmp_path: Path) -> None:
    expected = _expected_dir(tmp_path)
    try:
        assert _cache_env_after_loading(tmp_path) == ("filesystem", str(expected))
        assert expected.is_dir()
        assert expected.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(expected, ignore_errors=True)


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    expected = _expected_dir(tmp_path)
    expected.mkdir()
    expected.chmod(0o777)
    try:
        # Falls back to the settings' default (instance/cache under the checkout).
        assert _cache_env_after_loading(tmp_path) == ("filesystem", "")
    finally:
        shutil.rmtree(expected, ignore_errors=True)


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    expected = _expected_dir(tmp_path)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    expected.symlink_to(target)
    try:
        assert _cache_env_after_loading(tmp_path) == ("filesystem", "")
    finally:
        expected.unlink()


def test_an_explicit_cache_dir_or_redis_is_respected(tmp_path: Path) -> None:
    assert _cache_env_after_loading(tmp_path, CACHE_DIR=str(tmp_path / "mine")) == (
        "filesystem",
        str(tmp_path / "mine"),
    )
    assert _cache_env_after_loading(tmp_path, REDIS_URL="redis://127.0.0.1:1/0") == ("", "")
