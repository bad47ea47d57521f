"""Where the settings put the host store by default: private memory-backed storage, one per deployment.

A deployment is its database: every process serving one database on a host shares one store
(read-your-writes needs it), and another database gets another, whatever checkout starts it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

import config
from config import load_settings
from tests.support.api import TEST_SECRET

SHM = Path("/dev/shm")

pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm on this host")


def _expected_dir(checkout: Path, database_url: str | None = None) -> Path:
    identity = database_url or f"sqlite:///{checkout / 'instance' / 'posts.db'}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return SHM / f"posts-api-cache-{os.geteuid()}-{digest}"


def _fallback_dir(checkout: Path) -> Path:
    return checkout / "instance" / f"cache-{_expected_dir(checkout).name.rsplit('-', 1)[-1]}"


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings computed as if the service were checked out in tmp_path."""
    monkeypatch.setattr(config, "ROOT_DIR", tmp_path)
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path / "instance")
    return tmp_path


def test_default_cache_dir_is_private_and_memory_backed(checkout: Path) -> None:
    expected = _expected_dir(checkout)
    try:
        settings = load_settings({"JWT_SECRET_KEY": TEST_SECRET})
        assert (settings.cache_backend, settings.cache_dir) == ("filesystem", str(expected))
        assert expected.is_dir()
        assert expected.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(expected, ignore_errors=True)


def test_a_directory_others_can_write_is_refused(checkout: Path) -> None:
    expected = _expected_dir(checkout)
    expected.mkdir()
    expected.chmod(0o777)
    try:
        # Falls back to instance/cache-<deployment> under the checkout.
        settings = load_settings({"JWT_SECRET_KEY": TEST_SECRET})
        assert settings.cache_dir == str(_fallback_dir(checkout))
    finally:
        shutil.rmtree(expected, ignore_errors=True)


def test_a_symlink_is_refused(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    expected = _expected_dir(checkout)
    target = tmp_path_factory.mktemp("elsewhere")
    expected.symlink_to(target)
    try:
        settings = load_settings({"JWT_SECRET_KEY": TEST_SECRET})
        assert settings.cache_dir == str(_fallback_dir(checkout))
    finally:
        expected.unlink()


def test_each_database_gets_its_own_store_and_its_password_never_names_it(checkout: Path) -> None:
    first = "mysql+pymysql://posts:secret-one@db.internal:3306/posts"
    same_database = "mysql+pymysql://posts:secret-two@db.internal:3306/posts"
    other = "mysql+pymysql://posts:secret-one@db.internal:3306/staging"
    dirs = [
        load_settings({"JWT_SECRET_KEY": TEST_SECRET, "DATABASE_URL": url}).cache_dir
        for url in (first, same_database, other)
    ]
    try:
        assert dirs[0] == dirs[1] != dirs[2]
        assert dirs[0] == str(_expected_dir(checkout, "mysql+pymysql://posts:***@db.internal:3306/posts"))
    finally:
        for directory in dirs:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis"),
        ({"CACHE_BACKEND": "simple", "REDIS_URL": "redis://127.0.0.1:6379/0"}, "simple"),
        ({"CACHE_DIR": "/srv/cache"}, "filesystem"),
    ],
)
def test_an_explicit_choice_is_respected(checkout: Path, env: dict[str, str], backend: str) -> None:
    settings = load_settings({"JWT_SECRET_KEY": TEST_SECRET, **env})
    assert settings.cache_backend == backend
    if "CACHE_DIR" in env:
        assert settings.cache_dir == env["CACHE_DIR"]
