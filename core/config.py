"""Settings read from the environment, validated once at start-up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import BaseModel, Field, ValidationError, field_validator

from observability.redaction import validation_summary

ROOT_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT_DIR / "instance"
MIN_SECRET_BYTES = 32
MAX_BODY_BYTES = 1024 * 1024

CacheBackend = Literal["simple", "filesystem", "redis"]


class ConfigError(RuntimeError):
    """Raised when the configuration is unusable; the service refuses to start."""


class Settings(BaseModel):
    """Every knob of the service, with the environment variable that sets it."""

    app_env: Literal["development", "production", "testing"] = "development"
    database_url: str = Field(default_factory=lambda: f"sqlite:///{INSTANCE_DIR / 'posts.db'}")
    jwt_secret_key: str
    access_token_minutes: int = Field(default=60, gt=0)
    refresh_token_days: int = Field(default=30, gt=0)
    redis_url: str | None = None
    cache_backend: CacheBackend = "simple"
    cache_dir: str = str(INSTANCE_DIR / "cache")
    cache_timeout_seconds: int = Field(default=300, gt=0)
    cache_max_entries: int = Field(default=256, gt=0)
    cache_max_entry_bytes: int = Field(default=512 * 1024, gt=0)
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    cache_retry_seconds: float = Field(default=2.0, gt=0)
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    # See core/database.py for how these bound a request during a database outage.
    db_connect_timeout_seconds: int = Field(default=2, gt=0)
    db_read_timeout_seconds: int = Field(default=3, gt=0)
    db_pool_size: int = Field(default=5, gt=0)
    log_level: str = "INFO"
    # None: JSON when app_env is production, readable console lines otherwise (observability.logs).
    log_format: Literal["json", "console"] | None = None
    # None: no metrics. Set: gunicorn's master serves every worker's metrics on this port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_addr: str = "0.0.0.0"  # noqa: S104 - only when metrics_port is set; like gunicorn's bind
    rate_limits_enabled: bool = True
    rate_limit_sign_in_failures: str = "5 per 15 minutes"
    rate_limit_auth_per_address: str = "120 per minute"
    trusted_proxy_hops: int = Field(default=0, ge=0)

    @field_validator("jwt_secret_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("rate_limit_sign_in_failures", "rate_limit_auth_per_address")
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        problem = f"not a rate limit such as '5 per 15 minutes': {value!r}"
        try:
            parsed = parse_many(value)
        except ValueError as exc:
            raise ValueError(problem) from exc
        # "0 per minute" parses, but would refuse every sign-in: surely a typo.
        if not parsed or any(item.amount < 1 for item in parsed):
            raise ValueError(problem)
        return value


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `env` (default: os.environ); keyword overrides win (tests use them)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {name: env[name.upper()] for name in Settings.model_fields if name.upper() in env}
    values.update(overrides)
    app_env = str(values.get("app_env", "development"))
    if "jwt_secret_key" not in values:
        if app_env == "production":
            raise ConfigError("JWT_SECRET_KEY must be set when APP_ENV=production")
        values["jwt_secret_key"] = _development_secret()
    if "cache_backend" not in values:
        values["cache_backend"] = "redis" if values.get("redis_url") else "simple"
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        # Not `from exc`: pydantic's message repeats each value, the signing key included.
        raise ConfigError(f"invalid configuration: {validation_summary(exc)}") from None


def _development_secret() -> str:
    """A signing key kept under instance/ so development restarts keep sessions valid."""
    path = INSTANCE_DIR / "jwt-secret"
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        draft = path.with_name(f"jwt-secret.{os.getpid()}.tmp")
        draft.write_text(secrets.token_urlsafe(48))
        draft.chmod(0o600)
        try:
            # link() publishes the whole file atomically and fails if another worker won.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
