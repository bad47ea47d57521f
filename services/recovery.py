"""Account recovery rules: reset tokens (issued, checked, spent) and the reset mail.

A token is 32 random bytes (URL-safe base64); only its sha256 is stored, so a copy of the
database holds no usable link. A token opens one reset: it is refused once used, once expired,
once a newer one was issued for the account (the new row replaces the old), and once the
account's sessions ended since it was issued (a password change or reset, a sign-out: the row
holds the session generation at issue, and the password is set only while the account is still
in it). The new password is set through AccountService, in the one conditional UPDATE a password
change makes, so the reset ends every session exactly as a password change does.

Each reset mail is logged apart from its token, so "at most N mails per address in any window"
holds over every span of the window's length, across a newer token and a successful reset.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape

from repositories.reset_tokens import MailWindow, ResetTokenRepository
from services.accounts import AccountService, check_password
from services.emails import EmailAddress
from services.errors import InvalidResetTokenError, PasswordMismatchError

TOKEN_BYTES = 32
SUBJECT = "Reset your Posts API password"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC: the reset policy's clock."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ResetPolicy:
    """What the settings say about recovery: the link, the lifetime, the mail limit, the sender; and its clock.

    The clock dates tokens and mails and judges expiry and the mail limit; tests set one of
    their own to cross a window's edge without waiting for it.
    """

    link_template: str
    lifetime: timedelta
    window: MailWindow
    sender: str
    clock: Callable[[], datetime] = utc_now


@dataclass(frozen=True)
class PasswordReset:
    """A reset that took effect: the account, and its new password version.

    Proof of the mailbox is as good as the password: the device that reset signs in with it
    (it gets a device cookie for the new password, as after a password change).
    """

    user_id: uuid.UUID
    password_version: str


def token_hash(token: str) -> str:
    """The stored form of a token: its sha256, hex (a token has 256 random bits, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def reset_message(policy: ResetPolicy, recipient: str, token: str) -> EmailMessage:
    """The reset mail: plain text and HTML alternatives, each with the link, its lifetime and a note to ignore it."""
    link = policy.link_template.format(token=token)
    minutes = int(policy.lifetime.total_seconds() // 60)
    message = EmailMessage()
    message["From"] = policy.sender
    message["To"] = recipient
    message["Subject"] = SUBJECT
    message["Message-ID"] = make_msgid(domain=policy.sender.rpartition("@")[2].strip("> ") or None)
    # Lines under 78 characters keep the text part 7-bit (no quoted-printable `=3D`), so the
    # development mail file shows `token=<token>` as the README says.
    message.set_content(
        "Someone asked to reset the password of your Posts API account.\n\n"
        f"To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n"
        "If the link does not open, send this reset token to the reset page:\n\n"
        f"token={token}\n\n"
        "It works once, and signs you out everywhere.\n\n"
        "If you did not ask for this, ignore this mail: your password stays as it is.\n"
    )
    html_link = escape(link, quote=True)
    message.add_alternative(
        "<html><body>"
        "<p>Someone asked to reset the password of your Posts API account.</p>"
        f'<p>To choose a new password, open <a href="{html_link}">this link</a> within {minutes} minutes:<br>'
        f"{html_link}</p>"
        "<p>It works once, and signs you out everywhere.</p>"
        "<p>If you did not ask for this, ignore this mail: your password stays as it is.</p>"
        "</body></html>",
        subtype="html",
    )
    return message


class RecoveryService:
    """Issues reset mails and resets passwords with their tokens."""

    def __init__(self, tokens: ResetTokenRepository, accounts: AccountService, policy: ResetPolicy) -> None:
        self._tokens = tokens
        self._accounts = accounts
        self._policy = policy

    def reset_mail(self, email_address: EmailAddress) -> EmailMessage | None:
        """A new token for the account with this email, in its mail; None (nothing stored) for no such
        account, or when the account had its reset mails for the window already.

        Runs off the request (mail.outbox), so whether an account exists shows in no answer.
        """
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._policy.clock()
        issued = self._tokens.issue(email_address, token_hash(token), now, self._policy.lifetime, self._policy.window)
        if issued is None:
            return None
        return reset_message(self._policy, email_address, token)

    def reset_password(self, token: str, new_password: str, confirm_password: str | None = None) -> PasswordReset:
        """Set the new password of the token's account and end all of its sessions; the account and its new version.

        InvalidResetTokenError for a token that is unknown, expired, spent or superseded. The
        password's own problems are checked first, so they do not spend the token.
        """
        check_password(new_password)
        if confirm_password is not None and confirm_password != new_password:
            raise PasswordMismatchError
        digest = token_hash(token)
        found = self._tokens.find(digest)
        if found is None or found.expires_at <= self._policy.clock():
            raise InvalidResetTokenError
        if not self._tokens.spend(digest):
            raise InvalidResetTokenError  # a concurrent reset used it first
        # Conditional on the token's generation, in the same UPDATE that sets the password: a
        # password change, reset or sign-out committed since the mail, even one racing this
        # request, leaves the password alone.
        version = self._accounts.set_password_in_generation(found.user_id, found.session_generation, new_password)
        if version is None:
            raise InvalidResetTokenError
        return PasswordReset(found.user_id, version)
