"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): it collects what it receives, or is slow, or refuses.

`SmtpServer` runs aiosmtpd's Controller on a thread of its own, on a free port; `received`
holds each accepted message parsed with the standard library. TLS variants use a self-signed
certificate made with the `openssl` command (`self_signed_certificate`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.net import free_port

# aiosmtpd logs every command (recipients, message sizes) at INFO under "mail.log": the
# server under test is not what the tests read logs for.
logging.getLogger("mail.log").setLevel(logging.WARNING)

USERNAME = "relay-user"
PASSWORD = "relay-password"


@dataclass(frozen=True)
class Received:
    """One message the server accepted: the envelope and the parsed message."""

    mail_from: str
    recipients: list[str]
    message: EmailMessage


class _Handler:
    """aiosmtpd handler: waits `delay` seconds in DATA, then accepts (collecting) or answers `refuse`."""

    def __init__(self, delay: float, refuse: str | None) -> None:
        self.delay = delay
        self.refuse = refuse
        self.received: list[Received] = []
        self.attempts = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self.lock:
            self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse is not None:
            return self.refuse
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USERNAME.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def self_signed_certificate(directory: Path) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1 and its key, made by `openssl`; None when openssl is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *subject, *files],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class SmtpServer:
    """aiosmtpd on 127.0.0.1:<free port>, plain, STARTTLS (required, with login) or implicit TLS."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        refuse: str | None = None,
        security: Literal["none", "starttls", "tls"] = "none",
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.handler = _Handler(delay, refuse)
        self.port = free_port()
        self.security = security
        kwargs: dict[str, Any] = {}
        if security != "none":
            assert certificate is not None, "a TLS server needs a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
            if security == "tls":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(
                    tls_context=context, require_starttls=True, authenticator=_authenticate, auth_required=True
                )
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> SmtpServer:
        """Listen; answers once the server greets."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        """Every message accepted so far, in order."""
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def attempts(self) -> int:
        """How many DATA commands the server saw (accepted or refused)."""
        with self.handler.lock:
            return self.handler.attempts

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages once at least `count` arrived; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} mails after {timeout}s"
            time.sleep(0.02)
        return self.received

    def settings(self) -> dict[str, Any]:
        """The app's settings that aim its mail at this server."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": self.security}
