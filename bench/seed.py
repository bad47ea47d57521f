"""The scale run's data: many accounts with their posts, in bulk, in our database and the original's; their tokens.

Both databases get the same data: account i has the same id, email and posts (ids, texts, times)
in each. Ours is written through our own tables (models/tables.py) with SQLAlchemy Core; the
original's through its own schema (created by its Alembic, migrations a437ebad5f2a and
dc4629d2dbc1: ids as 32 hex characters, a bcrypt `password`) with plain SQL. Rows go in
batches of executemany, one precomputed password hash for every account, unique and foreign
key checks off while loading (the rows are unique and consistent by construction).

Access tokens are minted, not signed in: ours by our app's own `issue_tokens` (flask-jwt-extended,
with the `gen` claim), the original's as its `generate_new_token` makes them (PyJWT, HS256,
`{"sub": <id hex>, "exp": ...}`) with its SECRET_KEY.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import jwt
import pymysql  # type: ignore[import-untyped, unused-ignore]  # no bundled stubs
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from bench.harness import BENCH_SECRET
from models.tables import PostRow, UserRow
from repositories.schema import ALEMBIC_INI

ACCOUNTS = 20_000
POSTS_PER_ACCOUNT = 50
# Accounts sign up a second apart on the day before the first post.
MAX_ACCOUNTS = 86_400
BATCH_ROWS = 5_000
# Every seeded post is older than anything a server adds during the run: what a run added is
# what lies after the seeded data (our `seq`, the original's `created_at`).
SEED_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
# The original's own default lifetime of an access token (ACCESS_TOKEN_EXPIRE_MINUTES).
PEER_TOKEN_MINUTES = 100_000
# The SECRET_KEY docs/benchmark.md starts the original with.
PEER_SECRET = "peer-signing-key-that-is-at-least-32-bytes"
# bcrypt (cost 12, the original's `bcrypt.gensalt()`) of harness.PASSWORD, made once with the
# original's own bcrypt: its sign-in accepts every seeded account with that password.
PEER_PASSWORD_HASH = "$2b$12$08sUEoTDWMxro43wLTJbVOVKp3htHHgUjrb8c1tI1Ui/gxGdcFp5G"
FILLER = "a seeded post of about tweet length, the same in both databases"

_users = cast(Table, UserRow.__table__)
_posts = cast(Table, PostRow.__table__)
PEER_USER_INSERT = (
    "INSERT INTO users (id, email_address, password, created_at, updated_at, is_archived, is_activated) "
    "VALUES (%s, %s, %s, %s, %s, 0, 0)"  # as its sign-up stores them
)
PEER_POST_INSERT = "INSERT INTO posts (id, user_id, text, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)"


def uuid7(moment: datetime, serial: int) -> uuid.UUID:
    """An RFC 9562 version 7 UUID: the Unix time in milliseconds in its first 48 bits, then `serial` (< 2**62).

    Ids that sort as their times do are inserted in order into both services' indexes on them
    (the original's primary key is the post id): seeding appends instead of splitting pages at random.
    """
    if not 0 <= serial < 2**62:
        raise ValueError("serial out of range")
    milliseconds = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(milliseconds << 80) | (0x7 << 76) | (0b10 << 62) | serial)


@dataclass(frozen=True)
class ScaleData:
    """The accounts and posts of a scale run: account i's id, email, posts and their times are fixed."""

    accounts: int = ACCOUNTS
    posts_per_account: int = POSTS_PER_ACCOUNT

    def __post_init__(self) -> None:
        if not 1 <= self.accounts <= MAX_ACCOUNTS or self.posts_per_account < 1:
            raise ValueError(f"1 to {MAX_ACCOUNTS:,} accounts with at least 1 post each")

    @property
    def posts(self) -> int:
        """How many posts in all."""
        return self.accounts * self.posts_per_account

    def account_id(self, i: int) -> uuid.UUID:
        """Account i's id: a version 7 UUID of when it joined."""
        return uuid7(self.joined(i), i)

    def joined(self, i: int) -> datetime:
        """When account i signed up: a second after account i - 1, all on the day before the first post."""
        return SEED_EPOCH - timedelta(days=1) + timedelta(seconds=i)

    def email(self, i: int) -> str:
        """Account i's email address."""
        return f"scale-{i:05d}@bench.example.com"

    def post_id(self, i: int, j: int) -> uuid.UUID:
        """The id of account i's post j: a version 7 UUID of its time, so ids sort as posts were made."""
        return uuid7(self.created_at(i, j), j * self.accounts + i)

    def text(self, i: int, j: int) -> str:
        """The text of account i's post j (about 90 characters)."""
        return f"Post {j + 1} of account {i}: {FILLER}"

    def created_at(self, i: int, j: int) -> datetime:
        """When account i's post j was made: every account's post j, then every account's post j + 1, a second apart.

        So a newer post has a later time in both services (ours orders by `seq`, the original by
        `created_at`), and, as when accounts post over time, one account's posts lie far apart.
        """
        return SEED_EPOCH + timedelta(seconds=j * self.accounts + i)

    @property
    def latest(self) -> datetime:
        """The newest seeded post's time; a server's own adds come after it."""
        return self.created_at(self.accounts - 1, self.posts_per_account - 1)

    def post_rows(self, batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple[uuid.UUID, uuid.UUID, str, datetime]]]:
        """(id, user id, text, created at) of every post, in batches, oldest first."""
        user_ids = [self.account_id(i) for i in range(self.accounts)]
        batch: list[tuple[uuid.UUID, uuid.UUID, str, datetime]] = []
        for j in range(self.posts_per_account):
            for i, user_id in enumerate(user_ids):
                batch.append((self.post_id(i, j), user_id, self.text(i, j), self.created_at(i, j)))
                if len(batch) == batch_rows:
                    yield batch
                    batch = []
        if batch:
            yield batch


@dataclass(frozen=True)
class Seeded:
    """What seeding a database did: whether it was loaded (or already held the data) and how long that took."""

    loaded: bool
    seconds: float


def _batches(count: int, batch_rows: int = BATCH_ROWS) -> Iterator[range]:
    for start in range(0, count, batch_rows):
        yield range(start, min(count, start + batch_rows))


def _is_mysql(connection: Connection) -> bool:
    return connection.dialect.name in ("mysql", "mariadb")


# --- our database -------------------------------------------------------------------------


def alembic_head() -> str:
    """Our migrations' head revision."""
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    if head is None:
        raise RuntimeError("our migrations have no head")
    return head


def _schema_stamp(engine: Engine) -> str | None:
    """The Alembic revision our database is stamped at; None without a schema."""
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            return None


def ours_holds(engine: Engine, data: ScaleData) -> bool:
    """Whether our database holds exactly this data, at our migrations' head."""
    if _schema_stamp(engine) != alembic_head():
        return False
    with engine.connect() as connection:
        users = connection.execute(select(func.count()).select_from(_users)).scalar()
        posts = connection.execute(select(func.count()).select_from(_posts)).scalar()
        first, last = (
            connection.execute(select(_users.c.id).where(_users.c.email_address == data.email(i))).scalar()
            for i in (0, data.accounts - 1)
        )
    return (users, posts) == (data.accounts, data.posts) and (first, last) == (
        data.account_id(0),
        data.account_id(data.accounts - 1),
    )


def ours_reusable(engine: Engine, data: ScaleData) -> bool:
    """Whether our database holds this data once the posts stored after an earlier run's clean-up are gone.

    A request still in flight when wrk stops may store its post after the run's clean-up; such
    stragglers are deleted here rather than the whole data loaded again.
    """
    if _schema_stamp(engine) != alembic_head():
        return False
    drop_ours_newer(engine, data)
    return ours_holds(engine, data)


def seed_ours(engine: Engine, data: ScaleData, password_hash: str, batch_rows: int = BATCH_ROWS) -> None:
    """Load the accounts and posts into our empty schema through our own tables, in batches."""
    with engine.connect() as connection:
        if _is_mysql(connection):
            connection.exec_driver_sql("SET unique_checks = 0, foreign_key_checks = 0")
        for accounts in _batches(data.accounts, batch_rows):
            rows = []
            for i in accounts:
                joined = data.joined(i)
                rows.append(
                    {
                        "id": data.account_id(i),
                        "email_address": data.email(i),
                        "password_hash": password_hash,
                        "created_at": joined,
                        "updated_at": joined,
                        "session_generation": 0,
                    }
                )
            connection.execute(insert(_users), rows)
            connection.commit()
        for batch in data.post_rows(batch_rows):
            connection.execute(
                insert(_posts),
                [{"id": p, "user_id": u, "text": t, "created_at": c} for p, u, t, c in batch],
            )
            connection.commit()


def seeded_max_seq(engine: Engine) -> int:
    """The last `seq` in our posts table: every post a run adds lies above it."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.max(_posts.c.seq))).scalar() or 0)


def drop_ours_additions(engine: Engine, max_seq: int) -> int:
    """Delete the posts added since seeding (above `max_seq`); how many."""
    with engine.begin() as connection:
        return connection.execute(delete(_posts).where(_posts.c.seq > max_seq)).rowcount


def drop_ours_newer(engine: Engine, data: ScaleData) -> int:
    """Delete every post newer than the seeded ones (by time: a full scan); how many."""
    with engine.begin() as connection:
        return connection.execute(delete(_posts).where(_posts.c.created_at > data.latest)).rowcount


def generations(engine: Engine, data: ScaleData) -> list[int]:
    """Each account's session generation, in account order (0 unless its sessions were ended)."""
    with engine.connect() as connection:
        found = {
            row.id: row.session_generation
            for row in connection.execute(select(_users.c.id, _users.c.session_generation))
        }
    return [found[data.account_id(i)] for i in range(data.accounts)]


def mint_ours(database_url: str, data: ScaleData, generations: list[int], secret: str = BENCH_SECRET) -> list[str]:
    """Each account's access token, issued by our app exactly as sign-in issues it (blueprints/auth/tokens.py)."""
    # Imported here: building the app configures logging, which only minting needs.
    from app import create_app
    from blueprints.auth.tokens import issue_tokens
    from config import load_settings
    from resources import resources

    settings = load_settings(
        {},
        app_env="production",
        database_url=database_url,
        jwt_secret_key=secret,
        cache_backend="simple",
        log_level="warning",
    )
    app = create_app(settings)
    try:
        with app.app_context():
            return [issue_tokens(data.account_id(i), generations[i])["access_token"] for i in range(data.accounts)]
    finally:
        resources(app).engine.dispose()


# --- the original's database ----------------------------------------------------------------


def connect_mysql(url: str) -> Any:
    """A PyMySQL connection to the database of a MySQL URL with any driver (mysql+aiomysql://... too)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme.startswith(("mysql", "mariadb")) or not parts.path.strip("/"):
        raise ValueError(f"not a MySQL/MariaDB URL with a database: {parts.scheme}://{parts.hostname}{parts.path}")
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or "root"),
        password=urllib.parse.unquote(parts.password or ""),
        database=parts.path.strip("/"),
        charset="utf8mb4",
    )


class PeerSchemaError(RuntimeError):
    """The original's database has no schema: its own Alembic has not run there."""


def _naive(moment: datetime) -> datetime:
    """The original's DATETIME columns hold naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def peer_holds(connection: Any, data: ScaleData) -> bool:
    """Whether the original's database holds exactly this data; PeerSchemaError when it has no tables."""
    with connection.cursor() as cursor:
        try:
            cursor.execute("SELECT COUNT(*) FROM users")
        except pymysql.err.ProgrammingError as error:
            raise PeerSchemaError(
                f"the peer's database has no `users` table ({error.args[-1]}): create its schema with its own "
                "Alembic first (docs/benchmark.md, 'Against the original service')"
            ) from error
        users = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM posts")
        posts = cursor.fetchone()[0]
        ids = []
        for i in (0, data.accounts - 1):
            cursor.execute("SELECT id FROM users WHERE email_address = %s", (data.email(i),))
            row = cursor.fetchone()
            ids.append(row and row[0])
    expected = [data.account_id(0).hex, data.account_id(data.accounts - 1).hex]
    return (users, posts) == (data.accounts, data.posts) and ids == expected


def peer_reusable(connection: Any, data: ScaleData) -> bool:
    """Whether the original's database holds this data once posts a run's stragglers stored are gone."""
    peer_holds(connection, data)  # PeerSchemaError before anything is deleted
    drop_peer_additions(connection, data)
    return peer_holds(connection, data)


def seed_peer(
    connection: Any, data: ScaleData, password_hash: str = PEER_PASSWORD_HASH, batch_rows: int = BATCH_ROWS
) -> None:
    """Empty the original's tables (made by its Alembic) and load the accounts and posts, in batches."""
    with connection.cursor() as cursor:
        cursor.execute("SET unique_checks = 0, foreign_key_checks = 0")
        cursor.execute("TRUNCATE TABLE posts")
        cursor.execute("TRUNCATE TABLE users")
        for accounts in _batches(data.accounts, batch_rows):
            rows = []
            for i in accounts:
                joined = _naive(data.joined(i))
                rows.append((data.account_id(i).hex, data.email(i), password_hash, joined, joined))
            cursor.executemany(PEER_USER_INSERT, rows)
            connection.commit()
        for batch in data.post_rows(batch_rows):
            cursor.executemany(PEER_POST_INSERT, [(p.hex, u.hex, t, _naive(c), _naive(c)) for p, u, t, c in batch])
            connection.commit()
        cursor.execute("SET unique_checks = 1, foreign_key_checks = 1")


def drop_peer_additions(connection: Any, data: ScaleData) -> int:
    """Delete the posts the original stored since seeding (newer than every seeded post, a full scan); how many."""
    with connection.cursor() as cursor:
        count = cursor.execute("DELETE FROM posts WHERE created_at > %s", (_naive(data.latest),))
    connection.commit()
    return int(count)


def mint_peer(data: ScaleData, secret: str = PEER_SECRET, now: datetime | None = None) -> list[str]:
    """Each account's access token as the original issues it: HS256 over `sub` (the id's hex) and `exp`."""
    expires = (now or datetime.now(UTC)) + timedelta(minutes=PEER_TOKEN_MINUTES)
    return [
        jwt.encode({"sub": data.account_id(i).hex, "exp": expires}, secret, algorithm="HS256")
        for i in range(data.accounts)
    ]


# --- both --------------------------------------------------------------------------------


def write_tokens(path: Path, tokens: list[str]) -> Path:
    """One token a line, account 0 first: the scale scripts read the first N lines."""
    path.write_text("".join(f"{token}\n" for token in tokens))
    return path


def timed(load: Callable[[], object]) -> Seeded:
    """Run `load` (a seeding); how long it took."""
    started = time.monotonic()
    load()
    return Seeded(loaded=True, seconds=time.monotonic() - started)
