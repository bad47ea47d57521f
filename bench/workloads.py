"""The standard workloads: which server, which path, which Lua script and arguments, and their set-up."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bench import seed

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
    for role in ("list20", "list1000", "adder", "adder100k", "adder1mib", "deleter", "signer", "list1mib"):
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

    workloads = [
        Workload("ceiling", "ceiling", "/", "get"),
        Workload("get_my_posts hit (20)", "app", LIST, "get", tokens["list20"]),
        Workload("get_my_posts miss (20)", "miss", LIST, "get", tokens["list20"]),
        Workload("get_my_posts miss (1000)", "miss", LIST, "get", tokens["list1000"]),
        Workload("add-post", "app", ADD, "add_post", tokens["adder"], ["20"]),
        Workload(
            "add-post 100 KiB",
            "app",
            ADD,
            "add_post",
            tokens["adder100k"],
            [str(100 * KIB)],
            after_run=drop_posts("adder100k"),
        ),
        Workload(
            "add-post 1 MiB",
            "app",
            ADD,
            "add_post",
            tokens["adder1mib"],
            [str(ONE_MIB_TEXT)],
            after_run=drop_posts("adder1mib"),
        ),
        Workload("get_my_posts 3 x 1 MiB", "app", LIST, "get", tokens["list1mib"]),
        Workload("delete_my_post", "app", DELETE, "delete", tokens["deleter"], before_run=fresh_delete_ids),
        Workload("sign_in", "app", SIGN_IN, "sign_in", None, [accounts.emails["signer"], seed.PASSWORD]),
        Workload("sign_up", "app", SIGN_UP, "sign_up", None, before_run=sign_up_nonce),
    ]
    return workloads, accounts
