"""Keeping secrets out of log lines: query parameters, JWTs, URL passwords, configuration values.

The formatters (observability/logs.py) apply `redact` to every field of every record, the
message, the traceback and each structured field alike (`redact_field`), whoever logs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"
# A parameter is secret when its (decoded, lower-cased) name contains one of these: `token`,
# `access_token`, `refresh_token`, `id_token`, `password`, `api_key`, `client_secret`,
# `authorization`, `session_id`, `X-Amz-Signature`, `code` (OAuth)... Over-redacting a
# harmless parameter costs nothing; missing a secret one puts it in every log archive.
SENSITIVE_NAME = re.compile(r"token|passw|pwd|secret|key|auth|credential|session|signature|^sig$|jwt|code")
# `name=value` at the start, or after whitespace, `?`, `&`, `;` or `,`: a query string inside a
# request line, a URL, a message or a header value such as a User-Agent. The value runs to the
# next `&`, `;` or whitespace, quotes and commas included: they may be part of the secret.
_PARAMETER = re.compile(r"(?<![^\s?&;,])([^=&;,\s#?]+)=([^&;\s#]*)")
# Header and payload of a JWT both start with base64 of '{"'; a JWT cut short (a bounded field)
# is redacted too, from its header on.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")


def is_sensitive(name: str) -> bool:
    """Whether a query parameter of this name may carry a secret (name as sent, percent-encoded or not)."""
    return SENSITIVE_NAME.search(unquote_plus(name).lower()) is not None


def _redact_parameter(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"{name}={REDACTED}" if is_sensitive(name) else match.group(0)


def redact(text: str) -> str:
    """`text` with secret query parameters' values, JWTs and URL passwords replaced by [REDACTED].

    Works on a request target (`/path?token=...`), a request line, a URL or any free text such
    as a log message or a traceback; anything else is left as it is, byte for byte.
    """
    # Most log messages have none of these; skip the regular expressions for them.
    if "=" not in text and "eyJ" not in text and "://" not in text:
        return text
    text = _JWT.sub(REDACTED, text)
    text = _PARAMETER.sub(_redact_parameter, text)
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


def redact_field(value: Any) -> Any:
    """A log record's field with `redact` applied to all of its text.

    Text is redacted; numbers, booleans and None are kept as they are; lists, tuples and
    mappings are redacted item by item; anything else is written as its redacted text.
    """
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {key: redact_field(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_field(item) for item in value]
    return redact(str(value))
