"""Rate limits on the auth endpoints (Flask-Limiter): per client address, and failed sign-ins per account or device.

Failed sign-ins count per account for clients without a device cookie, and per device for a
client presenting a valid device cookie for the account it tries (blueprints/auth/devices.py):
such a client is exempt from the account's limit, so a stranger's failures cannot lock the
owner's device out, and the device's own failures lock only that device.

Counters live where every worker of the deployment shares them (cache/limits.py): the host
store, or Redis with the host store counting while Redis fails. The failure limits are tested
before the password check and counted after it; `one_attempt_at_a_time` makes the attempts on
one account take turns, so that test and count are atomic even for concurrent guesses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Response, current_app, request

from blueprints.auth.attempts import SIGNED_IN_ATTEMPTS, attempted_account, attempted_address
from blueprints.auth.devices import trusted_device
from blueprints.auth.tokens import current_user_id
from config import AUTH_PER_ADDRESS_KEY, DEVICE_SIGN_IN_FAILURES_KEY, SIGN_IN_FAILURES_KEY
from dependencies import account_service
from extensions import limiter

P = ParamSpec("P")
R = TypeVar("R")

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


def _from_trusted_device() -> bool:
    return trusted_device() is not None


def _from_untrusted_client() -> bool:
    return trusted_device() is None


def _device_nonce() -> str:
    # Only asked when the device limit applies, i.e. when there is a trusted device.
    return trusted_device() or ""


# Both limits read their value per request, so each app (and each test) uses its own settings.
limit_auth_per_address = limiter.shared_limit(
    lambda: str(current_app.config[AUTH_PER_ADDRESS_KEY]), scope="auth-per-address"
)
"""Decorator: the auth endpoints without a password check (sign-up, sign-in, refresh, sign-out,
recovery) share one counter per client address (every attempt counts)."""

limit_sign_in_failures = limiter.shared_limit(
    lambda: str(current_app.config[SIGN_IN_FAILURES_KEY]),
    scope="sign-in-failures",
    key_func=attempted_account,
    deduct_when=_failed_sign_in,
    exempt_when=_from_trusted_device,
)
"""Decorator: only failed password checks count, per account, shared by every endpoint that checks one
(sign-in, password change, account deletion); while exhausted, every attempt is refused.

Clients with a valid device cookie for the account are exempt (neither counted nor refused).
"""

limit_device_sign_in_failures = limiter.shared_limit(
    lambda: str(current_app.config[DEVICE_SIGN_IN_FAILURES_KEY]),
    scope="device-sign-in-failures",
    key_func=_device_nonce,
    deduct_when=_failed_sign_in,
    exempt_when=_from_untrusted_client,
)
"""Decorator: a trusted device's failed password checks count per device cookie, shared like the account
limit; exhausted, that device is refused."""


def one_attempt_at_a_time(view: Callable[P, R]) -> Callable[P, R]:
    """Decorator, above the limits: a password attempt waits for the account's other attempts to finish.

    The failure limits are tested when the view starts and counted after its response; two
    concurrent guesses could otherwise both pass the test before either is counted. The turn
    is the account's row lock, held by the request's transaction until its teardown, after
    the count (an unknown account has no row: there is no password to guess).
    """

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if request.endpoint in SIGNED_IN_ATTEMPTS:
            account_service().take_turn(user_id=current_user_id())
        else:
            account_service().take_turn(email_address=attempted_address())
        return view(*args, **kwargs)

    return wrapper
