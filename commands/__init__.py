"""Flask CLI commands for operators: `flask --app wsgi users|posts|demo-data ...`."""

from __future__ import annotations

from flask import Flask

from commands.demo import demo_data
from commands.posts import posts
from commands.users import users


def register_commands(app: Flask) -> None:
    """Add the operator commands to `flask --app wsgi` (flask-smorest adds `openapi`)."""
    for command in (users, posts, demo_data):
        app.cli.add_command(command)
