"""Ships the event log upstream in the background, and keeps retrying while the collector is away.

The decision thread only appends to the store and calls ``wake()``; this thread does the network.
An event is marked sent only after the collector answered 2xx. If that answer is lost, the batch is
sent again, which is safe: the collector ignores event ids it already has.

What each answer leads to (docs/upload-protocol.md has the full table):
- 2xx: the batch is marked sent; the next batch goes at once until the queue is empty.
- no answer (or no complete one within ``upstream.timeout_s``, or one larger than any receipt:
  ``kiosk.http``), 408, 425, 429, 5xx and other unexpected answers: the batch stays queued; the next
  attempt waits a jittered, growing delay (``kiosk.sync.retry``), or the collector's Retry-After.
- 401/403: the token is wrong; uploading stops (events kept) and says so, trying again only
  every ``AUTH_RETRY_S``, since only a person can fix a token.
- a 4xx naming bad events: those are parked with the collector's reason, the rest goes on.
- 413: batches shrink until they fit; a single event that never fits is parked.

Urgent refusals are sent first (the store's queue order), and a ``wake()`` with one waiting cuts
a backoff short (but not a Retry-After), so they reach a reachable collector within seconds.

The uploader's state is saved in the store (``sync_status``), so ``kiosk status`` run from
another process can show it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from kiosk.config import UpstreamSection
from kiosk.errors import KioskError, UploadError
from kiosk.events import utc_iso
from kiosk.sync.client import UpstreamClient
from kiosk.sync.retry import next_delay_s
from kiosk.sync.store import Batch, EventStore

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# A failure that does not change is logged again this often, so the journal shows it persists
# without one line per retry.
REPEAT_WARNING_AFTER = timedelta(minutes=10)
# After the collector refused the token, ask again this rarely (the token may be fixed upstream).
AUTH_RETRY_S = 600.0
# An urgent refusal may trigger an attempt during a backoff, but not more often than this.
URGENT_MIN_GAP_S = 1.0
# Pruning, the disk floor and the clock check run this often (and once at start).
UPKEEP_S = 60.0
# How often the waiting loop looks at the stop event.
_STOP_POLL_S = 0.2
_AUTH_STATUSES = (401, 403)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Uploader:
    """Sends queued events in batches; ``run()`` is the body of the upload thread."""

    def __init__(
        self,
        store: EventStore,
        client: UpstreamClient,
        section: UpstreamSection,
        clock: Clock = _utcnow,
        *,
        upkeep: Sequence[Callable[[], object]] = (),
        jitter: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
        auth_retry_s: float = AUTH_RETRY_S,
    ):
        """``upkeep`` tasks (pruning, disk floor, clock check) run on this thread every UPKEEP_S;
        ``jitter`` gives numbers in [0, 1) for the backoff; ``clock``/``monotonic`` are injectable;
        ``auth_retry_s`` is how long a refused token stops uploads."""
        self._store = store
        self._client = client
        self._section = section
        self._clock = clock
        self._upkeep = list(upkeep)
        self._jitter = jitter
        self._monotonic = monotonic
        self._auth_retry_s = auth_retry_s
        self._batch_limit = section.batch_size
        self._wake = threading.Event()
        self._send_lock = threading.Lock()  # one drain at a time (the thread, or a test / CLI call)
        self._state_lock = threading.Lock()
        self._state = "idle"
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._failures = 0
        self._retry_after_until: float | None = None
        self._next_at = 0.0  # monotonic time of the next attempt
        self._next_at_utc: datetime | None = None
        self._last_attempt: float | None = None
        self._logged_error: str | None = None
        self._logged_at: datetime | None = None

    def wake(self) -> None:
        """Ask for a prompt upload (a new event was appended). Never blocks."""
        self._wake.set()

    # --- one drain ---------------------------------------------------------------------------

    def drain_once(self, stop: threading.Event | None = None) -> int:
        """Send everything queued now, batch by batch, until the queue is empty or an attempt fails.

        Returns the number of events the collector acknowledged. A failure is recorded for
        ``status()`` and logged, not raised: the events stay queued for the next attempt.
        """
        sent = 0
        with self._send_lock:
            while stop is None or not stop.is_set():
                self._last_attempt = self._monotonic()
                try:
                    batch = self._store.next_batch(self._batch_limit, self._section.max_batch_bytes)
                    if not batch:
                        break
                    self._client.post_batch(batch.ndjson(), batch.key)
                except UploadError as exc:
                    if self._refused(batch, exc):
                        continue
                    break
                except KioskError as exc:  # the store could not be read
                    self._failed(str(exc))
                    break
                try:
                    self._store.mark_sent(batch.seqs, self._clock(), status=self._succeeded())
                except KioskError as exc:
                    # Sent but not marked: it goes again later and the collector drops the copies.
                    self._failed(str(exc))
                    break
                sent += len(batch)
        return sent

    def _refused(self, batch: Batch, exc: UploadError) -> bool:
        """Handle a failed POST; True when the queue can go on at once (events were set aside)."""
        if exc.status in _AUTH_STATUSES:
            self._failed(f"{exc.cause} - the collector refused upstream.token; uploads stopped "
                         "until it is fixed (events are kept)", auth=True)
            return False
        if exc.status == 413:
            if len(batch) > 1:
                self._batch_limit = max(1, len(batch) // 2)
                logger.info("collector refused a batch as too large; batches are now %d events", self._batch_limit)
                return True
            return self._park(batch, {batch.seqs[0]: f"too large for the collector ({exc.cause})"})
        if exc.rejected and exc.status is not None and 400 <= exc.status < 500:
            named = self._named(batch, exc)
            if named:
                return self._park(batch, named)
        self._failed(exc.cause, retry_after_s=exc.retry_after_s)
        return False

    @staticmethod
    def _named(batch: Batch, exc: UploadError) -> dict[int, str]:
        """The seqs of the events the collector named, by line (checked against the id) or by id."""
        by_id = dict(zip(batch.ids, batch.seqs))
        named: dict[int, str] = {}
        for rejection in exc.rejected:
            seq = None
            if rejection.line is not None and 1 <= rejection.line <= len(batch):
                index = rejection.line - 1
                if rejection.id is None or batch.ids[index] == rejection.id:
                    seq = batch.seqs[index]
            if seq is None and rejection.id is not None:
                seq = by_id.get(rejection.id)
            if seq is not None:
                named[seq] = rejection.reason
        return named

    def _park(self, batch: Batch, reasons: dict[int, str]) -> bool:
        try:
            self._store.park(reasons, self._clock())
        except KioskError as exc:
            self._failed(str(exc))
            return False
        first = next(iter(reasons.values()))
        logger.warning("collector refused %d event(s), parked with its reason (first: %s)", len(reasons), first)
        return True

    def _succeeded(self) -> dict[str, Any]:
        """Reset the failure state; returns the status to save with the acknowledgement."""
        now = self._clock()
        with self._state_lock:
            if self._failures:
                logger.info("upload working again after %d failed attempts", self._failures)
            self._state = "ok"
            self._last_success = now
            self._failures = 0
            self._retry_after_until = None
            self._logged_error = None
            self._next_at = self._monotonic() + self._section.interval_s
            self._next_at_utc = None
            return self._persisted()

    def _failed(self, cause: str, retry_after_s: float | None = None, auth: bool = False) -> None:
        now = self._clock()
        with self._state_lock:
            self._last_error = cause
            self._last_error_at = now
            self._failures += 1
            if auth:
                self._state = "stopped"
                delay = self._auth_retry_s
            else:
                self._state = "retrying"
                delay = next_delay_s(self._failures, self._section.interval_s, self._section.max_retry_s,
                                     self._jitter(), retry_after_s)
            self._retry_after_until = self._monotonic() + retry_after_s if retry_after_s else None
            self._next_at = self._monotonic() + delay
            self._next_at_utc = now + timedelta(seconds=delay)
            repeat_due = self._logged_at is None or now - self._logged_at >= REPEAT_WARNING_AFTER
            if cause != self._logged_error or repeat_due:
                log = logger.error if auth else logger.warning
                log("upload failed, events stay queued: %s (next attempt in %.1f s)", cause, delay)
                self._logged_error = cause
                self._logged_at = now
            persisted = self._persisted()
        try:
            self._store.save_status(persisted)
        except KioskError as exc:
            logger.warning("cannot save the upload status: %s", exc)

    def _persisted(self) -> dict[str, Any]:
        """The state ``kiosk status`` reads (called with the state lock held)."""
        return {
            "state": self._state,
            "last_success_at": utc_iso(self._last_success) if self._last_success else None,
            "last_error": self._last_error,
            "last_error_at": utc_iso(self._last_error_at) if self._last_error_at else None,
            "failures": self._failures,
            "next_attempt_at": utc_iso(self._next_at_utc) if self._next_at_utc else None,
        }

    def status(self) -> dict[str, Any]:
        """The upload state (as saved for ``kiosk status``) plus the queue's counts.

        ``state`` is "idle" (nothing tried yet), "ok", "retrying" or "stopped" (token refused);
        ``last_error`` stays after recovery, with ``last_error_at``, so staff can see what happened.
        """
        with self._state_lock:
            result = self._persisted()
        try:
            counts = self._store.counts()
            result.update(backlog=counts["queued"], urgent=counts["urgent"], parked=counts["parked"],
                          oldest_unsent=counts["oldest_unsent"])
        except KioskError as exc:
            result.update(backlog=None, urgent=None, parked=None, oldest_unsent=None)
            result["last_error"] = str(exc)
        return result

    # --- the thread --------------------------------------------------------------------------

    def _earliest_after_wake(self, now: float) -> float:
        """When a wake() may bring the next attempt forward to."""
        with self._state_lock:
            failures, state, next_at = self._failures, self._state, self._next_at
            retry_after_until = self._retry_after_until
        if not failures:
            return now
        if state == "stopped" or (retry_after_until is not None and now < retry_after_until):
            return next_at
        try:
            urgent = self._store.has_urgent()
        except KioskError:
            return next_at
        if not urgent:
            return next_at  # routine events wait out the backoff: the collector is not hammered
        last = self._last_attempt if self._last_attempt is not None else now - URGENT_MIN_GAP_S
        return min(next_at, max(now, last + URGENT_MIN_GAP_S))

    def run_upkeep(self) -> None:
        """Run the upkeep tasks once (the upload thread does so every UPKEEP_S)."""
        for task in self._upkeep:
            try:
                task()
            except Exception:  # one failing task must not stop uploads or the other tasks
                logger.exception("upkeep task %s failed", getattr(task, "__name__", task))
        self._wake.set()  # a task may have appended a record

    def run(self, stop: threading.Event) -> None:
        """Upload until ``stop`` is set: at once after ``wake()`` while all is well, else every
        interval_s; after failures, on the backoff schedule (see the module docstring)."""
        upkeep_due = self._monotonic()
        while not stop.is_set():
            now = self._monotonic()
            if now >= upkeep_due:
                self.run_upkeep()
                upkeep_due = now + UPKEEP_S
            if self._wake.is_set():
                self._wake.clear()
                earliest = self._earliest_after_wake(now)
                with self._state_lock:
                    self._next_at = min(self._next_at, earliest)
            with self._state_lock:
                next_at = self._next_at
            if now >= next_at:
                try:
                    self.drain_once(stop)
                except Exception:  # the upload thread must outlive any surprise
                    logger.exception("unexpected error in the upload thread")
                    self._failed("unexpected error (see log)")
                with self._state_lock:
                    if self._next_at <= now:  # nothing was queued: poll again after the interval
                        self._next_at = self._monotonic() + self._section.interval_s
                continue
            self._wake.wait(max(0.0, min(next_at - now, upkeep_due - now, _STOP_POLL_S)))

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run in a daemon thread named "uploader"; set ``stop`` and join the thread to end it."""
        thread = threading.Thread(target=self.run, args=(stop,), name="uploader", daemon=True)
        thread.start()
        return thread
