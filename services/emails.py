"""Email addresses: the one normalization every entry applies, and the type that says it was applied.

Sign-up, sign-in (form and JSON), the failed-sign-in limit's account key, device cookies,
recovery and the operator CLI each turn the text they were given into an `EmailAddress` once,
with `normalize_email`; services and repositories take `EmailAddress` and never normalize again.

The normal form is email-validator's (syntax checked, the local part in Unicode NFC, the domain
through IDNA), lowercased, then NFC again, repeated until nothing changes: lowercasing can undo
NFC (`Ϊ` + combining acute lowercases to `ϊ` + acute, which NFC composes into `ΐ`), so one
pass is not idempotent. Stopping only at a fixed point makes `normalize_email(normalize_email(x))
== normalize_email(x)` hold by construction; tests/test_emails.py checks it over every letter.
"""

from __future__ import annotations

import unicodedata
from typing import NewType

from email_validator import EmailNotValidError, validate_email

EmailAddress = NewType("EmailAddress", str)
"""An address in its normal form, as stored in users.email_address: only normalize_email makes one."""

# The schemas' bound; email-validator holds the normal form to 254 octets of UTF-8, which is stricter.
MAX_EMAIL_LENGTH = 254
# Every letter of Unicode reaches the fixed point in two passes (tests/test_emails.py); a text
# that needs more is refused rather than looped over.
MAX_PASSES = 4


class InvalidEmailError(ValueError):
    """The text is not a syntactically valid email address whose normal form has at most 254 octets."""


def normalize_email(text: str) -> EmailAddress:
    """The normal form of an email address (what is stored and looked up); InvalidEmailError if it has none.

    Case and Unicode composition never make a second account: every spelling of one address
    that differs only in those has the same normal form.
    """
    current = text
    for _ in range(MAX_PASSES):
        folded = _one_pass(current)
        if folded == current:
            # The last pass validated this very form, its length (254 octets of UTF-8) included.
            return EmailAddress(folded)
        current = folded
    raise InvalidEmailError("The address has no stable normal form.")


def email_or_none(text: str) -> EmailAddress | None:
    """The normal form of `text`, or None when it is not a valid address (a sign-in with it matches no account)."""
    try:
        return normalize_email(text)
    except InvalidEmailError:
        return None


def _one_pass(text: str) -> str:
    """email-validator's normalized form, lowercased, in NFC."""
    try:
        validated = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidEmailError(str(exc)) from exc
    return unicodedata.normalize("NFC", validated.lower())
