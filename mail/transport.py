"""How one message leaves: over SMTP (STARTTLS, implicit TLS or plain), or into a file in development."""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from config import SmtpSettings

DEV_LOGGER_NAME = "posts.mail.development"
log = logging.getLogger(DEV_LOGGER_NAME)


class Transport(Protocol):
    """Sends one message or raises OSError (smtplib's errors are OSErrors too)."""

    def send(self, message: EmailMessage) -> None:
        """Hand the message over for delivery."""
        ...


class SmtpTransport:
    """One SMTP connection per message, each socket operation bounded by the timeout.

    A connection per message keeps no socket open between the rare reset mails, so there is
    no idle connection for the server to drop and no state to recover after an error.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def send(self, message: EmailMessage) -> None:
        """Connect, secure the connection as configured, sign in if configured, send, quit."""
        settings = self._settings
        if settings.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_seconds, context=self._tls_context()
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        with smtp:
            if settings.security == "starttls":
                smtp.starttls(context=self._tls_context())
            if settings.username is not None:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(message)

    def _tls_context(self) -> ssl.SSLContext:
        # Certificate and host name checked, as a browser would: the mail holds a live reset link.
        return ssl.create_default_context(cafile=self._settings.ca_file)


class DirectoryTransport:
    """Development without SMTP_HOST: each mail is written to a file in a directory instead of being sent.

    One `.eml` file per mail (any mail client opens it; its text holds the reset link and the
    `token=` value), readable by its owner only. The log says where it is, never what it
    holds: every field of every log line is redacted, and a reset link is a secret. This
    transport is never used in production.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def send(self, message: EmailMessage) -> None:
        """Write the message to a new file of the directory (made if missing) and log its path."""
        self._directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self._directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(message.as_bytes())
        log.warning(
            "development mail (SMTP_HOST is unset, not sent) to %s: %s, written to %s",
            message["To"],
            message["Subject"],
            path,
        )
