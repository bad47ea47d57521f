"""Start-up refusals, the development signing key, and password hashing strength."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import config
from config import ConfigError, load_settings
from services.passwords import OWASP_MEMORY_KIB, Passwords


def test_production_refuses_to_start_without_a_signing_key() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        load_settings({"APP_ENV": "production"})


@pytest.mark.parametrize("env", ["production", "development"])
def test_short_signing_keys_are_refused(env: str) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        load_settings({"APP_ENV": env, "JWT_SECRET_KEY": "x" * 31})


def test_a_32_byte_key_is_enough() -> None:
    assert (
        load_settings({"APP_ENV": "production", "JWT_SECRET_KEY": "k" * 32}).jwt_secret_key.get_secret_value()
        == "k" * 32
    )


def test_development_generates_and_keeps_a_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    first = load_settings({}).jwt_secret_key.get_secret_value()
    second = load_settings({}).jwt_secret_key.get_secret_value()
    assert first == second
    assert len(first.encode()) >= 32
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o077 == 0
    assert list(tmp_path.iterdir()) == [tmp_path / "jwt-secret"]


def test_redis_url_selects_the_shared_cache() -> None:
    settings = load_settings({"JWT_SECRET_KEY": "k" * 32, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert settings.cache_backend == "redis"
    # Without Redis, every process of the host shares one cache: gunicorn's workers, `flask run`, the CLI.
    assert load_settings({"JWT_SECRET_KEY": "k" * 32}).cache_backend == "filesystem"


def test_passwords_use_argon2id_at_owasp_parameters() -> None:
    hashed = Passwords().hash("correct horse battery")
    match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$.+\$.+", hashed)
    assert match, hashed
    memory, time_cost, parallelism = map(int, match.groups())
    assert memory >= OWASP_MEMORY_KIB == 19456
    assert time_cost >= 2
    assert parallelism >= 1


def test_long_passwords_are_not_truncated() -> None:
    passwords = Passwords()
    base = "p" * 255
    hashed = passwords.hash(base + "a")
    assert passwords.verify(hashed, base + "a")
    assert not passwords.verify(hashed, base + "b")


def test_salted_hashes_differ_and_verify() -> None:
    passwords = Passwords()
    first, second = passwords.hash("same password"), passwords.hash("same password")
    assert first != second
    assert passwords.verify(first, "same password") and passwords.verify(second, "same password")
    assert not passwords.verify("not-a-hash", "same password")


class CountingPasswords(Passwords):
    """Real hashing, counting how many argon2 verifications sign-in spends."""

    def __init__(self) -> None:
        super().__init__()
        self.verifications = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return super().verify(password_hash, password)


def test_unknown_email_costs_one_verification_like_a_wrong_password(app, client, sign_up) -> None:
    from dataclasses import replace

    from resources import bind, resources

    sign_up("ada@example.com")
    counting = CountingPasswords()
    bind(app, replace(resources(app), passwords=counting))
    client.post("/api/v1/auth/sign_in", data={"username": "ada@example.com", "password": "wrong password"})
    assert counting.verifications == 1
    client.post("/api/v1/auth/sign_in", data={"username": "nobody@example.com", "password": "wrong password"})
    assert counting.verifications == 2
