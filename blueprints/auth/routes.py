"""Accounts and tokens: sign-up, sign-in, refresh, sign-out, password change, account deletion."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask_jwt_extended import jwt_required
from marshmallow import ValidationError

import request_state
from blueprints.auth.attempts import FORM_TYPES, attempted_address
from blueprints.auth.devices import COOKIE_NAME, remember_device
from blueprints.auth.limits import (
    limit_auth_per_address,
    limit_device_sign_in_failures,
    limit_sign_in_failures,
    one_attempt_at_a_time,
)
from blueprints.auth.schemas import (
    EXAMPLE_EMAIL,
    EXAMPLE_NEW_PASSWORD,
    EXAMPLE_PASSWORD,
    AccessTokenSchema,
    AccountDeletedSchema,
    ChangePasswordSchema,
    DeleteAccountSchema,
    PasswordChangedSchema,
    SignedOutSchema,
    SignInFormSchema,
    SignInJsonSchema,
    SignUpSchema,
    UserWithTokensSchema,
)
from blueprints.auth.tokens import (
    current_user_id,
    generation_of,
    issue_access_token,
    issue_tokens,
    verify_refresh_token,
)
from blueprints.errors import AuthenticationError
from blueprints.openapi import BEARER_SECURITY, Blueprint, errors
from dependencies import account_service, session_service
from services.accounts import SignedIn

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens.", tag="Authentication")

NO_STORE = {"Cache-Control": "no-store"}


# Swagger UI pre-fills request bodies with their example: these work as they stand (the schema's
# own would send `"confirm_password": null`).
SIGN_UP_EXAMPLE = {"email_address": EXAMPLE_EMAIL, "password": EXAMPLE_PASSWORD, "confirm_password": EXAMPLE_PASSWORD}
CHANGE_PASSWORD_EXAMPLE = {
    "current_password": EXAMPLE_PASSWORD,
    "new_password": EXAMPLE_NEW_PASSWORD,
    "confirm_password": EXAMPLE_NEW_PASSWORD,
}

REFRESH_TOKEN_HEADER = {
    "in": "header",
    "name": "refresh-token",
    "required": True,
    "schema": {"type": "string"},
    "description": "The refresh token from sign-up or sign-in.",
}


DEVICE_COOKIE = {
    "in": "cookie",
    "name": COOKIE_NAME,
    "required": False,
    "schema": {"type": "string"},
    "description": (
        "The device cookie a successful sign-in or sign-up on this client set. With it, this client "
        "has its own failed-sign-in limit and is not locked out by other clients' failures. Browsers "
        "send it by themselves; an invalid, expired or other account's cookie is ignored."
    ),
}

SET_DEVICE_COOKIE = {
    "Set-Cookie": {
        "description": (
            f"`{COOKIE_NAME}=...; Path=/api/v1/auth; HttpOnly; SameSite=Strict` (plus `Secure` over HTTPS): "
            "the device cookie, valid for 90 days by default (DEVICE_COOKIE_DAYS)."
        ),
        "schema": {"type": "string"},
    }
}


def _user_with_tokens(signed_in: SignedIn) -> dict[str, Any]:
    """The account and a fresh token pair; the client becomes a trusted device of this account."""
    user = signed_in.user
    request_state.current().user_id = user.id  # for the audit log
    remember_device(user.id, signed_in.password_version)
    return {**user.model_dump(), **issue_tokens(user.id, signed_in.generation)}


def _refresh_claims() -> dict[str, Any]:
    """The verified claims of the `refresh-token` header; 401 when missing or invalid."""
    token = request.headers.get("refresh-token")
    if not token:
        raise AuthenticationError("Not authenticated")
    return verify_refresh_token(token)


@blp.route("/sign_up", methods=["POST"])
@limit_auth_per_address
@blp.arguments(SignUpSchema, example=SIGN_UP_EXAMPLE)
@blp.response(200, UserWithTokensSchema, headers=SET_DEVICE_COOKIE)
@errors(blp, 400, 413, 429, 503)
def sign_up(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Create an account

    Returns the new account with an access and a refresh token. The email is stored
    lowercase; a second account with the same email gets 400.
    """
    signed_in = account_service().sign_up(payload["email_address"], payload["password"], payload["confirm_password"])
    return _user_with_tokens(signed_in), NO_STORE


@blp.route("/sign_in", methods=["POST"])
# Form first: it is the original service's (same schema name), and Swagger UI's Authorize sends it.
# openapi-python-client <= 0.29.1 (its issue 1451) types a body offered in two content types as
# `... | Unset` but imports `Unset` only when something else of the operation is optional: here
# the `device` cookie. Without that parameter the generated sign-in module would not import;
# tests/e2e/test_sdk.py imports every generated module, so CI says so.
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": SignInFormSchema},
            "application/json": {"schema": SignInJsonSchema},
        },
    },
    parameters=[DEVICE_COOKIE],
)
@blp.response(200, UserWithTokensSchema, headers=SET_DEVICE_COOKIE)
@errors(blp, 401, 413, 422, 429, 503)
@one_attempt_at_a_time
@limit_auth_per_address
@limit_sign_in_failures
@limit_device_sign_in_failures
def sign_in() -> tuple[dict[str, Any], dict[str, str]]:
    """Sign in with email and password

    Send an OAuth2 password-flow form (`username` is the email) or JSON
    `{"email_address", "password"}`. Unknown email and wrong password get the same 401.
    After too many failed attempts on one account (default 5 in 15 minutes) every attempt on
    it gets 429 with `Retry-After` until the window passes, even with the right password,
    except from a client that signed in to the account before and sends the device cookie
    it got then: such a client has its own limit (default 5 failures in 15 minutes), so
    other clients' failures never lock it out.
    """
    password = _validated_password()
    # The email the body names, normalized once for this request (the limits used it already).
    return _user_with_tokens(account_service().sign_in(attempted_address(), password)), NO_STORE


def _validated_password() -> str:
    """The password of the form or the JSON body, once the body passed its schema (its email included)."""
    if request.mimetype in FORM_TYPES:
        form = SignInFormSchema().load(request.form.to_dict())
        password: str = form["password"]
        return password
    payload = request.get_json(silent=True, force=True)
    if payload is None:
        raise ValidationError("Invalid JSON body.")
    data = SignInJsonSchema().load(payload)
    password = data["password"]
    return password


@blp.route("/refresh_token", methods=["GET"])
@limit_auth_per_address
@blp.doc(parameters=[REFRESH_TOKEN_HEADER])
@blp.response(200, AccessTokenSchema)
@errors(blp, 401, 429, 503)
def refresh_token() -> tuple[dict[str, str], dict[str, str]]:
    """Get a new access token

    Send the refresh token in the `refresh-token` header. An access token is refused here,
    and so is a refresh token issued before the user's last sign-out.
    """
    claims = _refresh_claims()
    generation = generation_of(claims)
    user = session_service().user_for_refresh(uuid.UUID(claims["sub"]), generation)
    return {"access_token": issue_access_token(user.id, generation), "token_type": "bearer"}, NO_STORE


@blp.route("/sign_out", methods=["POST"])
@limit_auth_per_address
@blp.doc(parameters=[REFRESH_TOKEN_HEADER])
@blp.response(200, SignedOutSchema)
@errors(blp, 401, 429, 503)
def sign_out() -> tuple[dict[str, str], dict[str, str]]:
    """Sign out everywhere

    Send a refresh token in the `refresh-token` header. Every access and refresh token issued
    to you until now stops working, on every device, within a second.
    """
    claims = _refresh_claims()
    session_service().sign_out(uuid.UUID(claims["sub"]), generation_of(claims))
    return {"status": "signed out"}, NO_STORE


@blp.route("/change_password", methods=["POST"])
@jwt_required()
@one_attempt_at_a_time
@limit_sign_in_failures
@limit_device_sign_in_failures
@blp.arguments(ChangePasswordSchema, example=CHANGE_PASSWORD_EXAMPLE)
@blp.response(200, PasswordChangedSchema, headers=SET_DEVICE_COOKIE)
@blp.doc(security=BEARER_SECURITY)
@errors(blp, 400, 401, 413, 429, 503)
def change_password(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Change my password

    Send the current password and the new one (8 to 256 characters). Every other session of
    the account ends: access and refresh tokens issued before now are refused everywhere within
    a second. The answer carries a fresh token pair for you. A wrong current password is 401
    and counts toward the failed sign-in limit of the account.
    """
    changed = account_service().change_password(
        current_user_id(), payload["current_password"], payload["new_password"], payload["confirm_password"]
    )
    remember_device(changed.user.id, changed.password_version)  # the old cookies were for the old password
    return {"status": "password changed", **issue_tokens(changed.user.id, changed.generation)}, NO_STORE


@blp.route("/account", methods=["DELETE"])
@jwt_required()
@one_attempt_at_a_time
@limit_sign_in_failures
@limit_device_sign_in_failures
@blp.arguments(DeleteAccountSchema)
@blp.response(200, AccountDeletedSchema)
@blp.doc(security=BEARER_SECURITY)
@errors(blp, 401, 413, 429, 503)
def delete_account(payload: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Delete my account

    Confirm with your password. The account, all of its posts and its cached listing are gone;
    its tokens are refused everywhere within a second, and the email can sign up again. A wrong
    password is 401 and counts toward the failed sign-in limit of the account.
    """
    account_service().delete_account(current_user_id(), payload["password"])
    return {"status": "account deleted"}, NO_STORE
