"""A bounded queue of mails, drained by one background thread per process, with bounded retries.

Requests only enqueue (a constant-time put that never blocks), so a slow or dead SMTP server
never delays an answer or holds a worker; the thread does the rest: the job's own preparation
(a database lookup, a token) and the delivery. Under gunicorn's gevent worker the thread and
the queue are monkey-patched into a greenlet and a gevent queue, and SMTP's socket waits yield
to the hub; in tests and the dev server they are a real daemon thread and queue.

The thread starts on first use in each process (after gunicorn's fork), and again in a child
forked later. Mails still queued when a worker exits are lost, like any in-flight request.
With traces on, each job's work (preparing and sending the mail) is one `mail send` span in a
trace of its own, linked to the span of the request that queued it (observability.tracing).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

from mail.transport import Transport
from observability.metrics import MAIL_DROPPED, MAIL_FAILED, MAIL_RETRIED, MAIL_SENT
from observability.tracing import follow_up, origin

LOGGER_NAME = "posts.mail"
log = logging.getLogger(LOGGER_NAME)

Job = Callable[[], EmailMessage | None]
"""Prepares one mail (None: nothing to send), run on the outbox's thread."""


class Outbox:
    """Queues mail jobs (at most `capacity` waiting) and sends each with up to `attempts` tries.

    Between tries it waits `retry_seconds`, doubled after each failure. A failure after the
    last try, a job that raises, and a job refused because the queue is full are logged and
    counted in the metrics (posts_api_mail_*_total); none of them reaches the caller.
    """

    def __init__(
        self,
        transport: Transport,
        capacity: int,
        attempts: int,
        retry_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._transport = transport
        self._capacity = capacity
        self._attempts = attempts
        self._retry_seconds = retry_seconds
        self._sleep = sleep
        # Each job with where it was queued from (observability.tracing.origin; None with traces off).
        self._queue: queue.Queue[tuple[Job, object | None]] = queue.Queue(capacity)
        self._started_in: int | None = None
        self._start_lock = threading.Lock()
        self._idle = threading.Condition()
        self._unfinished = 0

    def submit(self, job: Job) -> bool:
        """Queue `job` without waiting; False (logged, counted) when the queue is full."""
        self._ensure_thread()
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait((job, origin()))
        except queue.Full:
            self._done()
            MAIL_DROPPED.inc()
            log.error("mail queue full (%d waiting): a mail was dropped", self._capacity)
            return False
        return True

    def deliver(self, message: EmailMessage) -> bool:
        """Send now, in the calling thread, with the retries; True once sent, False after the last failure."""
        for attempt in range(1, self._attempts + 1):
            try:
                self._transport.send(message)
            except OSError as exc:
                # The recipient's address stays out of the log, as everywhere else.
                reason = f"{type(exc).__name__}{_smtp_code(exc)}"
                if attempt == self._attempts:
                    MAIL_FAILED.inc()
                    log.error("mail not sent after %d attempts: %s", attempt, reason)
                    return False
                MAIL_RETRIED.inc()
                delay = self._retry_seconds * 2 ** (attempt - 1)
                log.warning("mail attempt %d failed (%s); retrying in %.1fs", attempt, reason, delay)
                self._sleep(delay)
            else:
                MAIL_SENT.inc()
                return True
        return False

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued job is done; False if some are still pending after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def _ensure_thread(self) -> None:
        pid = os.getpid()
        if self._started_in == pid:
            return
        with self._start_lock:
            if self._started_in != pid:
                if self._started_in is not None:
                    # Forked: the parent's thread and its queue's lock did not come along.
                    self._queue = queue.Queue(self._capacity)
                    self._idle = threading.Condition()
                    self._unfinished = 0
                threading.Thread(target=self._drain, name="mail-outbox", daemon=True).start()
                self._started_in = pid

    def _drain(self) -> None:
        while True:
            job, came_from = self._queue.get()
            try:
                with follow_up("mail send", came_from) as sending:
                    try:
                        message = job()
                        if message is not None and not self.deliver(message):
                            sending.fail("undelivered")
                    except Exception as error:
                        MAIL_FAILED.inc()
                        log.exception("mail job failed")
                        sending.fail(type(error).__qualname__)
            finally:
                self._done()

    def _done(self) -> None:
        with self._idle:
            self._unfinished -= 1
            self._idle.notify_all()


def _smtp_code(error: OSError) -> str:
    code = getattr(error, "smtp_code", None)
    return f" {code}" if isinstance(code, int) else ""
