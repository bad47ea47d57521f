"""Alembic migrations: `upgrade head` builds exactly the models' schema, `downgrade base` removes it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, insert, inspect, text
from sqlalchemy.pool import NullPool

from models.tables import Base, UserRow

REPO_ROOT = Path(__file__).resolve().parents[1]

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
TABLES = {"users", "posts", "password_reset_tokens", "password_reset_mails"}


def alembic_config(database_url: str) -> Config:
    """The project's Alembic config, aimed at `database_url` instead of DATABASE_URL."""
    config = Config(str(ALEMBIC_INI))
    # Config values go through ConfigParser interpolation: a literal "%" must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def table_names(database_url: str) -> set[str]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def schema_snapshot(database_url: str) -> dict[str, Any]:
    """What the server itself reports about each table, including what compare_metadata ignores.

    Alembic's comparison skips collations, DATETIME precision and table options; MySQL's
    SHOW CREATE TABLE shows them all. SQLite's PRAGMAs give columns, indexes and foreign keys.
    """
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {table: _describe(connection, table) for table in sorted(TABLES)}
    finally:
        engine.dispose()


def _describe(connection: Connection, table: str) -> Any:
    if connection.dialect.name == "sqlite":
        indexes = {
            row.name: (row.unique, [col.name for col in connection.exec_driver_sql(f"PRAGMA index_info('{row.name}')")])
            for row in connection.exec_driver_sql(f"PRAGMA index_list('{table}')")
        }
        return {
            "columns": sorted(tuple(row[1:]) for row in connection.exec_driver_sql(f"PRAGMA table_info('{table}')")),
            "indexes": indexes,
            "foreign_keys": sorted(
                tuple(row[2:]) for row in connection.exec_driver_sql(f"PRAGMA foreign_key_list('{table}')")
            ),
        }
    ddl = str(connection.execute(text(f"SHOW CREATE TABLE `{table}`")).one()[1])
    return re.sub(r" AUTO_INCREMENT=\d+", "", ddl)


def test_revisions_form_a_single_line() -> None:
    scripts = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    assert scripts.get_heads() == [scripts.get_current_head()]
    assert list(scripts.get_bases()) == ["0001"]


def test_upgrade_head_matches_models_and_downgrade_removes_tables(database_url: str) -> None:
    assert not table_names(database_url) & TABLES, "database_url must name an empty database"
    config = alembic_config(database_url)

    command.upgrade(config, "head")

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert context.get_current_revision() == ScriptDirectory.from_config(config).get_current_head()
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []

    command.downgrade(config, "base")

    assert not table_names(database_url) & TABLES


def test_upgrade_head_creates_the_same_schema_as_the_models(database_url: str) -> None:
    assert not table_names(database_url) & TABLES, "database_url must name an empty database"
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    migrated = schema_snapshot(database_url)
    command.downgrade(config, "base")

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        Base.metadata.create_all(engine)
        try:
            created = schema_snapshot(database_url)
        finally:
            Base.metadata.drop_all(engine)
    finally:
        engine.dispose()
    assert migrated == created


def _user_columns_and_rows(database_url: str) -> tuple[set[str], list[Any]]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            columns = {column["name"] for column in inspect(connection).get_columns("users")}
            rows = list(connection.execute(text("SELECT * FROM users")).mappings())
    finally:
        engine.dispose()
    return columns, rows


def test_0002_adds_and_removes_tokens_valid_after_keeping_accounts(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0001")
    now = datetime.now(UTC)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            # Only the columns revision 0001 has; the model's types bind the values per backend.
            connection.execute(
                insert(UserRow).values(
                    id=uuid.uuid4(),
                    email_address="ada@example.com",
                    password_hash="hash",
                    created_at=now,
                    updated_at=now,
                )
            )
    finally:
        engine.dispose()

    command.upgrade(config, "0002")
    columns, rows = _user_columns_and_rows(database_url)
    assert "tokens_valid_after" in columns
    assert [(row["email_address"], row["tokens_valid_after"]) for row in rows] == [("ada@example.com", None)]

    command.downgrade(config, "0001")
    columns, rows = _user_columns_and_rows(database_url)
    assert "tokens_valid_after" not in columns
    assert [row["email_address"] for row in rows] == ["ada@example.com"]
    command.downgrade(config, "base")


def test_0003_turns_the_cut_off_into_a_session_generation_and_back(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0002")
    now = datetime.now(UTC).replace(tzinfo=None)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for email, cut_off in (("ada@example.com", now), ("bob@example.com", None)):
                connection.execute(
                    text(
                        "INSERT INTO users (id, email_address, password_hash, created_at, updated_at,"
                        " tokens_valid_after) VALUES (:id, :email, 'hash', :now, :now, :cut_off)"
                    ),
                    {"id": uuid.uuid4().hex, "email": email, "now": now, "cut_off": cut_off},
                )
    finally:
        engine.dispose()

    command.upgrade(config, "0003")
    columns, rows = _user_columns_and_rows(database_url)
    assert "tokens_valid_after" not in columns
    # Ada had signed out: her pre-upgrade tokens (no claim, generation 0) stay refused.
    assert sorted((row["email_address"], row["session_generation"]) for row in rows) == [
        ("ada@example.com", 1),
        ("bob@example.com", 0),
    ]

    command.downgrade(config, "0002")
    columns, rows = _user_columns_and_rows(database_url)
    assert "session_generation" not in columns
    cut_offs = {row["email_address"]: row["tokens_valid_after"] for row in rows}
    assert cut_offs["ada@example.com"] is not None
    assert cut_offs["bob@example.com"] is None
    command.downgrade(config, "base")


def test_0005_carries_the_mail_window_over_into_the_log_and_back(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0004")
    started, last = datetime(2026, 12, 8, 12, 0), datetime(2026, 12, 8, 12, 9)
    ids = {email: uuid.uuid4().hex for email in ("ada@example.com", "bob@example.com")}
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for email, user_id in ids.items():
                connection.execute(
                    text(
                        "INSERT INTO users (id, email_address, password_hash, created_at, updated_at)"
                        " VALUES (:id, :email, 'hash', :now, :now)"
                    ),
                    {"id": user_id, "email": email, "now": started},
                )
            # Ada's window holds three mails (the first at its start, the last with her token); Bob's one.
            for user_id, mails, token in ((ids["ada@example.com"], 3, "a"), (ids["bob@example.com"], 1, "b")):
                connection.execute(
                    text(
                        "INSERT INTO password_reset_tokens (token_hash, user_id, created_at, expires_at,"
                        " session_generation, window_started_at, mails_in_window)"
                        " VALUES (:hash, :user_id, :last, :last, 0, :started, :mails)"
                    ),
                    {"hash": token * 64, "user_id": user_id, "last": last, "started": started, "mails": mails},
                )
        command.upgrade(config, "0005")
        with engine.connect() as connection:
            logged = sorted(
                (uuid.UUID(str(row.user_id)).hex, str(row.issued_at)[:19])
                for row in connection.execute(text("SELECT user_id, issued_at FROM password_reset_mails"))
            )
            token_columns = {column["name"] for column in inspect(connection).get_columns("password_reset_tokens")}
        # Never fewer mails than were sent: the first at the window's start, the others at the last.
        assert logged == sorted(
            [
                (ids["ada@example.com"], "2026-12-08 12:00:00"),
                (ids["ada@example.com"], "2026-12-08 12:09:00"),
                (ids["ada@example.com"], "2026-12-08 12:09:00"),
                (ids["bob@example.com"], "2026-12-08 12:00:00"),
            ]
        )
        assert not {"window_started_at", "mails_in_window"} & token_columns

        command.downgrade(config, "0004")
        with engine.connect() as connection:
            windows = {
                uuid.UUID(str(row.user_id)).hex: (str(row.window_started_at)[:19], row.mails_in_window)
                for row in connection.execute(
                    text("SELECT user_id, window_started_at, mails_in_window FROM password_reset_tokens")
                )
            }
        assert windows == {
            ids["ada@example.com"]: ("2026-12-08 12:00:00", 3),
            ids["bob@example.com"]: ("2026-12-08 12:00:00", 1),
        }
        assert "password_reset_mails" not in table_names(database_url)
    finally:
        engine.dispose()
    command.downgrade(config, "base")


def test_the_command_line_reports_its_progress(tmp_path: Path) -> None:
    # `alembic upgrade head` says what it ran, in the service's log format (JSON in production).
    env = {key: value for key, value in os.environ.items() if key not in ("LOG_FORMAT", "LOG_LEVEL")}
    env.update(
        APP_ENV="production",
        JWT_SECRET_KEY="migration-signing-key-that-is-at-least-32-bytes",
        DATABASE_URL=f"sqlite:///{tmp_path / 'posts.db'}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    messages = [record["message"] for record in records if record["logger"] == "alembic.runtime.migration"]
    assert any(message.startswith("Running upgrade  -> 0001") for message in messages), messages
    assert any(message.startswith("Running upgrade 0001 -> 0002") for message in messages), messages
