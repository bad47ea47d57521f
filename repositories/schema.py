"""Is the database's schema the one this release was written for? Alembic's revision, and missing-schema errors.

An empty or half-migrated database answers every query with "no such table" (SQLite) or error
1146 "Table ... doesn't exist" (MySQL/MariaDB). Without this module that reads as an outage;
with it, `/readyz`, the API's 503 and the CLI all say that migrations are missing and how to
run them (`alembic upgrade head`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from config import ROOT_DIR
from repositories.health import probe_engine

log = logging.getLogger(__name__)

ALEMBIC_INI = ROOT_DIR / "alembic.ini"
UPGRADE_COMMAND = "alembic upgrade head"
# What the schema check reports (besides "ok" and "unavailable", which readiness owns).
NOT_MIGRATED = "not migrated"
UNKNOWN_REVISION = "unknown revision"
OK = "ok"
UNAVAILABLE = "unavailable"
# MySQL/MariaDB: ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR (a column a later revision adds).
MYSQL_MISSING_SCHEMA = frozenset({1146, 1054})
SQLITE_MISSING_SCHEMA = ("no such table", "no such column")


@dataclass(frozen=True)
class Revisions:
    """The migration scripts shipped with this release: their head, and every revision they know."""

    head: str | None
    known: frozenset[str]


@lru_cache(maxsize=1)
def shipped_revisions() -> Revisions:
    """Read once per process: the scripts cannot change under a running release."""
    scripts = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    return Revisions(scripts.get_current_head(), frozenset(script.revision for script in scripts.walk_revisions()))


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database's alembic_version table; None when it has none."""
    return MigrationContext.configure(connection).get_current_revision()


def schema_status(current: str | None, shipped: Revisions) -> str:
    """ "ok" at the head; "not migrated" when empty or behind; "unknown revision" when a newer release migrated it."""
    if current is not None and current == shipped.head:
        return OK
    if current is None or current in shipped.known:
        return NOT_MIGRATED
    return UNKNOWN_REVISION


class SchemaProbe:
    """Readiness: is the database's schema at this release's Alembic head?

    Its own pool-less engine with short timeouts, like the database probe: a fresh connection
    and one small query (the version table), so a frozen database cannot hold `/readyz`.
    """

    def __init__(self, database_url: str, timeout: float) -> None:
        self._engine = probe_engine(database_url, timeout)

    def __call__(self) -> str:
        """ "ok", "not migrated", "unknown revision", or "unavailable" when it cannot tell."""
        try:
            shipped = shipped_revisions()
            with self._engine.connect() as connection:
                current = current_revision(connection)
        except Exception as exc:  # cannot tell is not ready; the type is enough for the log
            log.warning("readiness: schema revision unavailable (%s)", type(exc).__name__)
            return UNAVAILABLE
        status = schema_status(current, shipped)
        if status != OK:
            log.warning(
                "readiness: database schema %s (revision %s, this release needs %s); run `%s`",
                status,
                current,
                shipped.head,
                UPGRADE_COMMAND,
            )
        return status


def is_missing_schema(error: DBAPIError) -> bool:
    """True when the driver says a table or column does not exist: the schema is not (fully) migrated."""
    original = error.orig
    if original is None:
        return False
    code = original.args[0] if original.args else None
    if isinstance(code, int):
        return code in MYSQL_MISSING_SCHEMA
    return str(original).startswith(SQLITE_MISSING_SCHEMA)


def missing_schema_cause(error: DBAPIError) -> str:
    """The driver's own words on what is missing ("no such table: users"), for the log; no values in it."""
    original = error.orig
    args = original.args if original is not None else ()
    return str(args[-1] if args else original)[:200]
