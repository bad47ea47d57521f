"""`flask demo-data`: fill a development database with demo accounts and posts."""

from __future__ import annotations

import random

import click
from flask import current_app
from flask.cli import with_appcontext

from commands.errors import operator_errors
from dependencies import admin_service, post_service
from services.emails import normalize_email
from services.errors import EmailTakenError

DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed for developers; refused in production
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "x-ray",
    "yankee",
    "zulu",
]


@click.command("demo-data")
@click.option("--users", "user_count", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--posts", "post_count", type=click.IntRange(0, 10_000), default=20, show_default=True, help="Per user.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible post texts.")
@with_appcontext
def demo_data(user_count: int, post_count: int, seed: int | None) -> None:
    """Create demo users demo-N@example.com (password: demo-password) with posts; existing ones are left alone.

    Refuses to run with APP_ENV=production.
    """
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("demo-data refuses to run with APP_ENV=production")
    rng = random.Random(seed)
    admin, posts = admin_service(), post_service()
    created = skipped = 0
    with operator_errors(), click.progressbar(length=user_count * (1 + post_count), label="demo data") as bar:
        for number in range(1, user_count + 1):
            try:
                user = admin.create_user(normalize_email(f"demo-{number}@example.com"), DEMO_PASSWORD)
            except EmailTakenError:
                skipped += 1
                bar.update(1 + post_count)
                continue
            created += 1
            bar.update(1)
            for _ in range(post_count):
                posts.add(user.id, " ".join(rng.choices(WORDS, k=rng.randint(3, 12))))
                bar.update(1)
    summary = f"created {created} user(s) with {post_count} post(s) each" if created else "created no user"
    if skipped:
        summary += f"; skipped {skipped} existing demo user(s), their posts untouched"
    click.echo(summary)
    click.echo(f"sign in as demo-N@example.com with password {DEMO_PASSWORD!r}")
