"""Ships the event log upstream in the background, and keeps retrying while the collector is away.

The decision thread only appends to the store and calls ``wake()``; this thread does the network.
An event is marked sent only after the collector answered 2xx. If that answer is lost, the batch is
sent again, which is safe: the collector ignores event ids it already has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from kiosk.config import UpstreamSection
from kiosk.errors import KioskError
from kiosk.events import utc_iso
from kiosk.sync.client import UpstreamClient, UploadError
from kiosk.sync.store import EventStore

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

MAX_RETRY_DELAY_S = 60.0
# A failure that does not change is logged again this often, so the journal shows it persists
# without one line per retry.
REPEAT_WARNING_AFTER = timedelta(minutes=10)
# How often the waiting loop looks at the stop event.
_STOP_POLL_S = 0.2


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def retry_delay(failures: int, interval_s: float, cap_s: float = MAX_RETRY_DELAY_S) -> float:
    """Seconds to wait after ``failures`` consecutive failed attempts: interval, doubling, capped."""
    if failures <= 0:
        return interval_s
    grown = interval_s * 2 ** min(failures - 1, 30)
    return max(interval_s, min(cap_s, grown))


class Uploader:
    """Sends unsent events in batches; ``run()`` is the body of the upload thread."""

    def __init__(
        self,
        store: EventStore,
        client: UpstreamClient,
        section: UpstreamSection,
        clock: Clock = _utcnow,
    ):
        self._store = store
        self._client = client
        self._section = section
        self._clock = clock
        self._batch_size = section.batch_size
        self._wake = threading.Event()
        self._send_lock = threading.Lock()  # one drain at a time (the thread, or a test / CLI call)
        self._state_lock = threading.Lock()
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._failures = 0
        self._logged_error: str | None = None
        self._logged_at: datetime | None = None

    def wake(self) -> None:
        """Ask for a prompt upload (a new event was appended). Never blocks."""
        self._wake.set()

    def drain_once(self) -> int:
        """Send everything unsent now, batch by batch, stopping at the first failure.

        Returns the number of events the collector acknowledged. A failure is recorded for
        ``status()`` and logged, not raised: the events stay queued for the next attempt.
        """
        sent = 0
        with self._send_lock:
            while True:
                try:
                    batch = self._store.unsent(self._batch_size)
                    if not batch:
                        break
                    self._client.post_events(batch)
                    self._store.mark_sent([event.id for event in batch], self._clock())
                except UploadError as exc:
                    if exc.status == 413 and self._batch_size > 1:
                        self._batch_size = max(1, self._batch_size // 2)
                        logger.info("collector refused a batch as too large; batches are now %d events",
                                    self._batch_size)
                    self._failed(exc.cause)
                    break
                except KioskError as exc:
                    self._failed(str(exc))
                    break
                sent += len(batch)
                self._succeeded(len(batch))
        return sent

    def _succeeded(self, count: int) -> None:
        with self._state_lock:
            if self._failures:
                logger.info("upload working again after %d failed attempts", self._failures)
            self._last_success = self._clock()
            self._last_error = None
            self._failures = 0
            self._logged_error = None

    def _failed(self, cause: str) -> None:
        now = self._clock()
        with self._state_lock:
            self._last_error = cause
            self._last_error_at = now
            self._failures += 1
            repeat_due = self._logged_at is None or now - self._logged_at >= REPEAT_WARNING_AFTER
            if cause != self._logged_error or repeat_due:
                logger.warning("upload failed, events stay queued: %s", cause)
                self._logged_error = cause
                self._logged_at = now

    def status(self) -> dict[str, Any]:
        """For `kiosk status`: last success and error (UTC ISO or None), failures in a row, backlog."""
        with self._state_lock:
            result: dict[str, Any] = {
                "last_success": utc_iso(self._last_success) if self._last_success else None,
                "last_error": self._last_error,
                "last_error_at": utc_iso(self._last_error_at) if self._last_error_at else None,
                "failures": self._failures,
            }
        try:
            result["backlog"] = self._store.counts()["unsent"]
        except KioskError as exc:
            result["backlog"] = None
            result["last_error"] = str(exc)
        return result

    def run(self, stop: threading.Event) -> None:
        """Upload until ``stop`` is set: promptly after ``wake()``, else every interval_s.

        After a failure, wait with a growing delay (capped at a minute); a ``wake()`` may cut that
        short, but never to less than interval_s, so a busy kiosk cannot hammer a collector that is down.
        """
        interval = self._section.interval_s
        while not stop.is_set():
            self._wake.clear()
            try:
                self.drain_once()
            except Exception:  # the upload thread must outlive any surprise
                logger.exception("unexpected error in the upload thread")
                self._failed("unexpected error (see log)")
            with self._state_lock:
                failures = self._failures
            if failures:
                self._pause(stop, retry_delay(failures, interval), min_gap=interval)
            else:
                self._pause(stop, interval, min_gap=0.0)

    def _pause(self, stop: threading.Event, delay: float, min_gap: float) -> None:
        started = time.monotonic()
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if elapsed >= delay:
                return
            if self._wake.is_set():
                if elapsed >= min_gap:
                    return
                stop.wait(min(min_gap, delay) - elapsed)
            else:
                self._wake.wait(min(delay - elapsed, _STOP_POLL_S))

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run in a daemon thread named "uploader"; set ``stop`` and join the thread to end it."""
        thread = threading.Thread(target=self.run, args=(stop,), name="uploader", daemon=True)
        thread.start()
        return thread
