"""Connections go back to the pool without a ROLLBACK only when their transaction already ended."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from config import Settings, load_settings
from repositories.database import build_engine
from tests.support.api import TEST_SECRET


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The service's engine (one pooled connection) on a fresh database with one table."""
    settings: Settings = load_settings(
        {}, app_env="testing", database_url=database_url, jwt_secret_key=TEST_SECRET, db_pool_size=1
    )
    built = build_engine(settings)
    with built.begin() as connection:
        connection.execute(text("CREATE TABLE items (n INTEGER)"))
    yield built
    built.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT COUNT(*) FROM items")).scalar_one())


def _insert_elsewhere(url: str) -> None:
    other = create_engine(url)
    try:
        with other.begin() as connection:
            connection.execute(text("INSERT INTO items (n) VALUES (1)"))
    finally:
        other.dispose()


def test_raw_use_is_rolled_back_so_no_snapshot_leaks(engine: Engine, database_url: str) -> None:
    # A read left open through the raw DBAPI connection holds a snapshot (REPEATABLE READ on
    # MariaDB, a WAL read transaction on SQLite); the pool must still end it on return.
    assert _count(engine) == 0
    raw = engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("SELECT COUNT(*) FROM items")
    assert cursor.fetchall()[0][0] == 0
    cursor.close()
    raw.close()
    _insert_elsewhere(database_url)
    assert _count(engine) == 1


def test_a_connection_closed_mid_transaction_sees_later_writes(engine: Engine, database_url: str) -> None:
    connection = engine.connect()
    assert connection.execute(text("SELECT COUNT(*) FROM items")).scalar_one() == 0
    connection.close()  # no commit: SQLAlchemy rolls the transaction back
    _insert_elsewhere(database_url)
    assert _count(engine) == 1


def _session_rollbacks(engine: Engine) -> tuple[int, int]:
    """(connection id, ROLLBACKs this database session has run so far), read and then committed."""
    with engine.connect() as connection:
        connection_id = int(connection.execute(text("SELECT CONNECTION_ID()")).scalar_one())
        count = int(connection.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'")).one()[1])
        connection.commit()
    return connection_id, count


def test_only_unfinished_transactions_are_rolled_back_on_return(engine: Engine, backend: str) -> None:
    if backend != "mariadb":
        pytest.skip("counted with MariaDB's per-session Com_rollback; SQLite has no such counter")
    first_id, start = _session_rollbacks(engine)
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO items (n) VALUES (2)"))
        connection.commit()
    same_id, after_commits = _session_rollbacks(engine)
    assert same_id == first_id  # one pooled connection, reused throughout
    assert after_commits == start  # committed twice, returned twice: no ROLLBACK
    with engine.connect() as connection:
        connection.execute(text("SELECT COUNT(*) FROM items"))
    # Closed without a commit: exactly one ROLLBACK (SQLAlchemy's), none added by the pool.
    assert _session_rollbacks(engine) == (first_id, after_commits + 1)


@pytest.mark.parametrize("size", [1, 10])
def test_db_pool_size_is_the_pools_size(size: int) -> None:
    settings = load_settings(
        {},
        app_env="testing",
        database_url="mysql+pymysql://nobody@127.0.0.1:9/none",
        jwt_secret_key=TEST_SECRET,
        db_pool_size=size,
    )
    built = build_engine(settings)  # connects only when used
    try:
        assert built.pool.size() == size  # type: ignore[attr-defined]
        assert built.pool.overflow() == -size  # type: ignore[attr-defined]  # none open, none beyond the size
    finally:
        built.dispose()
