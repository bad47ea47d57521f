"""The scale run (`python -m bench --users N[,N...]`): listing, add-post and the cycle as random accounts among N.

20,000 accounts with 50 posts each are seeded in bulk (bench/seed.py) into our database and,
with a peer, into the peer's, on one MariaDB. Each request is made as a random one of the first
N accounts (each wrk thread draws from its own fixed seed, so both servers see the same
sequence). Each pair runs, for each N, every workload against ours and right after against the
peer (A B A B); what earlier runs added is deleted from both databases before each run, so every
run starts from the seeded data. Our "always-miss" listing (a page, `?limit=1000`: the same 50 posts from the
database on every request, never from the listing cache) is the floor our listing must not fall
below at any N.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from bench import harness, seed
from bench.harness import API, WrkResult
from bench.profile import Profiler
from bench.scale_table import (
    ALWAYS_MISS,
    LISTING,
    OURS,
    PEER,
    Runs,
    ScaleRow,
    WarmUpErrors,
    flatness,
    format_flatness,
    format_rss,
    format_scale_table,
    scale_row,
)
from bench.seed import ScaleData, Seeded
from bench.standard import RESULTS_DIR, WARM_UP_SECONDS, slug, write_results
from bench.targets import SCALE, PeerTarget
from bench.workloads import ADD, LIST, Wrk
from services.passwords import Passwords
from tests.support.redis import RedisServer
from tests.support.schema import create_schema

USERS = (1, 100, 1_000, 20_000)
OUR_DATABASE = "posts_scale"
# The scale data is about 300 MiB per service; the throwaway server's 64 MiB pool would measure
# the disk, not the services (a database server is sized for its data).
BUFFER_POOL_MIB = 1024
ADDED_TEXT_BYTES = 20
# Longer than the slowest answers seen at 64 connections (p99 about 3 s on a busy machine): by then
# a server has answered the requests wrk abandoned when it stopped. With a peer, the other side's
# run in between usually takes longer already.
DRAIN_SECONDS = 3.0


@dataclass(frozen=True)
class ScaleOptions:
    """What the scale run measures, against whom, and how hard."""

    wrk: Wrk = field(default_factory=Wrk)
    users: tuple[int, ...] = USERS
    pairs: int = 3
    peer: str | None = None
    peer_db: str | None = None
    peer_secret: str = seed.PEER_SECRET
    redis: bool = False
    mariadb: str | None = None
    only: tuple[str, ...] = ()
    gunicorn_args: str = ""
    profile: bool = False
    label: str = ""
    accounts: int = seed.ACCOUNTS
    reseed: bool = False
    buffer_pool_mib: int = BUFFER_POOL_MIB


@dataclass(frozen=True)
class ScaleWorkload:
    """One workload of the scale run: a script against one path (and query), as random accounts among N."""

    name: str
    path: str
    script: str
    target: PeerTarget | None = SCALE
    on_peer: bool = True
    one_connection_per_thread: bool = False
    extra_args: tuple[str, ...] = ()


SCALE_WORKLOADS = [
    ScaleWorkload(LISTING, LIST, "scale_get"),
    ScaleWorkload(ALWAYS_MISS, f"{LIST}?limit=1000", "scale_get", target=None, on_peer=False),
    ScaleWorkload("add-post", ADD, "scale_add", extra_args=(str(ADDED_TEXT_BYTES),)),
    ScaleWorkload("cycle: add, list, delete", f"{API}/posts/", "scale_cycle", one_connection_per_thread=True),
]


def parse_users(text: str) -> tuple[int, ...]:
    """`1,100,1000,20000` (or with `_` or spaces) as numbers of active users, each at least 1."""
    try:
        users = tuple(int(part.strip().replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--users takes numbers separated by commas, e.g. 1,100,1000,20000; not {text!r}") from None
    if not users or min(users) < 1:
        raise ValueError(f"--users takes numbers of at least 1: {text!r}")
    return users


def select_scale(workloads: list[ScaleWorkload], only: tuple[str, ...]) -> list[ScaleWorkload]:
    """The workloads whose name contains one of `only` (all when empty)."""
    return [w for w in workloads if not only or any(part in w.name for part in only)]


@dataclass
class Side:
    """One server under test in the scale run: its base URL, its token file, and how to undo a run's adds."""

    name: str
    base: str
    tokens: Path
    drop_additions: Callable[[], int]
    # When its last run ended (time.monotonic()).
    ended: float = 0.0


@dataclass
class Prepared:
    """What the run needs before its first request: the sides, our server, and how the data got there."""

    sides: list[Side]
    ours: harness.Gunicorn
    seeded: dict[str, Seeded]


def _grow_buffer_pool(server_url: str, mib: int) -> int:
    """Make the InnoDB buffer pool at least `mib` MiB (it is resized online); its size in MiB."""
    connection = harness.server_connection(server_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@innodb_buffer_pool_size")
            size = int(cursor.fetchone()[0])
            if mib and size < mib * 1024 * 1024:
                cursor.execute(f"SET GLOBAL innodb_buffer_pool_size = {int(mib) * 1024 * 1024}")
                cursor.execute("SELECT @@innodb_buffer_pool_size")
                size = int(cursor.fetchone()[0])
    finally:
        connection.close()
    return size // (1024 * 1024)


def _our_database(server_url: str, data: ScaleData, reseed: bool) -> tuple[str, Engine, Seeded]:
    """Our database on the server, seeded unless it already holds exactly this data at our schema's head."""
    url = harness.ensure_database(server_url, OUR_DATABASE)
    engine = create_engine(url)
    if not reseed and seed.ours_reusable(engine, data):
        return url, engine, Seeded(loaded=False, seconds=0.0)
    engine.dispose()
    url = harness.fresh_database(server_url, OUR_DATABASE)
    create_schema(url)
    engine = create_engine(url)
    print(f"seeding ours: {data.accounts:,} accounts, {data.posts:,} posts ...", flush=True)
    seeded = seed.timed(lambda: seed.seed_ours(engine, data, Passwords().hash(harness.PASSWORD)))
    return url, engine, seeded


def _peer_database(peer_db: str, data: ScaleData, reseed: bool) -> tuple[Any, Seeded]:
    """The peer's database (its schema made by its own Alembic), seeded unless it already holds this data."""
    connection = seed.connect_mysql(peer_db)
    try:
        holds = seed.peer_reusable(connection, data)
    except seed.PeerSchemaError as error:
        raise SystemExit(str(error)) from error
    if not reseed and holds:
        return connection, Seeded(loaded=False, seconds=0.0)
    print(f"seeding the peer: {data.accounts:,} accounts, {data.posts:,} posts ...", flush=True)
    return connection, seed.timed(lambda: seed.seed_peer(connection, data))


def _check_token(side: Side) -> None:
    """One listing as account 0, so a wrong signing key or unseeded data stops the run before it measures."""
    token = side.tokens.read_text().split("\n", 1)[0]
    try:
        posts = harness.call(side.base, "GET", "/posts/get_my_posts", token=token)
    except Exception as error:
        raise SystemExit(f"{side.name} refused account 0's minted token or its listing: {error}") from error
    if not isinstance(posts, list) or len(posts) < 1:
        raise SystemExit(f"{side.name} listed no posts for account 0: is its database the seeded one?")


@contextmanager
def prepare(options: ScaleOptions, work_dir: Path, data: ScaleData) -> Iterator[Prepared]:
    """MariaDB (or `options.mariadb`), both databases seeded, tokens minted, Redis if asked, our server; all stopped."""
    with ExitStack() as stack:
        if options.mariadb:
            server_url = options.mariadb.rstrip("/")
        else:
            mariadb = harness.start_mariadb(work_dir)
            stack.callback(mariadb.close)
            server_url = f"mysql+pymysql://root@127.0.0.1:{mariadb.port}"
        pool = _grow_buffer_pool(server_url, options.buffer_pool_mib)
        print(f"MariaDB {server_url}, InnoDB buffer pool {pool:,} MiB", flush=True)
        url, engine, ours_seeded = _our_database(server_url, data, options.reseed)
        stack.callback(engine.dispose)
        max_seq = seed.seeded_max_seq(engine)
        seeded = {OURS: ours_seeded}
        started = time.monotonic()
        minted = seed.mint_ours(url, data, seed.generations(engine, data))
        tokens = seed.write_tokens(work_dir / "tokens-ours.txt", minted)
        print(f"our {len(minted):,} access tokens minted in {time.monotonic() - started:.1f} s", flush=True)
        cache_env: dict[str, str] = {}
        if options.redis:
            redis = RedisServer(work_dir / "redis")
            redis.start()
            stack.callback(redis.stop)
            cache_env = {"REDIS_URL": redis.url}
        env = {"DATABASE_URL": url, **cache_env}
        ours = harness.start_server("ours", "wsgi:app", work_dir, env, gunicorn_args=options.gunicorn_args)
        stack.callback(ours.stop)
        sides = [Side(OURS, ours.base, tokens, lambda: seed.drop_ours_additions(engine, max_seq))]
        if options.peer:
            if not options.peer_db:
                raise SystemExit("--peer with --users needs --peer-db URL: the scale run seeds the peer's database")
            connection, seeded[PEER] = _peer_database(options.peer_db, data, options.reseed)
            stack.callback(connection.close)
            peer_tokens = seed.write_tokens(work_dir / "tokens-peer.txt", seed.mint_peer(data, options.peer_secret))
            sides.append(
                Side(PEER, options.peer.rstrip("/"), peer_tokens, lambda: seed.drop_peer_additions(connection, data))
            )
        for side in sides:
            _check_token(side)
        yield Prepared(sides, ours, seeded)


def run_once(
    workload: ScaleWorkload, side: Side, users: int, wrk: Wrk, duration_s: float | None = None, *, clean: bool = True
) -> WrkResult:
    """One wrk run of the workload against one side as random accounts among the first `users`.

    With `clean`, what earlier runs added is deleted first, so the run starts from the seeded
    data; but not before the side's last run has had DRAIN_SECONDS to drain: when wrk stops, the
    requests it abandoned are still queued at the server, and a clean-up then would race them (a
    cycle's delete would find its post gone, a 404 in the server's log that wrk never sees).
    """
    if clean:
        time.sleep(max(0.0, side.ended + DRAIN_SECONDS - time.monotonic()))
        side.drop_additions()
    threads = wrk.connections if workload.one_connection_per_thread else wrk.threads
    try:
        return harness.run_wrk(
            side.base + workload.path,
            workload.script,
            [str(side.tokens), str(users), *workload.extra_args],
            duration_s=duration_s or wrk.duration_s,
            connections=wrk.connections,
            threads=threads,
        )
    finally:
        side.ended = time.monotonic()


def run(options: ScaleOptions) -> list[ScaleRow]:
    """Seed, run every chosen workload at every N for `options.pairs` pairs, print the table, write JSON."""
    harness.wrk_path()
    data = ScaleData(accounts=options.accounts)
    if max(options.users) > data.accounts:
        raise SystemExit(f"--users {max(options.users):,} is more than the {data.accounts:,} accounts seeded")
    workloads = select_scale(SCALE_WORKLOADS, options.only)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    load_before = os.getloadavg()
    runs: Runs = {}
    warm_up_errors: WarmUpErrors = {}
    rss_after = 0.0
    try:
        with prepare(options, work_dir, data) as prepared:
            load_start = os.getloadavg()
            for pair in range(options.pairs):
                for users in options.users:
                    for workload in workloads:
                        for side in prepared.sides:
                            if side.name == PEER and not workload.on_peer:
                                continue
                            if pair == 0:
                                warm = run_once(workload, side, users, options.wrk, WARM_UP_SECONDS)
                                warm_up_errors[(workload.name, users, side.name)] = warm.errors
                            profiler = None
                            if options.profile and pair == 0 and side.name == OURS:
                                label = f"{options.label}-" if options.label else ""
                                path = RESULTS_DIR / f"profile-scale-{label}{slug(workload.name)}-{users}.txt"
                                profiler = Profiler(prepared.ours.server.worker_pids(), options.wrk.duration_s, path)
                                profiler.start()
                            # Right after its warm-up, a run goes on from where the warm-up left the data.
                            result = run_once(workload, side, users, options.wrk, clean=pair > 0)
                            runs.setdefault((workload.name, users, side.name), []).append(result)
                            _print_run(pair, options.pairs, workload.name, users, side.name, result)
                            if profiler:
                                print(profiler.report(), flush=True)
                    if users == max(options.users):
                        rss_after = max(rss_after, max(prepared.ours.server.worker_rss_mib().values(), default=0.0))
            peak_rss = prepared.ours.peak_rss_mib()
            seeded = prepared.seeded
            server_log = problems(prepared.ours.server.log())
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    rows = [scale_row(w.name, users, runs, w.target) for users in options.users for w in workloads]
    flat, flat_pairs = flatness(runs)
    header = _header(options, data, seeded, load_before, load_start)
    print("\n" + header + "\n")
    print(format_scale_table(rows) + "\n")
    print(format_flatness(flat, flat_pairs))
    print(format_rss(rss_after, max(options.users), peak_rss))
    stem = options.label or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    _write_json(stem, options, header, rows, runs, flat, rss_after, peak_rss, seeded)
    log_path = RESULTS_DIR / f"scale-{stem}-ours.log"
    log_path.write_text(server_log)
    print(f"our server's warnings, errors and answers >= 400: {log_path}, {len(server_log.splitlines())} lines")
    return rows


def problems(log: str) -> str:
    """The lines of our server's log worth keeping: all but the access log's lines for answers below 400.

    At LOG_LEVEL=warning the rest is what went wrong (a 503's cause); each 4xx and 5xx answer
    stays beside it.
    """
    kept = []
    for line in log.splitlines(keepends=True):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        access = isinstance(record, dict) and record.get("logger") == "gunicorn.access"
        status = record.get("status") if access and isinstance(record, dict) else None
        if not access or not isinstance(status, int) or status >= 400:
            kept.append(line)
    return "".join(kept)


def _print_run(pair: int, pairs: int, workload: str, users: int, side: str, result: WrkResult) -> None:
    print(
        f"pair {pair + 1}/{pairs} {workload:<40} {users:>6,} users {side:<5} {result.rps:>9,.1f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}",
        flush=True,
    )


def _loads(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.1f}" for value in values)


def _header(
    options: ScaleOptions,
    data: ScaleData,
    seeded: dict[str, Seeded],
    load_before: tuple[float, float, float],
    load_start: tuple[float, float, float],
) -> str:
    cache = "REDIS_URL (a throwaway redis-server)" if options.redis else "the default cache (filesystem on /dev/shm)"
    extra = f" {options.gunicorn_args}" if options.gunicorn_args else ""
    peer = f"; peer {options.peer}" if options.peer else ""
    seeding = ", ".join(
        f"{name} seeded in {s.seconds:.0f} s" if s.loaded else f"{name} already seeded" for name, s in seeded.items()
    )
    w = options.wrk
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, scale run, ours: gunicorn -c gunicorn.conf.py{extra}, {harness.WORKERS} "
        f"workers, {cache}{peer}; {data.accounts:,} accounts x {data.posts_per_account} posts ({seeding}); "
        f"each request as a random one of the first N accounts; wrk {w.connections} connections, medians of "
        f"{options.pairs} pairs of {w.duration_s:g} s runs; {os.cpu_count()} CPUs, load average (1 / 5 / 15 min) "
        f"{_loads(load_before)} before seeding, {_loads(load_start)} before the runs, {_loads(os.getloadavg())} after"
    )


def _write_json(
    stem: str,
    options: ScaleOptions,
    header: str,
    rows: list[ScaleRow],
    runs: Runs,
    flat: float | None,
    rss_after: float,
    peak_rss: float,
    seeded: dict[str, Seeded],
) -> None:
    document: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(),
        "configuration": header,
        "options": asdict(options),
        "seeded": {name: asdict(s) for name, s in seeded.items()},
        "rows": [asdict(row) for row in rows],
        "runs": [
            {"workload": w, "users": users, "server": side, "pair": pair, **asdict(result), "rps": result.rps}
            for (w, users, side), results in runs.items()
            for pair, result in enumerate(results)
        ],
        "flatness_100_over_1": flat,
        "worker_rss_after_most_users_mib": rss_after,
        "worker_peak_rss_mib": peak_rss,
    }
    write_results(f"scale-{stem}.json", document)
