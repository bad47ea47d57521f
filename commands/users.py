"""`flask users create|delete|list|reset-password|set-password`: account administration."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from commands.errors import operator_errors
from dependencies import account_service, admin_service, recovery_service
from resources import resources
from services.emails import normalize_email

users = AppGroup("users", help="Create, list and delete accounts; reset or set their passwords.")


@users.command("create")
@click.argument("email")
@click.password_option(
    "--password", help="Prompted for (hidden, asked twice) when omitted; avoid passing it on the command line."
)
def create_user(email: str, password: str) -> None:
    """Create an account for EMAIL."""
    with operator_errors():
        user = admin_service().create_user(normalize_email(email), password)
    click.echo(f"created user {user.email_address} ({user.id})")


@users.command("delete")
@click.argument("email")
@click.confirmation_option(prompt="Delete this account and all of its posts?")
def delete_user(email: str) -> None:
    """Delete the account EMAIL and all of its posts."""
    with operator_errors():
        user = admin_service().delete_user(normalize_email(email))
    click.echo(f"deleted user {user.email_address} ({user.id}) and their posts")


@users.command("list")
def list_users() -> None:
    """List every account: id, email, creation time and number of posts."""
    with operator_errors():
        summaries = admin_service().list_users()
    for summary in summaries:
        user = summary.user
        click.echo(f"{user.id}  {user.email_address}  {user.created_at.isoformat()}  posts={summary.posts}")
    click.echo(f"{len(summaries)} user(s)", err=True)


@users.command("reset-password")
@click.argument("email")
def send_reset_mail(email: str) -> None:
    """Send EMAIL the password reset mail the API sends (sent now, with the same retries)."""
    outbox = resources().outbox
    if outbox is None:
        raise click.ClickException("password reset by email is not configured: set SMTP_HOST")
    with operator_errors():
        address = normalize_email(email)
        user = admin_service().find(address)
        message = recovery_service().reset_mail(address)
    if message is None:
        raise click.ClickException(
            f"{user.email_address} had its reset mails for this window already (PASSWORD_RESET_MAILS_PER_WINDOW)"
        )
    if not outbox.deliver(message):
        raise click.ClickException("the mail could not be sent; see the log")
    click.echo(f"sent a reset mail to {user.email_address} ({user.id})")


@users.command("set-password")
@click.argument("email")
def set_password(email: str) -> None:
    """Set the password of EMAIL (prompted for, hidden, asked twice); every session of the account ends."""
    with operator_errors():
        user = admin_service().find(normalize_email(email))
    # Only ever prompted: a password on the command line would stay in the shell history and `ps`.
    password: str = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with operator_errors():
        account_service().set_password(user.id, password)
    click.echo(f"set the password of {user.email_address} ({user.id}); its sessions have ended")
