"""Rate limits on the auth endpoints (Flask-Limiter): per client address, and failed sign-ins per account.

Counters live in Redis when REDIS_URL is set, so every worker and host shares them; without it,
in the memory of each process, so each gunicorn worker counts on its own. If Redis fails, the
limiter falls back to per-process memory counters rather than failing sign-in.
"""

from __future__ import annotations

from flask import Response, current_app, request

from blueprints.auth.attempts import attempted_account
from config import AUTH_PER_ADDRESS_KEY, SIGN_IN_FAILURES_KEY
from extensions import limiter

# Only these blueprints have limits; the limiter's per-request work is skipped elsewhere.
LIMITED_BLUEPRINTS = frozenset({"auth"})


@limiter.request_filter
def outside_limited_blueprints() -> bool:
    """Exempt every request outside the limited blueprints from the limiter.

    Without limits to apply, the limiter's per-request check (it resolves default, blueprint
    and route limits) would still cost about a sixth of a cached get_my_posts.
    """
    return request.blueprint not in LIMITED_BLUEPRINTS


def _failed_sign_in(response: Response) -> bool:
    return response.status_code == 401


# Both limits read their value per request, so each app (and each test) uses its own settings.
limit_auth_per_address = limiter.shared_limit(
    lambda: str(current_app.config[AUTH_PER_ADDRESS_KEY]), scope="auth-per-address"
)
"""Decorator: sign-up and sign-in share one counter per client address (every attempt counts)."""

limit_sign_in_failures = limiter.shared_limit(
    lambda: str(current_app.config[SIGN_IN_FAILURES_KEY]),
    scope="sign-in-failures",
    key_func=attempted_account,
    deduct_when=_failed_sign_in,
)
"""Decorator: only failed password checks count, per account, shared by every endpoint that checks one
(sign-in, password change, account deletion); while exhausted, every attempt is refused."""
