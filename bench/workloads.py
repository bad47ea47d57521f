"""The standard workloads: which server, which path, which Lua script and arguments, their ceiling and target."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bench import seed
from bench.targets import HOT_P99_RATIO, Target

LIST = "/api/v1/posts/get_my_posts"
ADD = "/api/v1/posts/add-post"
DELETE = "/api/v1/posts/delete_my_post"
SIGN_IN = "/api/v1/auth/sign_in"
SIGN_UP = "/api/v1/auth/sign_up"
KIB = 1024
# Texts sized so the whole JSON body stays under the 1 MiB limit.
ONE_MIB_TEXT = 1024 * KIB - 64
# Enough distinct post ids for any delete rate this machine can reach.
DELETES_PER_SECOND_BOUND = 4000

# The ceilings (bench/ceiling.py), each run right before the workloads judged against it.
BARE = "bare-Flask ceiling"
WRITE_20 = "write ceiling (20 B)"
WRITE_100K = "write ceiling (100 KiB)"
WRITE_1MIB = "write ceiling (1 MiB)"
READ_20 = "read ceiling (20)"
READ_1000 = "read ceiling (1000)"
READ_3MIB = "read ceiling (3 x 1 MiB)"
# Not a server: workers / one argon2id verification, measured in-process beside each run.
ARGON2 = "argon2 (workers / verify)"
CEILING_SERVER = "ceiling"


@dataclass
class Workload:
    """One row of the table: a wrk script against one of the servers."""

    name: str
    server: str
    path: str
    script: str
    token: str | None = None
    args: list[str] = field(default_factory=list)
    # Called before each wrk run with its duration; returns extra script arguments for that run.
    before_run: Callable[[float], list[str]] | None = None
    # Called after each run (e.g. to drop the posts an add-post run created).
    after_run: Callable[[], None] | None = None
    # The ceiling it is judged against (a ceiling workload's name, or ARGON2), and how.
    ceiling: str | None = None
    target: Target | None = None

    @property
    def is_ceiling(self) -> bool:
        """Whether this is one of the ceilings rather than a service workload."""
        return self.server == CEILING_SERVER


@dataclass
class Accounts:
    """The accounts the workloads act as, each with its access token."""

    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def make(self, base: str, role: str) -> None:
        """Sign up the account for `role` through the API."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@bench.example.com"
        user_id, token = seed.sign_up(base, email)
        self.emails[role] = email
        self.ids[role] = user_id
        self.tokens[role] = token


def prepare(base: str, engine: Engine, work_dir: Path) -> tuple[list[Workload], Accounts]:
    """Create the accounts and posts the workloads need; the workloads in table order."""
    accounts = Accounts()
    for role in ("list20", "list1000", "adder", "adder100k", "adder1mib", "deleter", "signer", "list1mib", "ceiling"):
        accounts.make(base, role)
    seed.insert_posts(engine, seed.post_rows(accounts.ids["list20"], 20))
    seed.insert_posts(engine, seed.post_rows(accounts.ids["list1000"], 1000))
    seed.insert_posts(engine, seed.post_rows(accounts.ids["list1mib"], 3, "m" * ONE_MIB_TEXT))
    tokens = accounts.tokens
    batches = iter(range(1_000_000))

    def fresh_delete_ids(duration_s: float) -> list[str]:
        ids = seed.insert_posts(
            engine, seed.post_rows(accounts.ids["deleter"], int(DELETES_PER_SECOND_BOUND * duration_s))
        )
        path = work_dir / f"delete-ids-{next(batches)}.txt"
        path.write_text("".join(f"{post_id}\n" for post_id in ids))
        return [str(path), "2"]

    def sign_up_nonce(_duration_s: float) -> list[str]:
        return [f"{uuid.uuid4().hex[:10]}", seed.PASSWORD]

    def drop_posts(role: str) -> Callable[[], None]:
        return lambda: seed.delete_posts_of(engine, accounts.ids[role])

    def ceiling_path(view: str, role: str) -> str:
        return f"/{view}?user_id={accounts.ids[role]}"

    write = ceiling_path("write", "ceiling")
    hot = HOT_P99_RATIO
    workloads = [
        Workload(BARE, CEILING_SERVER, "/", "get"),
        Workload(WRITE_20, CEILING_SERVER, write, "add_post", None, ["20"]),
        Workload(
            WRITE_100K, CEILING_SERVER, write, "add_post", None, [str(100 * KIB)], after_run=drop_posts("ceiling")
        ),
        Workload(
            WRITE_1MIB, CEILING_SERVER, write, "add_post", None, [str(ONE_MIB_TEXT)], after_run=drop_posts("ceiling")
        ),
        Workload(READ_20, CEILING_SERVER, ceiling_path("read", "list20"), "get"),
        Workload(READ_1000, CEILING_SERVER, ceiling_path("read", "list1000"), "get"),
        Workload(READ_3MIB, CEILING_SERVER, ceiling_path("read", "list1mib"), "get"),
        Workload(
            "get_my_posts hit (20)",
            "app",
            LIST,
            "get",
            tokens["list20"],
            ceiling=BARE,
            target=Target(min_ratio=0.8, max_p99_ratio=hot, max_spread=0.15),
        ),
        Workload(
            "get_my_posts miss (20)",
            "miss",
            LIST,
            "get",
            tokens["list20"],
            ceiling=READ_20,
            target=Target(min_ratio=0.75, max_p99_ratio=hot),
        ),
        Workload(
            "get_my_posts miss (1000)",
            "miss",
            LIST,
            "get",
            tokens["list1000"],
            ceiling=READ_1000,
            target=Target(min_ratio=0.5),
        ),
        Workload(
            "add-post",
            "app",
            ADD,
            "add_post",
            tokens["adder"],
            ["20"],
            ceiling=WRITE_20,
            target=Target(min_ratio=0.75, max_p99_ratio=hot),
        ),
        Workload(
            "add-post 100 KiB",
            "app",
            ADD,
            "add_post",
            tokens["adder100k"],
            [str(100 * KIB)],
            after_run=drop_posts("adder100k"),
            ceiling=WRITE_100K,
        ),
        Workload(
            "add-post 1 MiB",
            "app",
            ADD,
            "add_post",
            tokens["adder1mib"],
            [str(ONE_MIB_TEXT)],
            after_run=drop_posts("adder1mib"),
            ceiling=WRITE_1MIB,
            target=Target(min_ratio=0.5),
        ),
        # Over 512 KiB, so never cached: each request queries and encodes 3 MiB.
        Workload("get_my_posts 3 x 1 MiB", "app", LIST, "get", tokens["list1mib"], ceiling=READ_3MIB),
        Workload(
            "delete_my_post",
            "app",
            DELETE,
            "delete",
            tokens["deleter"],
            before_run=fresh_delete_ids,
            ceiling=WRITE_20,
            target=Target(min_ratio=0.75, max_p99_ratio=hot),
        ),
        Workload(
            "sign_in",
            "app",
            SIGN_IN,
            "sign_in",
            None,
            [accounts.emails["signer"], seed.PASSWORD],
            ceiling=ARGON2,
            target=Target(min_ratio=0.9),
        ),
        # One argon2id hash per sign-up costs about one verification; no target of its own.
        Workload("sign_up", "app", SIGN_UP, "sign_up", None, before_run=sign_up_nonce, ceiling=ARGON2),
    ]
    return workloads, accounts


def check_read_ceiling(ceiling_base: str, app_base: str, accounts: Accounts) -> None:
    """The read ceiling must answer exactly the service's body for the same user; RuntimeError otherwise."""
    for role in ("list20", "list1000"):
        own = seed.get_body(f"{ceiling_base}/read?user_id={accounts.ids[role]}")
        service = seed.get_body(app_base + LIST, accounts.tokens[role])
        if own != service:
            raise RuntimeError(f"read ceiling and get_my_posts differ for {role}: {own[:200]!r} vs {service[:200]!r}")
