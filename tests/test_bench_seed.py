"""The scale run's data: its rows, the bulk seeding of both schemas, and the tokens our app and the original accept."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text

from app import create_app
from bench import seed
from bench.harness import BENCH_SECRET, PASSWORD
from bench.seed import ScaleData, uuid7
from config import load_settings
from resources import resources
from services.passwords import Passwords
from tests.support.mariadb import MariaDBServer
from tests.support.schema import create_schema

DATA = ScaleData(accounts=7, posts_per_account=3)
# Batches smaller than a table, so the seeding's batching is exercised.
BATCH = 4
# The original's tables as its Alembic migrations a437ebad5f2a and dc4629d2dbc1 create them on MariaDB.
PEER_SCHEMA = (
    "CREATE TABLE users (id CHAR(32) NOT NULL PRIMARY KEY, email_address VARCHAR(100) NOT NULL UNIQUE, "
    "password VARCHAR(1000) NOT NULL, created_at DATETIME NOT NULL DEFAULT now(), "
    "updated_at DATETIME NOT NULL DEFAULT now(), is_archived BOOL NOT NULL DEFAULT false, "
    "is_activated BOOL NOT NULL DEFAULT false)",
    "CREATE TABLE posts (id CHAR(32) NOT NULL PRIMARY KEY, user_id CHAR(32) NOT NULL, text TEXT NOT NULL, "
    "created_at DATETIME NOT NULL DEFAULT now(), updated_at DATETIME NOT NULL DEFAULT now(), "
    "FOREIGN KEY (user_id) REFERENCES users (id))",
)
_peer_databases = itertools.count()


def test_ids_are_version_7_uuids_that_sort_as_their_times() -> None:
    ids = [post_id for batch in DATA.post_rows(BATCH) for post_id, *_ in batch]
    assert len(ids) == len(set(ids)) == DATA.posts == 21
    assert all(post_id.version == 7 and post_id.variant == uuid.RFC_4122 for post_id in ids)
    assert ids == sorted(ids) and [i.hex for i in ids] == sorted(i.hex for i in ids)
    assert DATA.account_id(3) == ScaleData().account_id(3)  # fixed by the account's index alone
    for accounts, posts in ((0, 1), (86_401, 1), (1, 0)):
        with pytest.raises(ValueError, match="accounts with at least 1 post"):
            ScaleData(accounts, posts)
    assert uuid7(datetime(2020, 1, 1, tzinfo=UTC), 5) < uuid7(datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC), 0)
    with pytest.raises(ValueError, match="serial"):
        uuid7(datetime(2020, 1, 1, tzinfo=UTC), 2**62)


def test_posts_come_every_account_post_j_then_post_j_plus_1_a_second_apart() -> None:
    rows = [row for batch in DATA.post_rows(BATCH) for row in batch]
    assert [len(batch) for batch in DATA.post_rows(BATCH)] == [4, 4, 4, 4, 4, 1]
    assert [row[1] for row in rows[:7]] == [DATA.account_id(i) for i in range(7)]
    times = [row[3] for row in rows]
    assert all(later - earlier == timedelta(seconds=1) for earlier, later in itertools.pairwise(times))
    assert times[-1] == DATA.latest and DATA.joined(6) < times[0]
    assert rows[8][2] == DATA.text(1, 1) == f"Post 2 of account 1: {seed.FILLER}"


@pytest.fixture
def ours(database_url: str) -> Iterator[tuple[str, Engine]]:
    create_schema(database_url)
    engine = create_engine(database_url)
    yield database_url, engine
    engine.dispose()


@pytest.fixture
def service(ours: tuple[str, Engine]) -> Iterator[FlaskClient]:
    """Our app on the seeded database, with the key the bench signs with."""
    settings = load_settings(
        {}, app_env="testing", database_url=ours[0], jwt_secret_key=BENCH_SECRET, cache_backend="simple"
    )
    app = create_app(settings)
    yield app.test_client()
    resources(app).engine.dispose()


def test_our_seeded_accounts_sign_in_and_their_minted_tokens_list_their_posts(
    ours: tuple[str, Engine], service: FlaskClient
) -> None:
    url, engine = ours
    assert not seed.ours_holds(engine, DATA)
    seed.seed_ours(engine, DATA, Passwords().hash(PASSWORD), batch_rows=BATCH)
    assert seed.ours_holds(engine, DATA)
    assert not seed.ours_holds(engine, ScaleData(accounts=8, posts_per_account=3))
    tokens = seed.mint_ours(url, DATA, seed.generations(engine, DATA))
    assert len(tokens) == DATA.accounts

    signed_in = service.post("/api/v1/auth/sign_in", data={"username": DATA.email(2), "password": PASSWORD})
    assert signed_in.status_code == 200 and signed_in.json["id"] == str(DATA.account_id(2))  # type: ignore[index]
    listing = service.get("/api/v1/posts/get_my_posts", headers={"Authorization": f"Bearer {tokens[2]}"})
    assert listing.status_code == 200
    assert [post["id"] for post in listing.json] == [str(DATA.post_id(2, j)) for j in (2, 1, 0)]  # type: ignore[union-attr]
    assert listing.json[0]["text"] == DATA.text(2, 2)  # type: ignore[index]
    assert listing.json[0]["created_at"].startswith(DATA.created_at(2, 2).isoformat()[:19])  # type: ignore[index]


def test_what_a_run_adds_to_ours_is_dropped_and_the_seeded_data_stays(
    ours: tuple[str, Engine], service: FlaskClient
) -> None:
    url, engine = ours
    seed.seed_ours(engine, DATA, "not-a-hash", batch_rows=BATCH)
    max_seq = seed.seeded_max_seq(engine)
    [token] = seed.mint_ours(url, ScaleData(accounts=1), [0])
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        assert service.post("/api/v1/posts/add-post", json={"text": "new"}, headers=bearer).status_code == 200
    assert not seed.ours_holds(engine, DATA)
    assert seed.drop_ours_additions(engine, max_seq) == 2
    assert seed.ours_holds(engine, DATA)
    # A straggler stored after a run's clean-up is dropped before the data is reused.
    assert service.post("/api/v1/posts/add-post", json={"text": "late"}, headers=bearer).status_code == 200
    assert not seed.ours_holds(engine, DATA)
    assert seed.ours_reusable(engine, DATA) and seed.ours_holds(engine, DATA)
    assert not seed.ours_reusable(engine, ScaleData(accounts=6, posts_per_account=3))


def test_tokens_carry_each_accounts_session_generation(ours: tuple[str, Engine], service: FlaskClient) -> None:
    url, engine = ours
    seed.seed_ours(engine, DATA, "not-a-hash")
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET session_generation = 3 WHERE email_address = :e"), {"e": DATA.email(1)}
        )
    assert seed.generations(engine, DATA)[:3] == [0, 3, 0]
    tokens = seed.mint_ours(url, DATA, seed.generations(engine, DATA))
    assert (
        service.get("/api/v1/posts/get_my_posts", headers={"Authorization": f"Bearer {tokens[1]}"}).status_code == 200
    )
    [stale] = seed.mint_ours(url, ScaleData(accounts=2), [0, 0])[1:]
    assert service.get("/api/v1/posts/get_my_posts", headers={"Authorization": f"Bearer {stale}"}).status_code == 401


@pytest.fixture
def peer(mariadb_server: MariaDBServer) -> Iterator[object]:
    """A database with the original's schema, through the URL the original itself is given."""
    url = mariadb_server.create_database(f"bench_peer_{next(_peer_databases)}")
    connection = seed.connect_mysql(url.replace("mysql+pymysql", "mysql+aiomysql"))
    with connection.cursor() as cursor:
        for statement in PEER_SCHEMA:
            cursor.execute(statement)
    yield connection
    connection.close()


def _peer_rows(connection: object, sql: str, *args: object) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def test_the_peers_seeded_data_is_ours_in_its_shape_listed_in_the_same_order(peer: object) -> None:
    assert not seed.peer_holds(peer, DATA)
    seed.seed_peer(peer, DATA, batch_rows=BATCH)
    assert seed.peer_holds(peer, DATA)
    seed.seed_peer(peer, DATA, batch_rows=BATCH)  # again: emptied first, not doubled
    assert seed.peer_holds(peer, DATA)
    [(user_id, password, activated)] = _peer_rows(
        peer, "SELECT id, password, is_activated FROM users WHERE email_address = %s", DATA.email(4)
    )
    assert (user_id, password, activated) == (DATA.account_id(4).hex, seed.PEER_PASSWORD_HASH, 0)
    # The original's own listing query: its posts by created_at, newest first.
    listed = _peer_rows(peer, "SELECT id, text FROM posts WHERE user_id = %s ORDER BY created_at DESC", user_id)
    assert listed == [(DATA.post_id(4, j).hex, DATA.text(4, j)) for j in (2, 1, 0)]


def test_what_the_peer_stores_during_a_run_is_dropped_and_the_seeded_data_stays(peer: object) -> None:
    seed.seed_peer(peer, DATA, batch_rows=BATCH)
    with peer.cursor() as cursor:  # type: ignore[attr-defined]
        # As its add-post stores a post: id and times by the server's defaults.
        cursor.execute(
            "INSERT INTO posts (id, user_id, text) VALUES (%s, %s, 'new')", (uuid.uuid4().hex, DATA.account_id(0).hex)
        )
    peer.commit()  # type: ignore[attr-defined]
    assert not seed.peer_holds(peer, DATA)
    assert seed.drop_peer_additions(peer, DATA) == 1
    assert seed.peer_holds(peer, DATA)
    with peer.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "INSERT INTO posts (id, user_id, text) VALUES (%s, %s, 'late')", (uuid.uuid4().hex, DATA.account_id(1).hex)
        )
    peer.commit()  # type: ignore[attr-defined]
    assert seed.peer_reusable(peer, DATA) and seed.peer_holds(peer, DATA)


def test_peer_tokens_are_the_originals_claims_signed_with_its_key() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    tokens = seed.mint_peer(DATA, "k" * 32, now)
    claims = jwt.decode(tokens[5], "k" * 32, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": DATA.account_id(5).hex, "exp": int((now + timedelta(minutes=100_000)).timestamp())}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens[5], "x" * 32, algorithms=["HS256"], options={"verify_exp": False})


def test_a_peer_database_without_the_originals_schema_is_refused_with_what_to_do(
    mariadb_server: MariaDBServer,
) -> None:
    url = mariadb_server.create_database(f"bench_peer_{next(_peer_databases)}")
    connection = seed.connect_mysql(url)
    try:
        with pytest.raises(seed.PeerSchemaError, match="create its schema with its own Alembic"):
            seed.peer_reusable(connection, DATA)
    finally:
        connection.close()


def test_the_peer_url_may_name_any_mysql_driver_but_needs_a_database() -> None:
    for bad in ("sqlite:///x.db", "mysql+aiomysql://root@127.0.0.1:3306/"):
        with pytest.raises(ValueError, match="not a MySQL/MariaDB URL with a database"):
            seed.connect_mysql(bad)
