"""Hostile clients: `slow` (1,000 slow connections while others are probed), `oversize` (413s amid keep-alive)."""

from __future__ import annotations

import http.client
import json
import math
import selectors
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field

from bench.stress.context import Context, Section
from bench.workloads import ADD, LIST

LIMIT = 1024 * 1024
PROBE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values; math.inf stands for a failed request."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    """Seconds as `12 ms`, or `timeout` for a failed request."""
    return "timeout" if math.isinf(seconds) else f"{seconds * 1000:.0f} ms"


@dataclass
class _Slow:
    sock: socket.socket
    kind: str
    opened: float


@dataclass
class SwarmReport:
    """What the slow connections went through."""

    open_samples: list[int]
    lifetimes: dict[str, list[float]]  # seconds from opening to the server closing it, per kind
    still_open: dict[str, int]

    @property
    def mean_open(self) -> float:
        """Mean number of slow connections open at once while sampled."""
        return statistics.mean(self.open_samples) if self.open_samples else 0.0


class SlowSwarm:
    """Keeps `count` slow connections open to 127.0.0.1:port in a thread, reopening those the server closes.

    Most trickle their request headers one byte a second and never end them; 5 % send complete
    add-post headers and 400 of 1,000 announced body bytes, then nothing.
    """

    def __init__(self, port: int, count: int, token: str) -> None:
        self._port = port
        self._count = count
        self._bodies = round(count * 0.05)
        self._token = token
        self._selector = selectors.DefaultSelector()
        self._conns: dict[int, _Slow] = {}
        self._lifetimes: dict[str, list[float]] = {"headers": [], "body": []}
        self._samples: list[int] = []
        self.sampling = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-swarm", daemon=True)

    def start(self) -> None:
        """Open every connection, then keep them slow in the background."""
        self._thread.start()
        self._ready.wait(60)

    def stop(self) -> SwarmReport:
        """Stop, close every connection, and report."""
        self._stop.set()
        self._thread.join(30)
        still_open = {"headers": 0, "body": 0}
        for conn in list(self._conns.values()):
            still_open[conn.kind] += 1
            conn.sock.close()
        return SwarmReport(self._samples, self._lifetimes, still_open)

    def _open(self, kind: str) -> None:
        host = f"Host: 127.0.0.1:{self._port}\r\n"
        if kind == "headers":
            head = f"GET /healthz HTTP/1.1\r\n{host}X-Slow: ".encode()
        else:
            auth = f"Authorization: Bearer {self._token}\r\nContent-Type: application/json\r\n"
            head = f"POST {ADD} HTTP/1.1\r\n{host}{auth}Content-Length: 1000\r\n\r\n".encode()
            head += b'{"text": "' + b"a" * 390
        try:
            sock = socket.create_connection(("127.0.0.1", self._port), timeout=CONNECT_TIMEOUT)
            sock.sendall(head)
        except OSError:
            return
        sock.setblocking(False)
        self._conns[sock.fileno()] = _Slow(sock, kind, time.monotonic())
        self._selector.register(sock, selectors.EVENT_READ)

    def _closed(self, conn: _Slow) -> None:
        self._lifetimes[conn.kind].append(time.monotonic() - conn.opened)
        self._selector.unregister(conn.sock)
        del self._conns[conn.sock.fileno()]
        conn.sock.close()

    def _refill(self) -> None:
        bodies = sum(conn.kind == "body" for conn in self._conns.values())
        for _ in range(self._bodies - bodies):
            self._open("body")
        for _ in range(self._count - len(self._conns)):
            self._open("headers")

    def _run(self) -> None:
        self._refill()
        self._ready.set()
        next_trickle = next_sample = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_trickle:
                next_trickle = now + 1.0
                for conn in [c for c in self._conns.values() if c.kind == "headers"]:
                    try:
                        conn.sock.send(b"a")
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._closed(conn)
                self._refill()  # the server closed some: an attacker opens new ones
            if self.sampling and now >= next_sample:
                next_sample = now + 0.5
                self._samples.append(len(self._conns))
            for key, _ in self._selector.select(timeout=0.05):
                readable = self._conns.get(key.fd)
                if readable is None:
                    continue
                try:
                    data = readable.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # a late body's 408 is read and dropped; only the close counts
                    self._closed(readable)


def probe(port: int, path: str, headers: dict[str, str], until: float, into: list[float]) -> None:
    """GET `path` on a fresh connection again and again until `until`; latencies into `into` (inf: failed)."""
    while time.monotonic() < until:
        start = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
        try:
            connection.request("GET", path, headers={**headers, "Connection": "close"})
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            connection.close()
        into.append(time.monotonic() - start if ok else math.inf)
        time.sleep(0.05)


def slow(ctx: Context) -> Section:
    """1,000 slow connections held open while /healthz and a cached listing are probed on fresh connections."""
    o, server = ctx.options, ctx.server
    token = ctx.accounts["lister"].token
    swarm = SlowSwarm(server.port, o.slow_connections, token)
    swarm.start()
    time.sleep(1.0)
    swarm.sampling = True
    until = time.monotonic() + o.probe_window_s
    health: list[float] = []
    listing: list[float] = []
    probes = [
        threading.Thread(target=probe, args=(server.port, "/healthz", {}, until, health)),
        threading.Thread(target=probe, args=(server.port, LIST, {"Authorization": f"Bearer {token}"}, until, listing)),
    ]
    for thread in probes:
        thread.start()
    for thread in probes:
        thread.join()
    swarm.sampling = False
    time.sleep(max(0.0, o.slow_hold_s - o.probe_window_s - 1.0))
    report = swarm.stop()

    def closed(kind: str) -> str:
        lifetimes = report.lifetimes[kind]
        if not lifetimes:
            return f"never ({report.still_open[kind]} open after {o.slow_hold_s:.0f} s)"
        return f"p50 {statistics.median(lifetimes):.1f} s, max {max(lifetimes):.1f} s"

    def figures(latencies: list[float]) -> str:
        failed = sum(math.isinf(v) for v in latencies)
        p50, p99 = ms(percentile(latencies, 50)), ms(percentile(latencies, 99))
        return f"p50 {p50} p99 {p99} failed {failed}/{len(latencies)}"

    return Section(
        f"slow: {o.slow_connections} slow connections",
        [
            f"slow connections held (mean): {report.mean_open:.0f} of {o.slow_connections}",
            f"/healthz meanwhile: {figures(health)}",
            f"cached listing meanwhile: {figures(listing)}",
            f"server closed trickling headers after {closed('headers')}; unfinished bodies after {closed('body')}",
        ],
    )


@dataclass
class MixedReport:
    """A keep-alive load where some requests are uploads over the 1 MiB limit."""

    requests: int = 0
    oversize: int = 0
    refused_413: int = 0
    oversize_failed: int = 0  # reset or closed before its 413 could be read
    after_413: int = 0
    after_413_failed: int = 0  # sent right after a 413 on the same connection, and failed
    other_failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def mixed_client(port: int, token: str, requests: int, oversize_every: int, offset: int) -> MixedReport:
    """One client connection reused as http.client does (kept unless a response says close): listings and uploads."""
    report = MixedReport()
    auth = {"Authorization": f"Bearer {token}"}
    oversize_body = json.dumps({"text": "x" * LIMIT}).encode()  # a little over 1 MiB
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    previous_was_413 = False
    try:
        for index in range(requests):
            oversize = (index + offset) % oversize_every == 0
            report.requests += 1
            report.oversize += oversize
            report.after_413 += previous_was_413
            try:
                if oversize:
                    headers = {**auth, "Content-Type": "application/json"}
                    connection.request("POST", ADD, body=oversize_body, headers=headers)
                else:
                    connection.request("GET", LIST, headers=auth)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                status = 0
            report.statuses[status] = report.statuses.get(status, 0) + 1
            if status != (413 if oversize else 200):
                if oversize:
                    report.oversize_failed += 1
                elif previous_was_413:
                    report.after_413_failed += 1
                else:
                    report.other_failed += 1
            report.refused_413 += status == 413
            previous_was_413 = status == 413
    finally:
        connection.close()
    return report


def oversize(ctx: Context, clients: int = 8, requests_per_client: int = 300, oversize_every: int = 50) -> Section:
    """8 keep-alive clients, every 50th request an upload over 1 MiB: requests lost after a 413."""
    reports: list[MixedReport] = []
    token = ctx.accounts["lister"].token

    def client(offset: int) -> None:
        reports.append(mixed_client(ctx.server.port, token, requests_per_client, oversize_every, offset))

    threads = [threading.Thread(target=client, args=(index * 7 + 1,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = MixedReport()
    for report in reports:
        for name in ("requests", "oversize", "refused_413", "oversize_failed", "after_413", "after_413_failed"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.other_failed += report.other_failed
    failed = total.oversize_failed + total.after_413_failed + total.other_failed
    return Section(
        f"oversize: {clients} keep-alive clients, every {oversize_every}th request an upload over 1 MiB",
        [
            f"{total.requests} requests, {total.oversize} oversize, {total.refused_413} answered 413",
            f"failed {failed} ({failed / max(1, total.requests):.1%}): {total.after_413_failed} of "
            f"{total.after_413} right after a 413, {total.oversize_failed} oversize unanswered, "
            f"{total.other_failed} other",
        ],
    )
