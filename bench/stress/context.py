"""What every stress scenario gets (the servers, the accounts, the options) and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bench.harness import Account, Gunicorn
from tests.support.mariadb import MariaDBServer


@dataclass(frozen=True)
class StressOptions:
    """How hard the scenarios push."""

    slow_connections: int = 1000
    slow_hold_s: float = 22.0
    probe_window_s: float = 8.0
    outage_writers: int = 24
    outage_rounds: int = 3
    listing_mib: int = 1024
    listing_clients: int = 4
    gunicorn_args: str = ""


@dataclass
class Context:
    """Up for the whole stress run: MariaDB, our service (shipped config, 2 workers) on it, and its accounts.

    `lister` has 20 posts whose listing is cached; `adder` has none.
    """

    options: StressOptions
    work_dir: Path
    mariadb: MariaDBServer
    database_url: str
    engine: Engine
    server: Gunicorn
    accounts: dict[str, Account] = field(default_factory=dict)


@dataclass
class Section:
    """One scenario's figures: a title and the lines printed under it."""

    title: str
    lines: list[str]
