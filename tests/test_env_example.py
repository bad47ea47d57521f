""".env.example lists every setting, and the defaults it shows are the defaults (issue 27: MAIL_FROM and
PASSWORD_RESET_URL showed examples under "defaults shown")."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import TypeAdapter

from config import ServerSettings, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
KEY = "k" * 32
# Defaults that depend on other settings or on the host: the example says how, in words.
COMPUTED = {"CACHE_BACKEND", "CACHE_DIR", "DEV_MAIL_DIR", "LOG_FORMAT", "SMTP_PORT", "PROMETHEUS_MULTIPROC_DIR"}
# Set by docker-compose.yml itself or required (the secrets): named in the example's prose.
NOT_DEFAULTS = {"APP_ENV", "DATABASE_URL", "REDIS_URL", "TRUSTED_PROXY_HOPS", "JWT_SECRET_KEY", "HTTP_PORT"}
# Read by OpenTelemetry's exporter and Flask instrumentation themselves, not by config.py.
READ_BY_LIBRARIES = {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_PYTHON_FLASK_EXCLUDED_URLS"}
_ASSIGNMENT = re.compile(r'^(?:# )?(?P<name>[A-Z][A-Z0-9_]*)=(?:"(?P<quoted>[^"]*)"|(?P<plain>\S*))')


def _shown() -> dict[str, str]:
    """NAME -> value of every assignment, active or commented out, below the MySQL section's start."""
    text = EXAMPLE.read_text()
    body = text[text.index("# --- MySQL") :]
    shown = {}
    for line in body.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            shown[match["name"]] = match["quoted"] if match["quoted"] is not None else match["plain"]
    return shown


def test_every_setting_is_in_the_example() -> None:
    text = EXAMPLE.read_text()
    names = {name.upper() for name in (*Settings.model_fields, *ServerSettings.model_fields)}
    assert [name for name in sorted(names) if name not in text] == []


def test_the_values_shown_are_the_defaults() -> None:
    shown = _shown()
    assert len(shown) > 40, shown
    defaults = load_settings({}, jwt_secret_key=KEY)
    for name, value in shown.items():
        if name in COMPUTED or name in NOT_DEFAULTS or name in READ_BY_LIBRARIES or name.startswith("MYSQL_"):
            continue
        field = name.lower()
        if field in ServerSettings.model_fields:
            info = ServerSettings.model_fields[field]
            raw = None if value == "" else value.upper() if field == "log_level" else value
            assert info.annotation is not None
            parsed = TypeAdapter(info.annotation).validate_python(raw)
            assert parsed == info.default, (name, value, info.default)
            continue
        assert field in Settings.model_fields, f"{name} is no setting"
        if value == "":
            assert getattr(defaults, field) is None, (name, getattr(defaults, field))
            continue
        assert getattr(load_settings({name: value}, jwt_secret_key=KEY), field) == getattr(defaults, field), name


def test_the_secrets_are_empty() -> None:
    shown = _shown()
    assert [shown[name] for name in ("MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD", "JWT_SECRET_KEY")] == ["", "", ""]
