"""Rate limits on the auth endpoints (Flask-Limiter): per client address, and failed sign-ins per account.

Counters live in Redis when REDIS_URL is set, so every worker and host shares them; without it,
in the memory of each process, so each gunicorn worker counts on its own. If Redis fails, the
limiter falls back to per-process memory counters rather than failing sign-in.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response, current_app, request

from core.attempts import attempted_account
from core.config import Settings
from core.extensions import limiter

log = logging.getLogger(__name__)

SIGN_IN_FAILURES_KEY = "POSTS_RATE_LIMIT_SIGN_IN_FAILURES"
AUTH_PER_ADDRESS_KEY = "POSTS_RATE_LIMIT_AUTH_PER_ADDRESS"
TOO_MANY_ATTEMPTS = "Too many attempts, try again later"


def rate_limit_config(settings: Settings) -> dict[str, object]:
    """Flask-Limiter settings for this app: on or off, where counters live, the two limits."""
    config: dict[str, object] = {
        "RATELIMIT_ENABLED": settings.rate_limits_enabled,
        "RATELIMIT_STORAGE_URI": settings.redis_url or "memory://",
        SIGN_IN_FAILURES_KEY: settings.rate_limit_sign_in_failures,
        AUTH_PER_ADDRESS_KEY: settings.rate_limit_auth_per_address,
    }
    if settings.redis_url:
        # A Redis that hangs must not hold sign-ins for long; the limiter then falls back to memory.
        timeout = settings.redis_timeout_seconds
        config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    return config


# Only these blueprints have limits; the limiter's per-request check is skipped elsewhere.
LIMITED_BLUEPRINTS = frozenset({"auth"})


def init_rate_limits(app: Flask, settings: Settings) -> None:
    """Bind the limiter to `app` with the settings' limits and storage."""
    app.config.update(rate_limit_config(settings))
    limiter.init_app(app)
    _check_only_limited_blueprints(app)


def _check_only_limited_blueprints(app: Flask) -> None:
    """Run Flask-Limiter's before-request check only for the blueprints that have limits.

    The limiter resolves default, blueprint and route limits on every request, which cost
    about a sixth of a cached get_my_posts; this service sets limits on auth routes only (no
    default limits), and their decorators check them again in any case.
    """
    hooks = app.before_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit
    if check not in hooks:
        return

    def check_limited_blueprints() -> None:
        if request.blueprint in LIMITED_BLUEPRINTS:
            check()

    hooks[hooks.index(check)] = check_limited_blueprints


def _failed_sign_in(response: Response) -> bool:
    return response.status_code == 401


# Both limits read their value per request, so each app (and each test) uses its own settings.
limit_auth_per_address = limiter.shared_limit(
    lambda: str(current_app.config[AUTH_PER_ADDRESS_KEY]), scope="auth-per-address"
)
"""Decorator: sign-up and sign-in share one counter per client address (every attempt counts)."""

limit_sign_in_failures = limiter.limit(
    lambda: str(current_app.config[SIGN_IN_FAILURES_KEY]),
    key_func=attempted_account,
    deduct_when=_failed_sign_in,
)
"""Decorator: only failed sign-ins count, per account; while exhausted, every attempt is refused."""


def retry_after_seconds() -> int:
    """Whole seconds until the limit this request broke lets the next attempt through (at least 1)."""
    breached = limiter.current_limit
    if breached is None:
        return 1
    window = breached.limit.get_expiry()
    try:
        wait = breached.window[0] - time.time()
    except Exception:  # the counter store failed after the breach; the whole window is a safe answer
        log.warning("rate limit storage unavailable for Retry-After", exc_info=True)
        wait = window
    return min(window, max(1, math.ceil(wait)))
