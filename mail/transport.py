"""How one message leaves: over SMTP (STARTTLS, implicit TLS or plain), or into the log in development."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
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


class LogTransport:
    """Development without SMTP_HOST: the mail is written to the log instead of being sent.

    The plain-text body, reset link included, is a structured field (`mail_text`) of a record of
    the `posts.mail.development` logger. Redaction covers messages and tracebacks, not a
    record's own fields, so the link stays usable; this transport is never used in production.
    """

    def send(self, message: EmailMessage) -> None:
        """Log the recipient, subject and text part."""
        text = message.get_body(preferencelist=("plain",))
        body = text.get_content() if text is not None else ""
        log.warning(
            "development mail (SMTP_HOST is unset, not sent) to %s: %s",
            message["To"],
            message["Subject"],
            extra={"mail_text": body},
        )
