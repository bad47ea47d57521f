"""Concurrent streamed listings through a live server, with the worker's peak RSS meanwhile.

Shared by tests/e2e/test_big_listings.py (asserts the bound) and bench/stress/listing.py (prints it).
Each client hashes the body as it arrives, so the client side never holds a listing.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

import requests

from tests.support.api import LIST, bearer
from tests.support.gunicorn import LiveServer

READ_BYTES = 256 * 1024
SAMPLE_SECONDS = 0.05


@dataclass
class Download:
    """One client's listing: status, headers, size, digest, ends, time, or the error that ended it."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    size: int = 0
    digest: str = ""
    head: bytes = b""
    tail: bytes = b""
    seconds: float = 0.0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def download(url: str, token: str, start: threading.Barrier, into: Download, timeout: float) -> None:
    """GET the listing once every client is ready, hashing it as it arrives."""
    try:
        start.wait(timeout=timeout)
        began = time.monotonic()
        digest = hashlib.sha256()
        with requests.get(url, headers=bearer(token), stream=True, timeout=timeout) as response:
            into.status = response.status_code
            into.headers = dict(response.headers)
            for chunk in response.iter_content(chunk_size=READ_BYTES):
                if not into.head:
                    into.head = chunk[:64]
                into.tail = (into.tail + chunk)[-64:]
                digest.update(chunk)
                into.size += len(chunk)
        into.digest = digest.hexdigest()
        into.seconds = time.monotonic() - began
    except BaseException as error:  # reported by the caller
        into.error = error
    finally:
        into.done.set()


def list_at_once(live: LiveServer, pid: int, token: str, clients: int, timeout: float) -> tuple[float, list[Download]]:
    """`clients` listings started together; worker `pid`'s peak RSS (MiB) meanwhile, and the downloads.

    Bounded: gives up (RuntimeError) if they have not all finished within clients x timeout.
    """
    start = threading.Barrier(clients + 1)
    downloads = [Download() for _ in range(clients)]
    for item in downloads:
        args = (live.base + LIST, token, start, item, timeout)
        threading.Thread(target=download, args=args, daemon=True).start()
    start.wait(timeout=timeout)
    peak = live.worker_rss_mib()[pid]
    deadline = time.monotonic() + clients * timeout
    while not all(item.done.is_set() for item in downloads):
        if time.monotonic() > deadline:
            raise RuntimeError("the listings did not finish")
        peak = max(peak, live.worker_rss_mib()[pid])
        time.sleep(SAMPLE_SECONDS)
    return peak, downloads
