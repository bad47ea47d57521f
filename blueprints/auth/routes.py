"""Sign-up, sign-in and refresh endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from flask import g, request
from marshmallow import ValidationError

from blueprints.auth.attempts import FORM_TYPES
from blueprints.auth.devices import COOKIE_NAME, remember_device
from blueprints.auth.limits import limit_auth_per_address, limit_device_sign_in_failures, limit_sign_in_failures
from blueprints.auth.schemas import (
    AccessTokenSchema,
    SignedOutSchema,
    SignInFormSchema,
    SignInJsonSchema,
    SignUpSchema,
    UserWithTokensSchema,
)
from blueprints.auth.tokens import issue_access_token, issue_tokens, issued_at, verify_refresh_token
from blueprints.errors import AuthenticationError
from blueprints.openapi import Blueprint, errors
from dependencies import account_service
from models.entities import User

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens.")

NO_STORE = {"Cache-Control": "no-store"}


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


def _user_with_tokens(user: User) -> dict[str, Any]:
    """The account and a fresh token pair; the client becomes a trusted device of this account."""
    g.user_id = user.id  # for the audit log
    remember_device(user.email_address)
    return {**user.model_dump(), **issue_tokens(user.id)}


def _refresh_claims() -> dict[str, Any]:
    """The verified claims of the `refresh-token` header; 401 when missing or invalid."""
    token = request.headers.get("refresh-token")
    if not token:
        raise AuthenticationError("Not authenticated")
    return verify_refresh_token(token)


@blp.route("/sign_up", methods=["POST"])
@limit_auth_per_address
@blp.arguments(SignUpSchema)
@blp.response(200, UserWithTokensSchema, headers=SET_DEVICE_COOKIE)
@errors(blp, 400, 413, 429, 503)
def sign_up(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Create an account

    Returns the new account with an access and a refresh token. The email is stored
    lowercase; a second account with the same email gets 400.
    """
    user = account_service().sign_up(payload["email_address"], payload["password"], payload["confirm_password"])
    return _user_with_tokens(user), NO_STORE


@blp.route("/sign_in", methods=["POST"])
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
    email, password = _credentials()
    user = account_service().sign_in(email, password)
    return _user_with_tokens(user), NO_STORE


def _credentials() -> tuple[str, str]:
    """Email and password from the form or the JSON body, validated by their schemas."""
    if request.mimetype in FORM_TYPES:
        form = SignInFormSchema().load(request.form.to_dict())
        return form["username"], form["password"]
    payload = request.get_json(silent=True, force=True)
    if payload is None:
        raise ValidationError("Invalid JSON body.")
    data = SignInJsonSchema().load(payload)
    return data["email_address"], data["password"]


@blp.route("/refresh_token", methods=["GET"])
@blp.doc(parameters=[REFRESH_TOKEN_HEADER])
@blp.response(200, AccessTokenSchema)
@errors(blp, 401, 503)
def refresh_token() -> tuple[dict[str, str], dict[str, str]]:
    """Get a new access token

    Send the refresh token in the `refresh-token` header. An access token is refused here,
    and so is a refresh token issued before the user's last sign-out.
    """
    claims = _refresh_claims()
    user = account_service().user_for_refresh(uuid.UUID(claims["sub"]), issued_at(claims))
    return {"access_token": issue_access_token(user.id), "token_type": "bearer"}, NO_STORE


@blp.route("/sign_out", methods=["POST"])
@blp.doc(parameters=[REFRESH_TOKEN_HEADER])
@blp.response(200, SignedOutSchema)
@errors(blp, 401, 503)
def sign_out() -> tuple[dict[str, str], dict[str, str]]:
    """Sign out everywhere

    Send a refresh token in the `refresh-token` header. Every refresh token issued to you
    until now stops working (on every device). Access tokens already issued are not checked
    against the database and stay valid until they expire (60 minutes by default).
    """
    claims = _refresh_claims()
    account_service().sign_out(uuid.UUID(claims["sub"]), issued_at(claims))
    return {"status": "signed out"}, NO_STORE
