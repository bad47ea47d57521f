"""Hostile and probing clients for `python -m bench.stress`: slow connections, probes, 413s in a mixed load."""

from __future__ import annotations

import http.client
import json
import math
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

LIST = "/api/v1/posts/get_my_posts"
ADD = "/api/v1/posts/add-post"
LIMIT = 1024 * 1024
PROBE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values; math.inf stands for a failed request."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


@dataclass
class _Slow:
    sock: socket.socket
    kind: str
    opened: float


@dataclass
class SwarmReport:
    """What the slow connections went through."""

    target: int
    open_samples: list[int]
    # Seconds from opening to the server closing it, per kind ("headers", "body").
    lifetimes: dict[str, list[float]]
    still_open: dict[str, int]
    connect_failures: int

    @property
    def mean_open(self) -> float:
        """Mean number of slow connections open at once while sampled."""
        return sum(self.open_samples) / len(self.open_samples) if self.open_samples else 0.0


class SlowSwarm:
    """Keeps `count` slow connections open to 127.0.0.1:port, reopening those the server closes.

    Most trickle their request headers one byte per `trickle_every` seconds and never end them;
    `body_share` of them send complete add-post headers and 400 of 1,000 announced body bytes,
    then nothing. Runs in its own thread between start() and stop().
    """

    def __init__(
        self, port: int, count: int, token: str, *, body_share: float = 0.05, trickle_every: float = 1.0
    ) -> None:
        self._port = port
        self._count = count
        self._bodies = round(count * body_share)
        self._token = token
        self._trickle_every = trickle_every
        self._selector = selectors.DefaultSelector()
        self._conns: dict[int, _Slow] = {}
        self._lifetimes: dict[str, list[float]] = {"headers": [], "body": []}
        self._samples: list[int] = []
        self._connect_failures = 0
        self._sampling = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-swarm", daemon=True)

    def start(self, ready_timeout: float = 60.0) -> None:
        """Open every connection, then keep them slow in the background; returns once all were opened."""
        self._thread.start()
        self._ready.wait(ready_timeout)

    def sample(self, on: bool) -> None:
        """Start or stop recording how many slow connections are open (twice per second)."""
        self._sampling = on

    def open_now(self) -> int:
        """Slow connections open right now."""
        return len(self._conns)

    def stop(self) -> SwarmReport:
        """Stop, close every connection, and report."""
        self._stop.set()
        self._thread.join(30)
        still_open = {"headers": 0, "body": 0}
        for conn in list(self._conns.values()):
            still_open[conn.kind] += 1
            conn.sock.close()
        self._conns.clear()
        return SwarmReport(self._count, self._samples, self._lifetimes, still_open, self._connect_failures)

    def _request_head(self, kind: str) -> bytes:
        host = f"Host: 127.0.0.1:{self._port}\r\n"
        if kind == "headers":
            return f"GET /healthz HTTP/1.1\r\n{host}X-Slow: ".encode()
        auth = f"Authorization: Bearer {self._token}\r\nContent-Type: application/json\r\n"
        head = f"POST {ADD} HTTP/1.1\r\n{host}{auth}Content-Length: 1000\r\n\r\n".encode()
        return head + b'{"text": "' + b"a" * 390

    def _open(self, kind: str) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self._port), timeout=CONNECT_TIMEOUT)
            sock.sendall(self._request_head(kind))
        except OSError:
            self._connect_failures += 1
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
                next_trickle = now + self._trickle_every
                for conn in list(self._conns.values()):
                    if conn.kind == "headers":
                        try:
                            conn.sock.send(b"a")
                        except BlockingIOError:
                            pass
                        except OSError:
                            self._closed(conn)
                self._refill()  # the server closed some: an attacker opens new ones
            if self._sampling and now >= next_sample:
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


@dataclass
class ProbeReport:
    """Latencies of sequential probe requests; math.inf for a failed or timed-out one."""

    latencies: list[float] = field(default_factory=list)

    @property
    def failures(self) -> int:
        """Requests that did not answer 200 within the probe timeout."""
        return sum(math.isinf(value) for value in self.latencies)

    def p(self, q: float) -> float:
        """The q-th percentile in seconds (inf when more than 1 - q of them failed)."""
        return percentile(self.latencies, q)


def probe(port: int, path: str, headers: dict[str, str], until: float, pause: float = 0.05) -> ProbeReport:
    """GET `path` on a fresh connection again and again until `until` (monotonic); each bounded by PROBE_TIMEOUT."""
    report = ProbeReport()
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
        report.latencies.append(time.monotonic() - start if ok else math.inf)
        time.sleep(pause)
    return report


def probe_in_background(
    port: int, path: str, headers: dict[str, str], until: float
) -> tuple[threading.Thread, ProbeReport]:
    """probe() in a thread; the report fills in as it runs."""
    report = ProbeReport()

    def run() -> None:
        report.latencies.extend(probe(port, path, headers, until).latencies)

    thread = threading.Thread(target=run, name=f"probe {path}", daemon=True)
    thread.start()
    return thread, report


@dataclass
class MixedReport:
    """A keep-alive load where some requests are uploads over the 1 MiB limit."""

    requests: int = 0
    oversize: int = 0
    refused_413: int = 0
    # The oversize request itself failed (reset or closed before its 413 could be read).
    oversize_failed: int = 0
    after_413: int = 0
    # Requests sent right after a 413 on the same client connection that failed.
    after_413_failed: int = 0
    other_failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, other: MixedReport) -> None:
        """Fold another thread's counts into this one."""
        for name in ("requests", "oversize", "refused_413", "oversize_failed", "after_413", "after_413_failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.other_failed += other.other_failed
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count


def _mixed_client(port: int, token: str, requests: int, oversize_every: int, offset: int) -> MixedReport:
    """One client connection reused the way http.client does: kept unless a response says close."""
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
                    json_headers = {**auth, "Content-Type": "application/json"}
                    connection.request("POST", ADD, body=oversize_body, headers=json_headers)
                else:
                    connection.request("GET", LIST, headers=auth)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                status = 0
            report.statuses[status] = report.statuses.get(status, 0) + 1
            expected = 413 if oversize else 200
            if status != expected:
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


def mixed_uploads(
    port: int, token: str, *, clients: int = 8, requests_per_client: int = 300, oversize_every: int = 50
) -> MixedReport:
    """`clients` keep-alive clients, each sending cached listings with every `oversize_every`-th an oversize upload."""
    reports: list[MixedReport] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        report = _mixed_client(port, token, requests_per_client, oversize_every, offset)
        with lock:
            reports.append(report)

    threads = [threading.Thread(target=run, args=(index * 7 + 1,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = MixedReport()
    for report in reports:
        total.add(report)
    return total
