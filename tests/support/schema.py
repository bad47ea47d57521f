"""Creating the schema in an empty database, for servers started by tests and the benchmark."""

from __future__ import annotations

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from models.tables import Base
from repositories.schema import ALEMBIC_INI


def create_schema(url: str) -> None:
    """Create every table in an empty database, stamped with Alembic's head as `alembic upgrade head` leaves it.

    The models and the migrations build the same schema (tests/test_migrations.py), and create_all
    is much faster; the stamp is what tells /readyz the schema is migrated.
    """
    engine = create_engine(url)
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            MigrationContext.configure(connection).stamp(ScriptDirectory.from_config(Config(str(ALEMBIC_INI))), "head")
    finally:
        engine.dispose()
