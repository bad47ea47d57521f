"""`flask users create|delete|list`: account administration."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from commands.errors import operator_errors
from dependencies import admin_service

users = AppGroup("users", help="Create, list and delete accounts.")


@users.command("create")
@click.argument("email")
@click.password_option(
    "--password", help="Prompted for (hidden, asked twice) when omitted; avoid passing it on the command line."
)
def create_user(email: str, password: str) -> None:
    """Create an account for EMAIL."""
    with operator_errors():
        user = admin_service().create_user(email, password)
    click.echo(f"created user {user.email_address} ({user.id})")


@users.command("delete")
@click.argument("email")
@click.confirmation_option(prompt="Delete this account and all of its posts?")
def delete_user(email: str) -> None:
    """Delete the account EMAIL and all of its posts."""
    with operator_errors():
        user = admin_service().delete_user(email)
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
