"""Account recovery by email on both databases, with a real SMTP server (aiosmtpd on 127.0.0.1).

The mail goes out on the outbox's thread; `Recovery.settle` waits for it (a bounded wait,
never a timing assertion).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from config import ConfigError, load_settings
from mail.outbox import Outbox
from mail.transport import DEV_LOGGER_NAME
from models.tables import ResetMailRow, ResetTokenRow
from observability.logs import ConsoleFormatter, JsonFormatter
from observability.redaction import REDACTED, redact
from resources import bind, resources
from services.recovery import token_hash
from tests.support.api import ADA, PASSWORD, TEST_SECRET, Api, MakeClient, bearer
from tests.support.net import free_port
from tests.support.smtp import PASSWORD as RELAY_PASSWORD
from tests.support.smtp import USERNAME as RELAY_USER
from tests.support.smtp import SmtpServer, self_signed_certificate

NEW_PASSWORD = "a brand new passphrase"
REQUESTED = {"status": "If the address has an account, a reset link is on its way."}
INVALID = {"error": "Invalid or expired reset token"}
NOT_CONFIGURED = {"error": "Password reset by email is not configured"}
LINK = "https://app.example.com/reset?token={token}"
WAIT = 15.0  # bounds a wait for the outbox's thread
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")

StartSmtp = Callable[..., SmtpServer]


def sample(name: str) -> float:
    """The current value of a metric without labels (0 before its first increment)."""
    return REGISTRY.get_sample_value(name) or 0.0


def text_of(message: EmailMessage) -> str:
    """The plain-text part of a mail."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content())


def token_in(message: EmailMessage) -> str:
    """The reset token a mail carries (its `token=` value)."""
    match = _TOKEN.search(text_of(message))
    assert match, text_of(message)
    return match[1]


class Clock:
    """A clock that moves only when told: windows' edges are crossed without waiting for them."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock on by `delta`."""
        self.now += delta


class Recovery:
    """One app aimed at an SMTP server, with its API and the outbox to wait for."""

    def __init__(self, client: FlaskClient, smtp: SmtpServer | None) -> None:
        self.client = client
        self.api = Api(client)
        self.smtp = smtp
        self.app: Flask = client.application

    @property
    def outbox(self) -> Outbox:
        """The app's mail outbox."""
        outbox = resources(self.app).outbox
        assert outbox is not None
        return outbox

    def settle(self) -> None:
        """Wait until the outbox has done every queued job."""
        assert self.outbox.wait_idle(WAIT), "the outbox did not drain"

    def mail_token(self, email: str = ADA) -> str:
        """Ask for a reset mail for `email` (asserting 202) and answer the token it brought."""
        before = len(self.smtp.received) if self.smtp else 0
        response = self.api.forgot_password(email)
        assert response.status_code == 202, response.get_json()
        self.settle()
        assert self.smtp is not None
        received = self.smtp.wait_for(before + 1)
        return token_in(received[-1].message)

    def token_rows(self) -> int:
        """How many reset tokens the database holds."""
        with resources(self.app).engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ResetTokenRow)).scalar_one())

    def set_row(self, **values: Any) -> None:
        """Change every stored token row (its expiry) in the database itself."""
        with resources(self.app).engine.begin() as connection:
            connection.execute(update(ResetTokenRow).values(**values))

    def use_clock(self, clock: Clock | None = None) -> Clock:
        """Give the app's recovery `clock` (default: a new one at the current time); answer it."""
        clock = clock or Clock(datetime.now(UTC))
        found = resources(self.app)
        bind(self.app, replace(found, reset_policy=replace(found.reset_policy, clock=clock)))
        return clock


@pytest.fixture
def make_recovery(make_client: MakeClient, smtp_server: SmtpServer) -> Callable[..., Recovery]:
    """Factory: an app whose mail goes to `smtp_server` (or `smtp=` another), with setting overrides."""

    def make(smtp: SmtpServer | None = None, **overrides: Any) -> Recovery:
        server = smtp or smtp_server
        settings = {**server.settings(), "password_reset_url": LINK, "mail_retry_seconds": 0.01, **overrides}
        return Recovery(make_client(**settings), server)

    return make


@pytest.fixture
def rec(make_recovery: Callable[..., Recovery]) -> Recovery:
    """An app mailing the collecting SMTP server."""
    return make_recovery()


def test_the_mail_reaches_the_account_with_the_link_its_lifetime_and_a_note_to_ignore_it(
    rec: Recovery, smtp_server: SmtpServer
) -> None:
    rec.api.user()
    response = rec.api.forgot_password("ADA@example.com")
    assert response.status_code == 202 and response.get_json() == REQUESTED
    assert response.headers["Cache-Control"] == "no-store"
    rec.settle()
    [received] = smtp_server.wait_for(1)
    assert received.recipients == [ADA] and received.mail_from == "no-reply@localhost"
    message = received.message
    assert (message["From"], message["To"], message["Subject"]) == (
        "Posts API <no-reply@localhost>",
        ADA,
        "Reset your Posts API password",
    )
    assert message.get_content_type() == "multipart/alternative"
    token = token_in(message)
    assert len(token) >= 43
    link = LINK.format(token=token)
    text = text_of(message)
    assert link in text and "30 minutes" in text and "ignore this mail" in text
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert f'href="{link}"' in html and "30 minutes" in html and "ignore this mail" in html


def test_only_the_hash_of_the_token_is_stored(rec: Recovery) -> None:
    rec.api.user()
    token = rec.mail_token()
    with resources(rec.app).engine.connect() as connection:
        [stored] = connection.execute(select(ResetTokenRow.token_hash)).scalars().all()
    assert stored == token_hash(token) and token not in stored


def test_a_reset_sets_the_password_and_ends_every_session(rec: Recovery) -> None:
    user = rec.api.user()
    token = rec.mail_token()
    response = rec.api.reset_password(token, NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert response.status_code == 200 and response.get_json() == {"status": "password reset"}
    assert response.headers["Cache-Control"] == "no-store"
    # Ended by the password change's own conditional UPDATE: old access and refresh tokens are refused.
    assert rec.api.listing(user["access_token"]).status_code == 401
    assert rec.api.refresh(user["refresh_token"]).status_code == 401
    assert rec.api.sign_in(ADA, PASSWORD).status_code == 401
    signed_in = rec.api.sign_in(ADA, NEW_PASSWORD)
    assert signed_in.status_code == 200
    assert rec.api.listing(signed_in.get_json()["access_token"]).status_code == 200


def test_a_token_works_once(rec: Recovery) -> None:
    rec.api.user()
    token = rec.mail_token()
    assert rec.api.reset_password(token, NEW_PASSWORD).status_code == 200
    again = rec.api.reset_password(token, "yet another passphrase")
    assert again.status_code == 400 and again.get_json() == INVALID
    assert rec.api.sign_in(ADA, NEW_PASSWORD).status_code == 200


def test_an_expired_token_is_refused(rec: Recovery) -> None:
    rec.api.user()
    token = rec.mail_token()
    rec.set_row(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = rec.api.reset_password(token, NEW_PASSWORD)
    assert response.status_code == 400 and response.get_json() == INVALID
    assert rec.api.sign_in(ADA, PASSWORD).status_code == 200


def test_the_lifetime_is_configurable(make_recovery: Callable[..., Recovery], smtp_server: SmtpServer) -> None:
    rec = make_recovery(password_reset_minutes=5)
    rec.api.user()
    token = rec.mail_token()
    assert "within 5 minutes" in text_of(smtp_server.received[-1].message)
    with resources(rec.app).engine.connect() as connection:
        row = connection.execute(select(ResetTokenRow.created_at, ResetTokenRow.expires_at)).one()
    assert row.expires_at - row.created_at == timedelta(minutes=5)
    assert rec.api.reset_password(token, NEW_PASSWORD).status_code == 200


def test_a_newer_token_supersedes_the_older(rec: Recovery) -> None:
    rec.api.user()
    older = rec.mail_token()
    newer = rec.mail_token()
    assert older != newer and rec.token_rows() == 1
    assert rec.api.reset_password(older, NEW_PASSWORD).get_json() == INVALID
    assert rec.api.reset_password(newer, NEW_PASSWORD).status_code == 200


def test_a_password_change_since_the_mail_spends_the_token(rec: Recovery) -> None:
    token_of_session = rec.api.token()
    token = rec.mail_token()
    assert rec.api.change_password(token_of_session, PASSWORD, NEW_PASSWORD).status_code == 200
    response = rec.api.reset_password(token, "what the attacker wants")
    assert response.status_code == 400 and response.get_json() == INVALID
    assert rec.api.sign_in(ADA, NEW_PASSWORD).status_code == 200


def test_unknown_tokens_weak_passwords_and_mismatches_are_refused_without_spending_the_token(rec: Recovery) -> None:
    rec.api.user()
    token = rec.mail_token()
    unknown = rec.api.reset_password("not-a-token-we-issued", NEW_PASSWORD)
    assert unknown.status_code == 400 and unknown.get_json() == INVALID
    weak = rec.api.reset_password(token, "short")
    assert weak.status_code == 422
    assert weak.get_json()["extra"] == ["body.new_password: Length must be between 8 and 256."]
    mismatch = rec.api.reset_password(token, NEW_PASSWORD, confirm_password="something else")
    assert mismatch.status_code == 400
    assert mismatch.get_json() == {"error": "confirm_password does not match password"}
    missing = rec.client.post("/api/v1/auth/reset_password", json={"new_password": NEW_PASSWORD})
    assert missing.status_code == 422
    assert rec.api.reset_password(token, NEW_PASSWORD).status_code == 200


def test_known_and_unknown_addresses_answer_alike_and_only_the_known_gets_mail(
    rec: Recovery, smtp_server: SmtpServer
) -> None:
    rec.api.user()
    known = rec.api.forgot_password(ADA)
    unknown = rec.api.forgot_password("nobody@example.com")
    invalid_account = rec.api.forgot_password("nobody@example.org")
    for response in (known, unknown, invalid_account):
        assert response.status_code == 202 and response.get_data() == known.get_data()
        assert {k: v for k, v in response.headers if k != "X-Request-ID"} == {
            k: v for k, v in known.headers if k != "X-Request-ID"
        }
    rec.settle()
    assert [item.recipients for item in smtp_server.received] == [[ADA]]
    assert rec.client.post("/api/v1/auth/forgot_password", json={"email": "not an email"}).status_code == 422


def test_the_alias_email_is_accepted(rec: Recovery, smtp_server: SmtpServer) -> None:
    rec.api.user()
    assert rec.client.post("/api/v1/auth/forgot_password", json={"email": ADA}).status_code == 202
    rec.settle()
    assert [item.recipients for item in smtp_server.wait_for(1)] == [[ADA]]


def test_at_most_three_mails_per_address_per_window_silently(rec: Recovery, smtp_server: SmtpServer) -> None:
    clock = rec.use_clock()
    rec.api.user()
    answers = [rec.api.forgot_password(ADA) for _ in range(5)]
    assert {(r.status_code, r.get_data()) for r in answers} == {(202, answers[0].get_data())}
    rec.settle()
    assert len(smtp_server.received) == 3
    # The last mail's token still works: the refused requests replaced nothing.
    last = token_in(smtp_server.received[-1].message)
    # Once the window has passed, mail goes out again.
    clock.advance(timedelta(minutes=15, microseconds=1))
    assert rec.api.forgot_password(ADA).status_code == 202
    rec.settle()
    assert len(smtp_server.wait_for(4)) == 4
    assert rec.api.reset_password(last, NEW_PASSWORD).get_json() == INVALID  # superseded by the fourth


def test_the_mail_limit_is_configurable(make_recovery: Callable[..., Recovery], smtp_server: SmtpServer) -> None:
    rec = make_recovery(password_reset_mails_per_window=1, password_reset_window_minutes=60)
    rec.api.user()
    for _ in range(3):
        assert rec.api.forgot_password(ADA).status_code == 202
    rec.settle()
    assert len(smtp_server.received) == 1


def test_the_per_address_auth_limit_applies(make_recovery: Callable[..., Recovery]) -> None:
    rec = make_recovery(rate_limit_auth_per_address="2 per minute")
    assert [rec.api.forgot_password(ADA).status_code for _ in range(3)] == [202, 202, 429]
    refused = rec.api.reset_password("x", NEW_PASSWORD)
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_production_without_smtp_host_answers_501(make_client: MakeClient) -> None:
    client = make_client(app_env="production")
    api = Api(client)
    assert resources(client.application).outbox is None
    for response in (api.forgot_password(ADA), api.reset_password("some-token", NEW_PASSWORD)):
        assert response.status_code == 501 and response.get_json() == NOT_CONFIGURED


def test_development_without_smtp_host_writes_a_usable_mail_to_a_file_and_only_its_path_to_the_log(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"
    rec = Recovery(make_client(app_env="development", dev_mail_dir=str(mail_dir)), None)
    rec.api.user()
    with caplog.at_level(logging.INFO, logger=DEV_LOGGER_NAME):
        assert rec.api.forgot_password(ADA).status_code == 202
        rec.settle()
    [written] = mail_dir.glob("*.eml")
    assert written.stat().st_mode & 0o777 == 0o600  # a live reset link: its owner's only
    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage) and message["To"] == ADA
    token = token_in(message)
    # Readable as it lies on disk, as the README tells a developer: `token=<token>` in plain text.
    assert f"\ntoken={token}\n" in written.read_text()
    [record] = [r for r in caplog.records if r.name == DEV_LOGGER_NAME]
    assert ADA in record.getMessage() and str(written) in record.getMessage()
    # The log names the file, never the link: no field of the line holds the token, however written.
    for formatter in (ConsoleFormatter(), JsonFormatter()):
        assert token not in formatter.format(record)
    assert token not in caplog.text
    # The default link leads to a page this service serves (its Swagger UI, where
    # reset_password takes the token); the token rides in the fragment, never sent to a server.
    [link] = [word for word in text_of(message).split() if word.startswith("http")]
    page = urlsplit(link)
    assert (page.fragment, page.query) == (f"token={token}", "")
    served = rec.api.client.get(page.path)
    assert served.status_code == 200 and served.mimetype == "text/html"
    assert rec.api.reset_password(token, NEW_PASSWORD).status_code == 200


def test_the_development_mail_directory_is_made_when_missing_and_a_failure_is_counted(
    make_client: MakeClient, tmp_path: Path
) -> None:
    nested = tmp_path / "a" / "b"
    rec = Recovery(make_client(app_env="development", dev_mail_dir=str(nested), mail_attempts=1), None)
    rec.api.user()
    assert rec.api.forgot_password(ADA).status_code == 202
    rec.settle()
    assert len(list(nested.glob("*.eml"))) == 1
    # A path that cannot be a directory: the mail fails like an unreachable SMTP server would.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    broken = Recovery(make_client(app_env="development", dev_mail_dir=str(blocker), mail_attempts=1), None)
    broken.api.user("bob@example.com")
    failed = sample("posts_api_mail_failed_total")
    assert broken.api.forgot_password("bob@example.com").status_code == 202
    broken.settle()
    assert sample("posts_api_mail_failed_total") == failed + 1


def test_a_dead_smtp_server_costs_a_counted_failure_after_bounded_retries(
    make_recovery: Callable[..., Recovery], smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    rec = make_recovery(smtp_port=free_port(), mail_attempts=3)  # nothing listens there
    rec.api.user()
    failed, retried, sent = (sample(f"posts_api_mail_{kind}_total") for kind in ("failed", "retries", "sent"))
    with caplog.at_level(logging.WARNING, logger="posts.mail"):
        response = rec.api.forgot_password(ADA)
        assert response.status_code == 202 and response.get_json() == REQUESTED
        rec.settle()
    assert sample("posts_api_mail_failed_total") == failed + 1
    assert sample("posts_api_mail_retries_total") == retried + 2
    assert sample("posts_api_mail_sent_total") == sent
    assert "mail not sent after 3 attempts: ConnectionRefusedError" in caplog.text
    assert ADA not in caplog.text


def test_a_refusing_smtp_server_is_retried_then_given_up(
    make_recovery: Callable[..., Recovery], start_smtp: StartSmtp
) -> None:
    refusing = start_smtp(refuse="451 4.3.0 Try again later")
    rec = make_recovery(smtp=refusing, mail_attempts=2)
    rec.api.user()
    failed = sample("posts_api_mail_failed_total")
    assert rec.api.forgot_password(ADA).status_code == 202
    rec.settle()
    assert refusing.attempts == 2 and refusing.received == []
    assert sample("posts_api_mail_failed_total") == failed + 1


def test_a_slow_smtp_server_does_not_hold_the_answer(
    make_recovery: Callable[..., Recovery], start_smtp: StartSmtp
) -> None:
    slow = start_smtp(delay=1.0)
    rec = make_recovery(smtp=slow)
    rec.api.user()
    # The answer comes while the server is still in DATA: the mail is not on the request's time.
    assert rec.api.forgot_password(ADA).status_code == 202
    assert slow.received == []
    assert rec.api.sign_in().status_code == 200
    rec.settle()
    assert len(slow.received) == 1


def test_a_full_outbox_drops_and_counts_without_failing_the_request(
    make_recovery: Callable[..., Recovery], start_smtp: StartSmtp
) -> None:
    slow = start_smtp(delay=1.0)
    rec = make_recovery(smtp=slow, mail_queue_size=1)
    dropped = sample("posts_api_mail_dropped_total")
    # One job at most in the thread and one in the queue: of three, at least one is dropped.
    answers = [rec.api.forgot_password(f"user{index}@example.com").status_code for index in range(3)]
    assert answers == [202, 202, 202]
    assert sample("posts_api_mail_dropped_total") >= dropped + 1
    rec.settle()


def test_starttls_with_login(make_recovery: Callable[..., Recovery], start_smtp: StartSmtp, tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path)
    if certificate is None:
        pytest.skip("openssl is not installed; the TLS paths need a certificate")
    server = start_smtp(security="starttls", certificate=certificate)
    rec = make_recovery(
        smtp=server, smtp_ca_file=str(certificate[0]), smtp_username=RELAY_USER, smtp_password=RELAY_PASSWORD
    )
    rec.api.user()
    assert rec.api.reset_password(rec.mail_token(), NEW_PASSWORD).status_code == 200
    assert server.received[0].recipients == [ADA]


def test_implicit_tls_and_an_untrusted_certificate(
    make_recovery: Callable[..., Recovery], start_smtp: StartSmtp, tmp_path: Path
) -> None:
    certificate = self_signed_certificate(tmp_path)
    if certificate is None:
        pytest.skip("openssl is not installed; the TLS paths need a certificate")
    server = start_smtp(security="tls", certificate=certificate)
    rec = make_recovery(smtp=server, smtp_ca_file=str(certificate[0]))
    rec.api.user()
    rec.mail_token()
    # Without the CA, the server's certificate is refused: no mail, a counted failure.
    untrusting = make_recovery(smtp=server, mail_attempts=1)
    failed = sample("posts_api_mail_failed_total")
    assert untrusting.api.forgot_password(ADA).status_code == 202
    untrusting.settle()
    assert len(server.received) == 1
    assert sample("posts_api_mail_failed_total") == failed + 1


def test_recovery_is_audited(rec: Recovery, caplog: pytest.LogCaptureFixture) -> None:
    user = rec.api.user()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="posts.audit"):
        token = rec.mail_token()
        rec.api.reset_password("unknown", NEW_PASSWORD)
        rec.api.reset_password(token, NEW_PASSWORD)
    events = [(r.__dict__["event"], r.__dict__["status"]) for r in caplog.records if r.name == "posts.audit"]
    assert events == [("password_reset_requested", 202), ("password_reset_failed", 400), ("password_reset", 200)]
    records = [r.__dict__ for r in caplog.records if r.name == "posts.audit"]
    assert "account" in records[0] and records[2]["user_id"] == user["id"]
    assert token not in caplog.text and ADA not in caplog.text


def test_token_in_a_logged_url_is_redacted() -> None:
    link = LINK.format(token="secret-reset-token")
    for text in (link, "GET /reset?token=secret-reset-token HTTP/1.1", f"mail link {link}&x=1"):
        assert "secret-reset-token" not in redact(text) and f"token={REDACTED}" in redact(text)
    record = logging.LogRecord("posts.test", logging.INFO, __file__, 1, "opened %s", (link,), None)
    for formatter in (ConsoleFormatter(), JsonFormatter()):
        assert "secret-reset-token" not in formatter.format(record)


def test_a_deleted_account_takes_its_tokens_along(rec: Recovery) -> None:
    access = rec.api.token()
    token = rec.mail_token()
    assert rec.api.delete_account(access).status_code == 200
    assert rec.token_rows() == 0
    assert rec.api.reset_password(token, NEW_PASSWORD).get_json() == INVALID


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"smtp_security": "ssl"}, "SMTP_SECURITY"),
        ({"smtp_port": "0"}, "SMTP_PORT"),
        ({"smtp_host": "mail", "smtp_username": "u"}, "SMTP_USERNAME and SMTP_PASSWORD go together"),
        ({"password_reset_url": "https://x.example/reset"}, "PASSWORD_RESET_URL"),
        ({"password_reset_url": "ftp://x.example/{token}"}, "PASSWORD_RESET_URL"),
        ({"password_reset_url": "https://x.example/{token}/{user}"}, "PASSWORD_RESET_URL"),
        ({"mail_from": "nobody"}, "MAIL_FROM"),
        ({"password_reset_minutes": "0"}, "PASSWORD_RESET_MINUTES"),
        ({"password_reset_mails_per_window": "0"}, "PASSWORD_RESET_MAILS_PER_WINDOW"),
        ({"app_env": "production", "smtp_host": "mail"}, "PASSWORD_RESET_URL must be set"),
        (
            {"app_env": "production", "smtp_host": "mail", "password_reset_url": LINK},
            "MAIL_FROM must be set",
        ),
    ],
)
def test_mail_settings_are_validated(overrides: dict[str, str], problem: str) -> None:
    env = {"JWT_SECRET_KEY": TEST_SECRET, **{key.upper(): value for key, value in overrides.items()}}
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_settings(env)


def test_smtp_settings_keep_the_password_out_of_reprs_and_errors() -> None:
    secret = "relay-secret-value"
    settings = load_settings(
        {
            "JWT_SECRET_KEY": TEST_SECRET,
            "SMTP_HOST": "mail.example.com",
            "SMTP_SECURITY": "tls",
            "SMTP_USERNAME": "relay",
            "SMTP_PASSWORD": secret,
        }
    )
    smtp = settings.smtp()
    assert smtp is not None and smtp.port == 465 and smtp.password == secret
    assert secret not in repr(settings) and secret not in repr(smtp) and secret not in str(settings.model_dump())
    with pytest.raises(ConfigError) as failure:
        load_settings({"JWT_SECRET_KEY": TEST_SECRET, "SMTP_PASSWORD": secret, "SMTP_PORT": "nope"})
    assert secret not in str(failure.value)
    assert load_settings({"JWT_SECRET_KEY": TEST_SECRET, "SMTP_HOST": ""}).smtp() is None


def test_a_token_row_always_names_an_account(rec: Recovery) -> None:
    # The foreign key refuses a row for no account: a token always names a real account.
    now = datetime.now(UTC)
    row = {
        "token_hash": "0" * 64,
        "user_id": uuid.uuid4(),
        "created_at": now,
        "expires_at": now,
        "session_generation": 0,
    }
    with pytest.raises(IntegrityError), resources(rec.app).engine.begin() as connection:
        connection.execute(insert(ResetTokenRow).values(**row))


def test_a_reset_is_refused_with_an_old_access_token_in_the_header(rec: Recovery) -> None:
    # The reset token is the credential: an Authorization header neither helps nor hurts.
    user = rec.api.user()
    token = rec.mail_token()
    response = rec.client.post(
        "/api/v1/auth/reset_password",
        json={"token": token, "new_password": NEW_PASSWORD},
        headers=bearer(user["access_token"]),
    )
    assert response.status_code == 200


def cli(app: Flask, *args: str, input: str | None = None) -> Any:
    """Run a `flask` command of `app` through Click's runner."""
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_cli_reset_password_sends_the_same_mail(rec: Recovery, smtp_server: SmtpServer) -> None:
    rec.api.user()
    result = cli(rec.app, "users", "reset-password", "ADA@example.com")
    assert result.exit_code == 0, result.output
    assert f"sent a reset mail to {ADA}" in result.output
    [received] = smtp_server.wait_for(1)
    assert received.recipients == [ADA] and received.message["Subject"] == "Reset your Posts API password"
    assert rec.api.reset_password(token_in(received.message), NEW_PASSWORD).status_code == 200


def test_cli_reset_password_refuses_unknown_accounts_and_a_dead_server(
    make_recovery: Callable[..., Recovery], rec: Recovery
) -> None:
    unknown = cli(rec.app, "users", "reset-password", "nobody@example.com")
    assert unknown.exit_code == 1 and "no account with email nobody@example.com" in unknown.output
    dead = make_recovery(smtp_port=free_port(), mail_attempts=1)
    dead.api.user()
    result = cli(dead.app, "users", "reset-password", ADA)
    assert result.exit_code == 1 and "could not be sent" in result.output


def test_cli_reset_password_without_mail_in_production(make_client: MakeClient) -> None:
    client = make_client(app_env="production")
    result = cli(client.application, "users", "reset-password", ADA)
    assert result.exit_code == 1 and "not configured" in result.output


def test_cli_set_password_prompts_hidden_twice_and_ends_every_session(rec: Recovery) -> None:
    user = rec.api.user()
    result = cli(rec.app, "users", "set-password", "Ada@Example.com", input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output  # hidden input is not echoed
    assert "its sessions have ended" in result.output
    assert rec.api.listing(user["access_token"]).status_code == 401
    assert rec.api.refresh(user["refresh_token"]).status_code == 401
    assert rec.api.sign_in(ADA, NEW_PASSWORD).status_code == 200


def test_cli_set_password_asks_again_on_a_mismatch_and_refuses_weak_ones(rec: Recovery) -> None:
    rec.api.user()
    mismatch = cli(rec.app, "users", "set-password", ADA, input="first password\nsecond password\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output
    weak = cli(rec.app, "users", "set-password", ADA, input="short\nshort\n")
    assert weak.exit_code == 1 and "invalid password" in weak.output
    assert rec.api.sign_in(ADA, PASSWORD).status_code == 200
    unknown = cli(rec.app, "users", "set-password", "nobody@example.com", input="x\n")
    assert unknown.exit_code == 1 and "no account" in unknown.output
    # No --password option: a password never goes on the command line.
    assert cli(rec.app, "users", "set-password", ADA, "--password", NEW_PASSWORD).exit_code == 2


def test_the_mail_limit_holds_across_hosts_sharing_the_database(
    make_recovery: Callable[..., Recovery], smtp_server: SmtpServer
) -> None:
    # Two apps stand for two hosts: each has its own outbox thread, both count in the one database.
    hosts = [make_recovery(), make_recovery()]
    hosts[0].api.user()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda index: hosts[index % 2].api.forgot_password(ADA).status_code, range(8)))
    assert answers == [202] * 8
    for host in hosts:
        host.settle()
    assert len(smtp_server.received) == 3
    assert hosts[0].token_rows() == 1


def _device_cookie(response: Any) -> str | None:
    """The `device=...` pair a response sets, if it sets one."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("device="):
            pair: str = header.split(";", 1)[0]
            return pair
    return None


def test_a_reset_by_mail_signs_the_resetting_client_in_despite_a_strangers_lockout(
    rec: Recovery, smtp_server: SmtpServer
) -> None:
    owner_device = _device_cookie(rec.api.sign_up())  # the owner's old device, under the old password
    assert owner_device is not None
    # A stranger's failed sign-ins lock the account for every client without a device cookie.
    for _ in range(5):
        assert rec.api.sign_in(ADA, "a stranger's guess").status_code == 401
    assert rec.api.sign_in(ADA, PASSWORD).status_code == 429
    # The owner, on a client that never signed in, proves the mailbox.
    token = rec.mail_token()
    refused = rec.api.reset_password("not-a-token-we-issued", NEW_PASSWORD)
    assert refused.status_code == 400 and _device_cookie(refused) is None
    reset = rec.api.reset_password(token, NEW_PASSWORD)
    assert reset.status_code == 200, reset.get_json()
    resetting_device = _device_cookie(reset)
    assert resetting_device is not None and "HttpOnly" in reset.headers["Set-Cookie"]
    # That client signs in with the new password: 200, not 429.
    signed_in = rec.api.sign_in(ADA, NEW_PASSWORD, headers={"Cookie": resetting_device})
    assert signed_in.status_code == 200, signed_in.get_json()
    # Everyone else is still a stranger: no cookie, or a cookie for the password the reset replaced.
    assert rec.api.sign_in(ADA, NEW_PASSWORD).status_code == 429
    assert rec.api.sign_in(ADA, NEW_PASSWORD, headers={"Cookie": owner_device}).status_code == 429


WINDOW = timedelta(minutes=15)


class MailLog:
    """Asks for reset mails at the times of `clock` and notes when each one that went out was asked for."""

    def __init__(self, rec: Recovery, smtp: SmtpServer, clock: Clock) -> None:
        self.rec, self.smtp, self.clock = rec, smtp, clock
        self.sent_at: list[datetime] = []

    def ask(self, times: int = 1) -> int:
        """Ask `times` times now; how many mails went out."""
        for _ in range(times):
            before = len(self.smtp.received)
            assert self.rec.api.forgot_password(ADA).status_code == 202
            self.rec.settle()
            if len(self.smtp.received) > before:
                self.sent_at.append(self.clock())
        return len(self.smtp.received)

    def most_in_any_window(self) -> int:
        """The most mails within any span of the window's length (closed at both ends)."""
        return max(
            (sum(1 for other in self.sent_at if start <= other <= start + WINDOW) for start in self.sent_at), default=0
        )


def test_at_most_three_mails_in_any_fifteen_minutes_across_a_windows_edge(
    rec: Recovery, smtp_server: SmtpServer
) -> None:
    mails = MailLog(rec, smtp_server, rec.use_clock())
    rec.api.user()
    assert mails.ask() == 1
    mails.clock.advance(WINDOW - timedelta(milliseconds=100))
    assert mails.ask(3) == 3  # two more, then the limit
    # 200 ms later a fixed window would begin afresh (3 more mails); only the first mail has left.
    mails.clock.advance(timedelta(milliseconds=200))
    assert mails.ask(3) == 4
    # Exactly at the window's length after the second and third mails, they still count ...
    mails.clock.advance(WINDOW - timedelta(milliseconds=200))
    assert mails.ask() == 4
    # ... and a microsecond later they do not.
    mails.clock.advance(timedelta(microseconds=1))
    assert mails.ask(3) == 6
    assert mails.most_in_any_window() == 3
    # The log keeps no more than the window needs.
    with resources(rec.app).engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ResetMailRow)).scalar_one() == 3


def test_a_successful_reset_and_newer_tokens_forget_no_mail(rec: Recovery, smtp_server: SmtpServer) -> None:
    mails = MailLog(rec, smtp_server, rec.use_clock())
    rec.api.user()
    assert mails.ask(3) == 3  # each one a newer token, replacing the one before
    last = token_in(smtp_server.received[-1].message)
    mails.clock.advance(timedelta(minutes=1))
    assert rec.api.reset_password(last, NEW_PASSWORD).status_code == 200
    assert rec.token_rows() == 0
    # The reset spent the token, not the mails: nothing more goes out until the window has passed.
    assert mails.ask(3) == 3
    mails.clock.advance(WINDOW - timedelta(minutes=1, microseconds=1))
    assert mails.ask() == 3
    mails.clock.advance(timedelta(microseconds=2))
    assert mails.ask(4) == 6
    assert mails.most_in_any_window() == 3
    # The mails of a deleted account go with it.
    signed_in = rec.api.sign_in(ADA, NEW_PASSWORD)
    assert rec.api.delete_account(signed_in.get_json()["access_token"], NEW_PASSWORD).status_code == 200
    with resources(rec.app).engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ResetMailRow)).scalar_one() == 0
