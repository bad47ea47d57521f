"""Alembic environment: migrates the database the service itself would use.

The URL comes from ``config.load_settings().database_url`` (the DATABASE_URL
environment variable, else the development SQLite file under instance/), unless a
caller already set ``sqlalchemy.url`` on the Alembic ``Config`` (tests do, with
``Config.set_main_option``). A caller may instead pass an open SQLAlchemy
``Connection`` as ``config.attributes["connection"]``.

Online, the engine comes from ``repositories.database.build_engine`` so migrations connect
exactly like the app does (utf8mb4 on MySQL/MariaDB, the SQLite parent directory
created on demand). On SQLite, foreign keys are switched off while migrating:
batch mode rebuilds a table by copying it and dropping the original, and with
``PRAGMA foreign_keys=ON`` that drop would cascade-delete the referencing rows.
"""

from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from config import ConfigError, Settings, load_env_file, load_settings
from models.tables import Base
from observability.logs import choose_format, configure_logging, refuse_to_start
from repositories.database import build_engine

config = context.config
# `alembic ...` is an entry point like the others; a caller of alembic's API (the tests) keeps
# its own environment and loggers, and gets exceptions rather than an exit.
COMMAND_LINE = config.cmd_opts is not None
if COMMAND_LINE:
    load_env_file()


def _settings() -> Settings:
    """The service's settings; a bad configuration stops the command in one line."""
    try:
        return load_settings()
    except ConfigError as error:
        if COMMAND_LINE:
            refuse_to_start(f"Error: {error}")
        raise SystemExit(f"Error: {error}") from None


# The service's one log stream, JSON in production, with alembic's progress lines at INFO
# (the service itself keeps alembic.runtime.migration quiet: observability.logs).
if COMMAND_LINE:
    _cli_settings = _settings()
    configure_logging(choose_format(_cli_settings.log_format, _cli_settings.app_env), "WARNING")
    for _name in ("alembic", "alembic.runtime.migration"):
        logging.getLogger(_name).setLevel(logging.INFO)

target_metadata = Base.metadata


def _database_url() -> str:
    """The URL set on the Config by a caller, else the service's configured database."""
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return _settings().database_url.get_secret_value()


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def run_migrations_offline() -> None:
    """Emit the migration SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=_is_sqlite(url),
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    """Run the migrations on an open connection."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _set_sqlite_foreign_keys(connection, enabled=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
            # MySQL has no transactional DDL: stamp the version after each revision.
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration left rows violating foreign keys: {problems[:10]}")
        if connection.in_transaction():
            connection.commit()
    except BaseException:
        if connection.in_transaction():
            connection.rollback()
        raise
    finally:
        if sqlite:
            _set_sqlite_foreign_keys(connection, enabled=True)


def _set_sqlite_foreign_keys(connection: Connection, *, enabled: bool) -> None:
    """Switch SQLite foreign key enforcement; the PRAGMA is ignored inside a transaction."""
    if connection.in_transaction():
        raise RuntimeError("pass a connection with no transaction in progress: PRAGMA foreign_keys would be ignored")
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    actual = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.commit()
    if bool(actual) != enabled:
        raise RuntimeError(f"could not set PRAGMA foreign_keys={enabled} (still {actual})")


def run_migrations_online() -> None:
    """Connect to the database and run the migrations."""
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run_on(given)
        return
    engine = build_engine(load_settings(database_url=_database_url()))
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def _migrate() -> None:
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()


if not COMMAND_LINE:
    _migrate()
else:
    try:
        _migrate()
    except Exception as exc:
        # One record (one JSON object in production, the traceback one of its fields) rather
        # than a bare traceback on standard error.
        first_line = next(iter(str(exc).splitlines()), "")
        refuse_to_start(f"Error: migration failed: {type(exc).__name__}: {first_line}", with_traceback=True)
