"""The gunicorn worker class of this service (`worker_class` in gunicorn.conf.py): gevent, hardened.

Why gevent (measured; docs/serving.md): a connection costs a greenlet, not a thread, so
a thousand clients trickling their headers or bodies cannot take the slots that /healthz and
the API need, as they could with gthread's 2 x 4 threads. On top of gunicorn's gevent worker:

- **Fair turns.** After each response the connection's greenlet yields to the event loop
  before reading its next request. gevent switches greenlets only when a socket would block; a
  keep-alive client on the same host answers so fast that its next request is always already
  there, so one connection could be served hundreds of times in a row while the worker's other
  connections waited (cached-listing p99 0.3-0.9 s under 16 keep-alive connections).
- **Bounded slow clients.** Request headers must arrive within `keepalive` seconds (gunicorn's
  keep-alive loop already bounds the first request too); the body within
  `BODY_TIMEOUT_SECONDS` (default 15) of the headers, else 408 and the connection is closed
  (serving.connection).
- **Honest closes.** A response the app marks `Connection: close` (the 413) closes the
  connection and says so; closing lingers briefly to read what the client is still sending,
  so the kernel does not reset the connection under the response.
- **JSON errors.** gunicorn's own refusals (400, 414, 431, 501, ...) are `{"error": ...}`
  (serving.errors) instead of HTML.
- **Password hashing off the hub** is the app factory's part (serving.offload).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import gevent
from gunicorn import util
from gunicorn.http.message import Request
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.ggevent import GeventWorker

from config import load_server_settings
from serving.connection import CLOSE_CONNECTION, HonestConnections
from serving.errors import blamed_on_client, error_page, status_for

# Closing after a response: how long and how much to keep reading what the client still sends
# (an upload refused with 413 is at most a little over the 1 MiB limit in flight).
LINGER_SECONDS = 2.0
LINGER_BYTES = 2 * 1024 * 1024
# Any positive sleep resumes on the event loop's next iteration, after the I/O of every other
# ready connection; sleep(0) may resume before the loop polls again.
YIELD_SECONDS = 1e-6


def _gevent_deadline(seconds: float) -> Any:
    """A scope that abandons its block silently after `seconds` (the greenlet is interrupted)."""
    return gevent.Timeout(seconds, False)


class Worker(GeventWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's gevent worker with fair turns, a body deadline, honest closes and JSON errors."""

    wsgi: Any

    def load_wsgi(self) -> None:
        """Load the app, then wrap it for honest closes and the body deadline."""
        super().load_wsgi()
        # Checked by the master already (gunicorn.conf.py), before any worker started.
        body_timeout = load_server_settings().body_timeout_seconds
        self.wsgi = HonestConnections(self.wsgi, body_timeout, _gevent_deadline)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> None:
        """Serve one request; linger when closing after it, else let other connections have a turn."""
        token = CLOSE_CONNECTION.set(req.force_close)
        try:
            super().handle_request(listener_name, req, sock, addr)
        except StopIteration:
            # The connection closes after this response (gunicorn said so in its headers).
            util.close_graceful(sock, timeout=LINGER_SECONDS, max_drain=LINGER_BYTES)
            raise
        finally:
            CLOSE_CONNECTION.reset(token)
        try:
            gevent.sleep(YIELD_SECONDS)
        except gevent.GreenletExit:
            # Killed at the end of a graceful shutdown between two requests: close quietly
            # rather than let the caller answer a request nobody sent with a 500.
            raise StopIteration from None

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Answer gunicorn's own refusals (malformed or oversized requests) with a JSON error, then close."""
        page = error_page(status_for(exc))
        ip = addr[0] if addr else ""
        if blamed_on_client(exc):
            self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        else:
            self.log.exception("Error handling request")
        # Header errors carry the request they belong to (for the access log); others a string.
        req = req if req is not None else getattr(exc, "req", None)
        if isinstance(req, Request):
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"] = ip
            response = Response(req, client, self.cfg)
            response.status = f"{page.status} {page.reason}"
            response.response_length = len(page.body)
            self.log.access(response, req, environ, timedelta(0))
        try:
            util.write_nonblock(client, page.http_bytes())
        except Exception:
            self.log.debug("Failed to send error message.")
            return
        util.close_graceful(client, timeout=LINGER_SECONDS, max_drain=LINGER_BYTES)
