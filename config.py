"""Settings: every knob of the service, read from the environment once, validated, in one place.

Every entry point (gunicorn, `flask run`, the CLI, Alembic, the tests, the benchmark) builds the
same `Settings` through `load_settings`, so they all agree, for instance on where the listing
cache lives. `flask_config` derives the Flask and extension configuration from it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

ROOT_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = ROOT_DIR / "instance"
MIN_SECRET_BYTES = 32
MAX_BODY_BYTES = 1024 * 1024
JWT_ALGORITHM = "HS256"
# The service serves no reset page (that is the client's; production must name it). The
# development default opens the service's own Swagger UI, where reset_password takes the token;
# as a fragment, the token never reaches a server or its access log.
DEFAULT_PASSWORD_RESET_URL = "http://127.0.0.1:8000/docs#token={token}"  # noqa: S105 - a template

CacheBackend = Literal["simple", "filesystem", "redis"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# `filesystem` is the host store (cache/host.py): one SQLite file in CACHE_DIR for a host's processes.
CACHE_TYPES = {"simple": "SimpleCache", "filesystem": "cache.host.flask_caching_backend", "redis": "RedisCache"}
# Flask config keys of our own: the rate limits, read per request by the limiter, and the
# lifetime of the device cookie (blueprints/auth/devices.py).
SIGN_IN_FAILURES_KEY = "POSTS_RATE_LIMIT_SIGN_IN_FAILURES"
DEVICE_SIGN_IN_FAILURES_KEY = "POSTS_RATE_LIMIT_DEVICE_SIGN_IN_FAILURES"
AUTH_PER_ADDRESS_KEY = "POSTS_RATE_LIMIT_AUTH_PER_ADDRESS"
DEVICE_COOKIE_LIFETIME_KEY = "POSTS_DEVICE_COOKIE_LIFETIME"


class ConfigError(RuntimeError):
    """The configuration is unusable; the service refuses to start. The message never holds a secret."""


TracesSampler = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]
# The propagators opentelemetry-api ships (others need packages this service does not install).
PROPAGATORS = ("tracecontext", "baggage", "none")
SmtpSecurity = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the SMTP server; the password never appears in a repr."""

    host: str
    port: int
    security: SmtpSecurity
    timeout_seconds: float
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # A CA bundle to trust instead of the system's (a private relay's own CA).
    ca_file: str | None = None


class Settings(BaseSettings):
    """Every knob of the service; each field is set by the environment variable of the same name in capitals."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", hide_input_in_errors=True)

    app_env: Literal["development", "production", "testing"] = "development"
    database_url: SecretStr = Field(default_factory=lambda: SecretStr(f"sqlite:///{INSTANCE_DIR / 'posts.db'}"))
    jwt_secret_key: SecretStr
    access_token_minutes: int = Field(default=60, gt=0)
    refresh_token_days: int = Field(default=30, gt=0)
    redis_url: SecretStr | None = None
    # Default: `redis` when REDIS_URL is set, else `filesystem` (the host store, shared by every
    # process of the deployment on this host).
    cache_backend: CacheBackend
    # Default: a private directory on /dev/shm for this deployment (its database), else under instance/.
    cache_dir: str
    cache_timeout_seconds: int = Field(default=300, gt=0)
    # Listing bodies each process keeps (an LRU in memory), and the largest body kept.
    cache_max_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    cache_max_entry_bytes: int = Field(default=512 * 1024, gt=0)
    # The host store's file (versions, session copies, rate-limit windows); full, it evicts.
    cache_store_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    cache_retry_seconds: float = Field(default=2.0, gt=0)
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    # See repositories/database.py for how these bound a request during a database outage.
    db_connect_timeout_seconds: int = Field(default=2, gt=0)
    db_read_timeout_seconds: int = Field(default=3, gt=0)
    # A statement waits this long for another session's row or table lock, then answers "busy"
    # (below the read timeout, so a lock wait is never mistaken for a silent server). Default:
    # one second less than DB_READ_TIMEOUT_SECONDS (at least 1).
    db_lock_wait_seconds: int | None = Field(default=None, gt=0)
    db_pool_size: int = Field(default=10, gt=0)
    # After a database timeout or failed connect, a process answers 503 at once for this long,
    # then lets one request probe (repositories/database.py, DatabaseBreaker).
    db_retry_seconds: float = Field(default=1.0, gt=0)
    log_level: LogLevel = "INFO"
    # None: JSON when app_env is production, readable console lines otherwise (observability.logs).
    log_format: Literal["json", "console"] | None = None
    # None: no metrics. Set: gunicorn's master serves every worker's metrics on this port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_addr: str = "0.0.0.0"  # noqa: S104 - only when metrics_port is set; like gunicorn's bind
    rate_limits_enabled: bool = True
    rate_limit_sign_in_failures: str = "5 per 15 minutes"
    rate_limit_auth_per_address: str = "120 per minute"
    # A device that signed in before has its own failure limit instead of the account's.
    rate_limit_device_sign_in_failures: str = "5 per 15 minutes"
    device_cookie_days: int = Field(default=90, gt=0, le=400)
    trusted_proxy_hops: int = Field(default=0, ge=0)
    # Account recovery (docs/api.md, "Account recovery"). Without SMTP_HOST, development writes
    # each mail to a file in DEV_MAIL_DIR (mail.transport.DirectoryTransport) and production
    # answers the recovery endpoints 501.
    smtp_host: str | None = None
    dev_mail_dir: str = str(INSTANCE_DIR / "mail")
    # Default: 587 for starttls, 465 for tls, 25 for none.
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: SmtpSecurity = "starttls"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    smtp_ca_file: str | None = None
    mail_from: str = "Posts API <no-reply@localhost>"
    # Where the mail's link leads (the client's own reset page); `{token}` becomes the token.
    password_reset_url: str = DEFAULT_PASSWORD_RESET_URL
    password_reset_minutes: int = Field(default=30, gt=0, le=24 * 60)
    password_reset_mails_per_window: int = Field(default=3, gt=0)
    password_reset_window_minutes: int = Field(default=15, gt=0)
    mail_queue_size: int = Field(default=100, gt=0)
    mail_attempts: int = Field(default=3, gt=0, le=10)
    mail_retry_seconds: float = Field(default=1.0, ge=0)
    # Traces (docs/operations.md, "Traces"): OpenTelemetry's standard variables, off unless an
    # endpoint is set. The exporter reads the rest itself (headers, timeout, compression, certificates).
    otel_sdk_disabled: bool = False
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_protocol: Literal["http/protobuf"] | None = None
    otel_exporter_otlp_traces_protocol: Literal["http/protobuf"] | None = None
    otel_service_name: str | None = None
    otel_resource_attributes: str | None = None
    otel_traces_sampler: TracesSampler = "parentbased_always_on"
    otel_traces_sampler_arg: float | None = Field(default=None, ge=0, le=1)
    otel_propagators: str | None = None
    otel_bsp_max_queue_size: int = Field(default=2048, gt=0)
    otel_bsp_max_export_batch_size: int = Field(default=512, gt=0)
    otel_bsp_schedule_delay: int = Field(default=5000, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _defaults_that_depend_on_others(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        if not values.get("jwt_secret_key"):
            if values.get("app_env") == "production":
                raise ValueError("JWT_SECRET_KEY must be set when APP_ENV=production")
            values["jwt_secret_key"] = _development_secret()
        if not values.get("cache_backend"):
            values["cache_backend"] = "redis" if values.get("redis_url") else "filesystem"
        if not values.get("cache_dir"):
            deployment = _deployment_id(values.get("database_url"))
            values["cache_dir"] = _private_shm_cache_dir(deployment) or str(INSTANCE_DIR / f"cache-{deployment}")
        return values

    @model_validator(mode="after")
    def _mail_settings_agree(self) -> Settings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together: set both or neither")
        if self.app_env == "production" and self.smtp_host:
            # A link to the development default would reach no one's reset page.
            if "password_reset_url" not in self.model_fields_set:
                raise ValueError("PASSWORD_RESET_URL must be set when APP_ENV=production and SMTP_HOST is set")
            if "mail_from" not in self.model_fields_set:
                raise ValueError("MAIL_FROM must be set when APP_ENV=production and SMTP_HOST is set")
        return self

    @model_validator(mode="after")
    def _lock_waits_end_before_the_read_timeout(self) -> Settings:
        if self.db_lock_wait_seconds is not None and self.db_lock_wait_seconds >= self.db_read_timeout_seconds:
            raise ValueError("DB_LOCK_WAIT_SECONDS must be below DB_READ_TIMEOUT_SECONDS")
        return self

    @property
    def lock_wait_seconds(self) -> int:
        """How long a statement waits for a lock: DB_LOCK_WAIT_SECONDS, or one second below the read timeout."""
        return self.db_lock_wait_seconds or max(1, self.db_read_timeout_seconds - 1)

    @model_validator(mode="after")
    def _trace_batches_fit_the_queue(self) -> Settings:
        if self.otel_bsp_max_export_batch_size > self.otel_bsp_max_queue_size:
            raise ValueError("OTEL_BSP_MAX_EXPORT_BATCH_SIZE must not exceed OTEL_BSP_MAX_QUEUE_SIZE")
        return self

    @field_validator(
        "otel_exporter_otlp_endpoint",
        "otel_exporter_otlp_traces_endpoint",
        "otel_exporter_otlp_protocol",
        "otel_exporter_otlp_traces_protocol",
        "otel_service_name",
        "otel_resource_attributes",
        "otel_traces_sampler_arg",
        "otel_propagators",
        mode="before",
    )
    @classmethod
    def _empty_otel_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint")
    @classmethod
    def _an_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in value.strip():
            raise ValueError("must be an http(s) URL such as http://collector:4318")
        return value.strip()

    @field_validator("otel_resource_attributes")
    @classmethod
    def _key_value_pairs(cls, value: str | None) -> str | None:
        if value is not None:
            _resource_pairs(value)
        return value

    @field_validator("otel_propagators")
    @classmethod
    def _known_propagators(cls, value: str | None) -> str | None:
        if value is not None and any(name.strip() not in PROPAGATORS for name in value.split(",")):
            raise ValueError(f"must be a comma-separated list of {', '.join(PROPAGATORS)}")
        return value

    def otlp_traces_url(self) -> str | None:
        """Where spans go (OTLP/HTTP), as the exporter resolves it; None when traces are off.

        Off unless OTEL_EXPORTER_OTLP_ENDPOINT (`/v1/traces` is appended) or
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as it is) is set, and always with OTEL_SDK_DISABLED=true.
        """
        if self.otel_sdk_disabled:
            return None
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return f"{self.otel_exporter_otlp_endpoint.removesuffix('/')}/v1/traces"
        return None

    def otel_resource_attributes_map(self) -> dict[str, str]:
        """OTEL_RESOURCE_ATTRIBUTES as a mapping (values percent-decoded)."""
        return _resource_pairs(self.otel_resource_attributes) if self.otel_resource_attributes else {}

    @field_validator("password_reset_url")
    @classmethod
    def _a_link_template(cls, value: str) -> str:
        if "{token}" not in value or not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL containing {token}, e.g. https://example.com/reset?token={token}")
        try:
            value.format(token="x")  # noqa: S106 - a probe of the template
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError("may hold no other {...} placeholder than {token}") from exc
        return value

    @field_validator("mail_from")
    @classmethod
    def _an_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or any(char in value for char in "\r\n"):
            raise ValueError("must be an address such as 'Posts API <no-reply@example.com>'")
        return value

    @field_validator("smtp_host", "smtp_username", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    def smtp(self) -> SmtpSettings | None:
        """How to reach the SMTP server; None when SMTP_HOST is unset."""
        if not self.smtp_host:
            return None
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port or DEFAULT_PORTS[self.smtp_security],
            security=self.smtp_security,
            timeout_seconds=self.smtp_timeout_seconds,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            ca_file=self.smtp_ca_file,
        )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("jwt_secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("rate_limit_sign_in_failures", "rate_limit_auth_per_address", "rate_limit_device_sign_in_failures")
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        problem = "not a rate limit such as '5 per 15 minutes'"
        try:
            parsed = parse_many(value)
        except ValueError as exc:
            raise ValueError(problem) from exc
        # "0 per minute" parses, but would refuse every sign-in: surely a typo.
        if not parsed or any(item.amount < 1 for item in parsed):
            raise ValueError(problem)
        return value


class _MappingSettings(Settings):
    """Settings read from the keyword arguments alone (load_settings was given its own environment)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: never the process environment."""
        return (init_settings,)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the process environment, or from `env` alone when given; keyword overrides win.

    Raises ConfigError with one line per problem, naming the variable and never its value.
    """
    try:
        if env is None:
            return Settings(**overrides)
        names = {name.upper(): name for name in Settings.model_fields}
        values = {names[key.upper()]: value for key, value in env.items() if key.upper() in names}
        return _MappingSettings(**{**values, **overrides})
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


class ServerSettings(BaseSettings):
    """gunicorn's knobs (gunicorn.conf.py) and the worker's body deadline (serving/worker.py), validated at once."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", hide_input_in_errors=True)

    web_concurrency: int = Field(default=2, ge=1)
    worker_connections: int = Field(default=1000, ge=1)
    body_timeout_seconds: float = Field(default=15.0, gt=0, allow_inf_nan=False)
    port: int = Field(default=8000, ge=1, le=65535)
    # Replaces the whole address ("127.0.0.1:9000", "unix:/run/posts.sock"); default 0.0.0.0:PORT.
    gunicorn_bind: str | None = None
    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("gunicorn_bind", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def bind(self) -> str:
        """Where gunicorn listens."""
        return self.gunicorn_bind or f"0.0.0.0:{self.port}"


def load_server_settings() -> ServerSettings:
    """The server's knobs from the process environment; ConfigError in one line naming each bad one, never its value."""
    try:
        return ServerSettings()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def load_env_file() -> None:
    """Put `.env`'s variables into the process environment, exactly as the `flask` command does.

    Every entry point calls this first (wsgi.py, gunicorn.conf.py, `python -m serving`,
    migrations/env.py), so `flask run`, the CLI, gunicorn and Alembic read one set of settings:
    Flask's own function, so the same files (the nearest `.flaskenv` and `.env` from the working
    directory up), the same precedence (a variable already in the environment wins) and the same
    switch (FLASK_SKIP_DOTENV=1 turns it off).
    """
    from flask.cli import load_dotenv
    from flask.helpers import get_load_dotenv

    load_dotenv(load_defaults=get_load_dotenv())


def describe(error: ValidationError) -> str:
    """One line naming each bad variable and what is wrong with it, without the value."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name else message)
    return "; ".join(problems)


def flask_config(settings: Settings) -> dict[str, object]:
    """The Flask and extension configuration (JWT, Flask-Caching, Flask-Limiter) these settings imply."""
    return {
        "TESTING": settings.app_env == "testing",
        "APP_ENV": settings.app_env,
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        **_jwt_config(settings),
        **_cache_config(settings),
        **_rate_limit_config(settings),
        DEVICE_COOKIE_LIFETIME_KEY: timedelta(days=settings.device_cookie_days),
    }


def _jwt_config(settings: Settings) -> dict[str, object]:
    """flask-jwt-extended: HS256 only, tokens in the Authorization header, configurable lifetimes."""
    return {
        "JWT_SECRET_KEY": settings.jwt_secret_key.get_secret_value(),
        "JWT_ALGORITHM": JWT_ALGORITHM,
        "JWT_DECODE_ALGORITHMS": [JWT_ALGORITHM],
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=settings.access_token_minutes),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=settings.refresh_token_days),
        "JWT_TOKEN_LOCATION": ["headers"],
        # add-post also takes the access token as `"token"` in its JSON body (docs/api.md, "Conventions").
        "JWT_JSON_KEY": "token",
        # Tokens travel in headers only, so the cookie CSRF claim would be dead weight.
        "JWT_COOKIE_CSRF_PROTECT": False,
    }


def _cache_config(settings: Settings) -> dict[str, object]:
    """Flask-Caching: `simple` lives in one process, `filesystem` (the host store) in one host, `redis` everywhere.

    It holds only small entries (listing versions, session copies); listing bodies live in each
    process's memo (CACHE_MAX_BYTES), the host store's file is bounded by CACHE_STORE_MAX_BYTES.
    """
    config: dict[str, object] = {
        "CACHE_TYPE": CACHE_TYPES[settings.cache_backend],
        "CACHE_DEFAULT_TIMEOUT": settings.cache_timeout_seconds,
        "CACHE_KEY_PREFIX": "posts-api:",
    }
    if settings.cache_backend == "filesystem":
        config["CACHE_DIR"] = settings.cache_dir
        config["CACHE_STORE_MAX_BYTES"] = settings.cache_store_max_bytes
    if settings.cache_backend == "redis" and settings.redis_url is not None:
        config["CACHE_REDIS_URL"] = settings.redis_url.get_secret_value()
        timeout = settings.redis_timeout_seconds
        config["CACHE_OPTIONS"] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    return config


def _rate_limit_config(settings: Settings) -> dict[str, object]:
    """Flask-Limiter: on or off, the limits, and where counters live (cache/limits.py).

    Every process of a deployment counts in one place: the host store shared by the host's
    workers, or Redis shared by every host (the host store counting while Redis fails). Only the
    single-process `simple` cache keeps them in the process.
    """
    config: dict[str, object] = {
        "RATELIMIT_ENABLED": settings.rate_limits_enabled,
        SIGN_IN_FAILURES_KEY: settings.rate_limit_sign_in_failures,
        DEVICE_SIGN_IN_FAILURES_KEY: settings.rate_limit_device_sign_in_failures,
        AUTH_PER_ADDRESS_KEY: settings.rate_limit_auth_per_address,
    }
    host = {"directory": settings.cache_dir, "max_bytes": settings.cache_store_max_bytes}
    if settings.redis_url is not None:
        config["RATELIMIT_STORAGE_URI"] = "posts-redis://"
        # A Redis that hangs must not hold sign-ins for long: its timeout, then the host counts.
        config["RATELIMIT_STORAGE_OPTIONS"] = {
            **host,
            "redis_url": settings.redis_url.get_secret_value(),
            "timeout": settings.redis_timeout_seconds,
            "retry_seconds": settings.cache_retry_seconds,
        }
    elif settings.cache_backend == "simple":
        config["RATELIMIT_STORAGE_URI"] = "memory://"
    else:
        config["RATELIMIT_STORAGE_URI"] = "posts-host://"
        config["RATELIMIT_STORAGE_OPTIONS"] = host
    return config


def _resource_pairs(value: str) -> dict[str, str]:
    """`key=value,key2=value2` (values percent-encoded) as a mapping; ValueError when it is not that."""
    pairs: dict[str, str] = {}
    for item in value.split(","):
        key, equals, encoded = item.partition("=")
        if not item.strip():
            continue
        if not equals or not key.strip():
            raise ValueError("must be key=value pairs separated by commas, e.g. deployment.environment=production")
        pairs[key.strip()] = unquote(encoded.strip())
    return pairs


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


def _deployment_id(database_url: object) -> str:
    """A short name for the deployment: its database, without the password (never a secret in a path).

    Every process serving one database on this host shares one host store; another database
    (another deployment started from the same checkout) gets its own.
    """
    raw = database_url.get_secret_value() if isinstance(database_url, SecretStr) else database_url
    url = str(raw) if raw else f"sqlite:///{INSTANCE_DIR / 'posts.db'}"
    try:
        identity = make_url(url).render_as_string(hide_password=True)
    except Exception:  # an invalid URL is reported by the engine; any stable name will do here
        identity = url.rsplit("@", 1)[-1]
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def _private_shm_cache_dir(deployment: str) -> str | None:
    """A directory on /dev/shm only this user can write, one per deployment; None when unusable.

    Every add-post and delete writes a version stamp, and a write on a busy disk costs several
    times what it costs in memory. The store holds pickles, so a directory another local user
    could have created (or a symlink) is refused rather than read.
    """
    if not os.path.isdir("/dev/shm"):  # noqa: S108 - checked to be private below
        return None
    path = f"/dev/shm/posts-api-cache-{os.geteuid()}-{deployment}"  # noqa: S108
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        return None
    return path
