"""Domain errors; the HTTP layer maps each to one status code."""


class EmailTakenError(Exception):
    """Sign-up with an email that already has an account."""


class InvalidCredentialsError(Exception):
    """Unknown email or wrong password: deliberately indistinguishable."""


class UnknownUserError(Exception):
    """A token names a user that no longer exists."""


class TokenRevokedError(Exception):
    """A refresh token issued at or before the user's last sign-out."""


class PostNotFoundError(Exception):
    """The post does not exist or belongs to someone else."""


class PasswordMismatchError(Exception):
    """`confirm_password` was sent and differs from `password`."""


class InvalidPasswordError(ValueError):
    """A password outside the allowed length (8 to 256 characters)."""


class NoSuchAccountError(LookupError):
    """An operator named an email that has no account."""


class InvalidResetTokenError(Exception):
    """A password reset token that is unknown, expired, already used or superseded."""


class RecoveryNotConfiguredError(Exception):
    """Password reset by email is not configured (production without SMTP_HOST)."""
