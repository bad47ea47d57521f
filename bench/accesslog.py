"""Which worker served each request: the bench's access-log format and the per-worker counts read from it.

Every bench server logs `access <pid> <client port> <status>` per request, so a run's slice of the
log tells how many requests, and over how many distinct connections (client ports), each worker
served. Over keep-alive, a connection stays on the worker that accepted it; an uneven split of
wrk's 16 connections shows up here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# gunicorn's atoms: %(p)s is "<pid>", %({remote_port}e)s the client's port from the WSGI environ.
ACCESS_LOG_FORMAT = "access %(p)s %({remote_port}e)s %(s)s"
_LINE = re.compile(r"^access <(\d+)> (\d+|-) (\d{3})\b", re.MULTILINE)


@dataclass(frozen=True)
class WorkerShare:
    """What one worker served during a run."""

    requests: int
    connections: int


def worker_shares(log_text: str) -> dict[int, WorkerShare]:
    """Requests and distinct client ports per worker pid, from access-log lines in ACCESS_LOG_FORMAT."""
    requests: dict[int, int] = {}
    ports: dict[int, set[str]] = {}
    for match in _LINE.finditer(log_text):
        pid = int(match.group(1))
        requests[pid] = requests.get(pid, 0) + 1
        ports.setdefault(pid, set()).add(match.group(2))
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
