"""Creating the schema in an empty database, for servers started by tests and the benchmark."""

from __future__ import annotations

from sqlalchemy import create_engine

from models.tables import Base


def create_schema(url: str) -> None:
    """Create every table in an empty database."""
    engine = create_engine(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
