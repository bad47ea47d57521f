"""The standard workloads, driven through the HTTP contract alone, so they run against ours and any peer alike."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import targets
from bench.harness import API, PASSWORD, Account, WrkResult, add_posts, call, new_account, run_wrk
from bench.targets import CeilingTarget, PeerTarget

LIST = f"{API}/posts/get_my_posts"
ADD = f"{API}/posts/add-post"
DELETE = f"{API}/posts/delete_my_post"
SIGN_IN = f"{API}/auth/sign_in"
LISTED_POSTS = 20
# A text that keeps the whole JSON body under the 1 MiB limit.
ONE_MIB_TEXT = 1024 * 1024 - 64
# A seeding run this many times a delete run's length leaves more ids than the delete run takes
# (deletes run at about add-post's rate); a delete run that runs out answers 404s, shown as errors.
SEED_FACTOR = 1.5


@dataclass
class Wrk:
    """How hard wrk drives every run."""

    duration_s: float = 5.0
    connections: int = 16
    threads: int = 2


@dataclass
class Subject:
    """A server under test (ours or the peer): its base URL and the accounts the workloads act as."""

    name: str
    base: str
    work_dir: Path
    accounts: dict[str, Account] = field(default_factory=dict)
    # Removes an account's posts straight from the database (ours only), so 1 MiB uploads do not fill the disk.
    drop_posts: Callable[[Account], None] | None = None

    def prepare(self) -> None:
        """Sign up the accounts, give the lister its posts and cache its listing."""
        for role in ("lister", "adder", "adder1mib", "deleter", "signer"):
            self.accounts[role] = new_account(self.base, role)
        add_posts(self.base, self.accounts["lister"], LISTED_POSTS)
        call(self.base, "GET", "/posts/get_my_posts", token=self.accounts["lister"].token)


@dataclass
class Workload:
    """One row of the table: a wrk script against one path, with the arguments one subject's accounts give it."""

    name: str
    path: str
    script: str
    args: Callable[[Subject, Wrk], list[str]]
    peer: PeerTarget | None = None
    ceiling: CeilingTarget | None = None
    on_peer: bool = True
    warm_up: bool = True
    one_connection_per_thread: bool = False
    after_run: Callable[[Subject], None] | None = None

    def run(self, subject: Subject, wrk: Wrk, duration_s: float | None = None) -> WrkResult:
        """One wrk run of this workload against the subject; its WrkResult."""
        threads = wrk.connections if self.one_connection_per_thread else wrk.threads
        try:
            return run_wrk(
                subject.base + self.path,
                self.script,
                self.args(subject, wrk),
                duration_s=duration_s or wrk.duration_s,
                connections=wrk.connections,
                threads=threads,
            )
        finally:
            if self.after_run:
                self.after_run(subject)


def fresh_ids(subject: Subject, wrk: Wrk) -> list[str]:
    """Posts for the deleter made by a wrk add-post run (unmeasured) that records their ids; delete.lua's args."""
    account = subject.accounts["deleter"]
    prefix = subject.work_dir / f"ids-{subject.name}-"
    run_wrk(
        subject.base + ADD,
        "seed_ids",
        [account.token, str(prefix)],
        duration_s=wrk.duration_s * SEED_FACTOR,
        connections=wrk.connections,
        threads=wrk.threads,
    )
    parts = sorted(prefix.parent.glob(prefix.name + "*"))
    ids_path = subject.work_dir / f"delete-ids-{subject.name}.txt"
    with ids_path.open("wb") as ids:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, ids)
            part.unlink()
    return [account.token, str(ids_path), str(wrk.threads)]


def drop_big_posts(subject: Subject) -> None:
    """After a 1 MiB add-post run: remove its posts where we can (our own database)."""
    if subject.drop_posts:
        subject.drop_posts(subject.accounts["adder1mib"])


CACHED_LISTING = "get_my_posts, cached, 20 posts"
WORKLOADS = [
    Workload(
        CACHED_LISTING,
        LIST,
        "get",
        lambda s, _: [s.accounts["lister"].token],
        peer=targets.HIT,
        ceiling=targets.HIT_CEILING,
    ),
    Workload(
        "add-post",
        ADD,
        "add_post",
        lambda s, _: [s.accounts["adder"].token, "20"],
        peer=targets.WRITES,
        ceiling=targets.WRITE_CEILING,
    ),
    # A fresh user each run, so every run starts from an empty listing.
    Workload(
        "cycle: add, list, delete",
        f"{API}/posts/",
        "cycle",
        lambda s, _: [new_account(s.base, "cycle").token],
        peer=targets.WRITES,
        one_connection_per_thread=True,
    ),
    Workload(
        "delete_my_post",
        DELETE,
        "delete",
        fresh_ids,
        peer=targets.DELETE,
        ceiling=targets.WRITE_CEILING,
        warm_up=False,
    ),
    Workload(
        "sign_in",
        SIGN_IN,
        "sign_in",
        lambda s, _: ["-", s.accounts["signer"].email, PASSWORD],
        peer=targets.SIGN_IN,
    ),
    # Ours only: what it leaves is the workers' peak memory, judged against WORKER_RSS_LIMIT_MIB.
    Workload(
        "add-post, 1 MiB",
        ADD,
        "add_post",
        lambda s, _: [s.accounts["adder1mib"].token, str(ONE_MIB_TEXT)],
        on_peer=False,
        warm_up=False,
        after_run=drop_big_posts,
    ),
]


def select(workloads: list[Workload], only: tuple[str, ...]) -> list[Workload]:
    """The workloads whose name contains one of `only` (all when empty)."""
    return [w for w in workloads if not only or any(part in w.name for part in only)]
