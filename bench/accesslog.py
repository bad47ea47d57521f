"""Which worker served each request: per-worker counts read from the servers' access logs.

Every bench server runs in production shape, so its access log is JSON lines naming the worker
(`pid`) and the client's port (`client_port`); a run's slice of the log tells how many requests,
and over how many distinct connections (client ports), each worker served. Over keep-alive, a
connection stays on the worker that accepted it; an uneven split of wrk's 16 connections shows
up here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

ACCESS_LOGGER = "gunicorn.access"


@dataclass(frozen=True)
class WorkerShare:
    """What one worker served during a run."""

    requests: int
    connections: int


def worker_shares(log_text: str) -> dict[int, WorkerShare]:
    """Requests and distinct client ports per worker pid, from the JSON access-log lines in `log_text`."""
    requests: dict[int, int] = {}
    ports: dict[int, set[object]] = {}
    for line in log_text.splitlines():
        if ACCESS_LOGGER not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut at the slice's start
        if not isinstance(record, dict) or record.get("logger") != ACCESS_LOGGER:
            continue
        pid = int(record["pid"])
        requests[pid] = requests.get(pid, 0) + 1
        ports.setdefault(pid, set()).add(record.get("client_port"))
    return {pid: WorkerShare(count, len(ports[pid])) for pid, count in sorted(requests.items())}


def busiest_share(shares: dict[int, WorkerShare]) -> float:
    """The busiest worker's fraction of the run's requests (1/workers is even; 1.0: one worker did all)."""
    total = sum(share.requests for share in shares.values())
    if not total:
        return 0.0
    return max(share.requests for share in shares.values()) / total


def format_shares(shares: dict[int, WorkerShare], workers: int) -> str:
    """E.g. `61%/39% of 9,876 req, conns 10/6`; workers that served nothing show as 0%."""
    total = sum(share.requests for share in shares.values())
    values = sorted(shares.values(), key=lambda share: share.requests, reverse=True)
    values += [WorkerShare(0, 0)] * max(0, workers - len(values))
    percents = "/".join(f"{100 * share.requests / total:.0f}%" if total else "0%" for share in values)
    connections = "/".join(str(share.connections) for share in values)
    return f"{percents} of {total:,} req, conns {connections}"
