"""`flask posts purge --user EMAIL`: delete every post of one account."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from commands.errors import operator_errors
from dependencies import admin_service
from services.emails import normalize_email

posts = AppGroup("posts", help="Post administration.")


@posts.command("purge")
@click.option("--user", "email", required=True, help="Email of the account whose posts are deleted.")
@click.confirmation_option(prompt="Delete every post of this account?")
def purge(email: str) -> None:
    """Delete every post of one account (the account stays)."""
    with operator_errors():
        deleted = admin_service().purge_posts(normalize_email(email))
    click.echo(f"deleted {deleted} post(s) of {email}")
