"""Account recovery by email: ask for a reset mail, reset the password with its token.

The views join the auth blueprint (blueprints.auth.routes.blp): same prefix, tag, rate limits.
"""

from __future__ import annotations

from email.message import EmailMessage
from functools import partial
from typing import Any

from flask import Flask

import request_state
from blueprints.auth.devices import remember_device
from blueprints.auth.limits import limit_auth_per_address
from blueprints.auth.routes import NO_STORE, SET_DEVICE_COOKIE, blp
from blueprints.auth.schemas import (
    EXAMPLE_EMAIL,
    EXAMPLE_NEW_PASSWORD,
    ForgotPasswordSchema,
    PasswordResetSchema,
    ResetPasswordSchema,
    ResetRequestedSchema,
)
from blueprints.openapi import errors
from dependencies import recovery_service
from mail.outbox import Outbox
from resources import resources
from services.emails import EmailAddress
from services.errors import RecoveryNotConfiguredError

REQUESTED = "If the address has an account, a reset link is on its way."
RESET_EXAMPLE = {
    "token": "the token= value from the mail",
    "new_password": EXAMPLE_NEW_PASSWORD,
    "confirm_password": EXAMPLE_NEW_PASSWORD,
}


def _outbox() -> tuple[Flask, Outbox]:
    """This app and its mail outbox; 501 when no mail can go out (production without SMTP_HOST)."""
    found = resources()
    if found.outbox is None:
        raise RecoveryNotConfiguredError
    return found.app, found.outbox


def prepare_reset_mail(app: Flask, email_address: EmailAddress) -> EmailMessage | None:
    """The outbox's job for one request: issue the token and build the mail, in an app context of its own."""
    with app.app_context():
        return recovery_service().reset_mail(email_address)


@blp.route("/forgot_password", methods=["POST"])
@limit_auth_per_address
@blp.arguments(ForgotPasswordSchema, example={"email_address": EXAMPLE_EMAIL})
@blp.response(202, ResetRequestedSchema)
@errors(blp, 429, 501)
def forgot_password(payload: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Ask for a password reset mail

    Always 202 with the same body, at once, whether or not the address has an account: the
    lookup and the mail happen afterwards, off the request. When the account exists, a mail
    with a single-use reset link (valid 30 minutes by default) goes to it; at most 3 per
    address in 15 minutes (beyond that, the same 202 and no mail). 501 when the service has
    no mail server configured.
    """
    app, outbox = _outbox()
    # A full queue is logged and counted by the outbox; the answer stays the same.
    outbox.submit(partial(prepare_reset_mail, app, payload["email_address"]))
    return {"status": REQUESTED}, NO_STORE


@blp.route("/reset_password", methods=["POST"])
@limit_auth_per_address
@blp.arguments(ResetPasswordSchema, example=RESET_EXAMPLE)
@blp.response(200, PasswordResetSchema, headers=SET_DEVICE_COOKIE)
@errors(blp, 400, 429, 501, 503)
def reset_password(payload: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Reset my password with the token from the mail

    Sets the new password (8 to 256 characters) and ends every session of the account, as a
    password change does: sign in again with the new password. Like a sign-in, a reset gives
    this client a fresh device cookie, so other clients' failed sign-ins do not lock it out.
    A token that is unknown, expired, already used, or superseded (a newer mail was sent, or
    the password changed or the sessions ended since) is 400; so is a `confirm_password` that
    differs.
    """
    _outbox()
    reset = recovery_service().reset_password(payload["token"], payload["new_password"], payload["confirm_password"])
    request_state.current().user_id = reset.user_id
    # Proof of the mailbox is a successful sign-in for this client: a stranger's failures since
    # must not lock out the owner who just reset (the old cookies were for the old password).
    remember_device(reset.user_id, reset.password_version)
    return {"status": "password reset"}, NO_STORE
