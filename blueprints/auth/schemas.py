"""Wire schemas of the auth endpoints."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from blueprints.schemas import RequestSchema
from services.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, check_password
from services.emails import MAX_EMAIL_LENGTH, EmailAddress, InvalidEmailError, normalize_email
from services.errors import InvalidPasswordError

# One example account across the docs: sign up with it, then sign in with it (Swagger UI's
# "Try it out", and Schemathesis' examples phase, which the fuzzing test signs up for).
EXAMPLE_EMAIL = "ada@example.com"
EXAMPLE_PASSWORD = "correct horse battery"  # noqa: S105 - a documentation example, not a secret
EXAMPLE_NEW_PASSWORD = "battery staple horse"  # noqa: S105 - a documentation example, not a secret
# Tokens are 43 characters; the bound only keeps absurd bodies out of the hash.
MAX_RESET_TOKEN_LENGTH = 512


class EmailField(fields.String):
    """An email address, validated for syntax and length and returned in its normal (stored) form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> EmailAddress:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_email(text)
        except InvalidEmailError as exc:
            raise ValidationError(f"Not a valid email address: {exc}") from exc


def _follows_password_policy(password: str) -> None:
    """The account service's password policy, reported in the schema's words (a 422 on `body.password`)."""
    try:
        check_password(password)
    except InvalidPasswordError as exc:
        raise ValidationError(f"Length must be between {MIN_PASSWORD_LENGTH} and {MAX_PASSWORD_LENGTH}.") from exc


def _email_alias(data: Any) -> Any:
    """Accept `email` for `email_address` (the original task's wording); the canonical name wins."""
    if isinstance(data, dict) and "email_address" not in data and "email" in data:
        data = {**data, "email_address": data["email"]}
    return data


class SignUpSchema(RequestSchema):
    """Sign-up request. `email` is accepted as an alias of `email_address`."""

    email_address = EmailField(
        required=True,
        validate=validate.Length(max=MAX_EMAIL_LENGTH),
        metadata={"example": EXAMPLE_EMAIL, "format": "email"},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=_follows_password_policy,
        metadata={"example": EXAMPLE_PASSWORD, "minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH},
    )
    confirm_password = fields.String(load_only=True, load_default=None, metadata={"example": EXAMPLE_PASSWORD})

    @pre_load
    def _alias(self, data: Any, **_kwargs: Any) -> Any:
        return _email_alias(data)


def _sign_in_email() -> fields.String:
    """The email of a sign-in: only bounded here (the view normalizes it); an invalid one matches no account."""
    return fields.String(
        required=True, validate=validate.Length(1, MAX_EMAIL_LENGTH), metadata={"example": EXAMPLE_EMAIL}
    )


def _sign_in_password() -> fields.String:
    """The password of a sign-in, never echoed back."""
    return fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(1, MAX_PASSWORD_LENGTH),
        metadata={"example": EXAMPLE_PASSWORD},
    )


def _new_password() -> fields.String:
    """A new password (change or reset): the password policy applies, never echoed back."""
    return fields.String(
        required=True,
        load_only=True,
        validate=_follows_password_policy,
        metadata={"example": EXAMPLE_NEW_PASSWORD, "minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH},
    )


def _new_password_confirmation() -> fields.String:
    """The optional repeat of a new password."""
    return fields.String(
        load_only=True,
        load_default=None,
        metadata={"description": "When sent, must equal new_password.", "example": EXAMPLE_NEW_PASSWORD},
    )


class SignInJsonSchema(RequestSchema):
    """JSON sign-in. `email` is accepted as an alias of `email_address`."""

    email_address = _sign_in_email()
    password = _sign_in_password()

    @pre_load
    def _alias(self, data: Any, **_kwargs: Any) -> Any:
        return _email_alias(data)


def _ignored_oauth2_field(description: str) -> fields.String:
    """A field of the OAuth2 password-flow form that is accepted and ignored."""
    return fields.String(load_only=True, metadata={"description": f"{description} Accepted and ignored."})


class SignInFormSchema(RequestSchema):
    """OAuth2 password-flow sign-in form (`username` is the email), as Swagger UI's Authorize sends.

    Named and shaped as the original FastAPI service's form (FastAPI's OAuth2PasswordRequestForm),
    so an SDK generated from either document has the same sign-in model.
    """

    OPENAPI_NAME = "Body_sign_in_api_v1_auth_sign_in_post"

    grant_type = fields.String(load_only=True, metadata={"example": "password"})
    username = _sign_in_email()
    password = _sign_in_password()
    scope = _ignored_oauth2_field("OAuth2 scopes (this service has none).")
    client_id = _ignored_oauth2_field("OAuth2 client id.")
    client_secret = _ignored_oauth2_field("OAuth2 client secret.")


class UserWithTokensSchema(Schema):
    """The account with a fresh access and refresh token."""

    id = fields.UUID(required=True)
    email_address = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})


class AccessTokenSchema(Schema):
    """A new access token from refresh."""

    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})


class ChangePasswordSchema(RequestSchema):
    """A password change: the current password, and the new one (the password policy applies)."""

    current_password = _sign_in_password()
    new_password = _new_password()
    confirm_password = _new_password_confirmation()


class PasswordChangedSchema(Schema):
    """Password change confirmation, with a fresh token pair for the caller."""

    status = fields.String(required=True, metadata={"example": "password changed"})
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})


class DeleteAccountSchema(RequestSchema):
    """Account deletion, confirmed with the account's password."""

    password = _sign_in_password()


class AccountDeletedSchema(Schema):
    """Account deletion confirmation."""

    status = fields.String(required=True, metadata={"example": "account deleted"})


class SignedOutSchema(Schema):
    """Sign-out confirmation."""

    status = fields.String(required=True, metadata={"example": "signed out"})


class ForgotPasswordSchema(RequestSchema):
    """A reset mail request. `email` is accepted as an alias of `email_address`."""

    email_address = EmailField(
        required=True,
        validate=validate.Length(max=MAX_EMAIL_LENGTH),
        metadata={"example": EXAMPLE_EMAIL, "format": "email"},
    )

    @pre_load
    def _alias(self, data: Any, **_kwargs: Any) -> Any:
        return _email_alias(data)


class ResetRequestedSchema(Schema):
    """The answer to every reset mail request, whether the account exists or not."""

    status = fields.String(
        required=True, metadata={"example": "If the address has an account, a reset link is on its way."}
    )


class ResetPasswordSchema(RequestSchema):
    """A password reset: the token from the mail, and the new password (the password policy applies)."""

    token = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(1, MAX_RESET_TOKEN_LENGTH),
        metadata={"description": "The reset token from the mail (its `token=` value)."},
    )
    new_password = _new_password()
    confirm_password = _new_password_confirmation()


class PasswordResetSchema(Schema):
    """Password reset confirmation: every session of the account has ended; sign in with the new password."""

    status = fields.String(required=True, metadata={"example": "password reset"})
