"""Bounded disk: when free space falls below the floor, drop the oldest routine unsent events.

Urgent refusals and the kiosk's own records are never dropped, and nothing goes silently: each
clean-up appends, in the same commit, a "loss" record saying how many events went, which ones
(sequence numbers and times) and why; it is sent upstream like any event. If space is still short
once no routine event is left, appends eventually fail and the kiosk goes out of service (it never
shows a verdict it could not log).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from kiosk.events import Event, utc_iso
from kiosk.sync.store import Dropped, EventStore

logger = logging.getLogger(__name__)

# Each round frees at least MIN_DROP events, so a clean-up does not crawl one event at a time, and
# at most MAX_DROP, so one commit (during which decisions wait) stays short.
MIN_DROP = 100
MAX_DROP = 10_000
# Free this much more than the shortfall, so the next event does not put the disk under again.
HEADROOM = 0.1
MAX_ROUNDS = 20


def free_bytes(folder: Path) -> int:
    """Bytes available to the kiosk on the file system holding ``folder``."""
    return shutil.disk_usage(folder).free


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DiskGuard:
    """Keeps at least ``min_free_bytes`` free next to the event log; ``free`` is injectable for tests."""

    def __init__(
        self,
        store: EventStore,
        kiosk_id: str,
        site_id: str,
        min_free_bytes: int,
        free: Callable[[Path], int] = free_bytes,
        utcnow: Callable[[], datetime] = _utcnow,
    ):
        self._store = store
        self._kiosk_id = kiosk_id
        self._site_id = site_id
        self.min_free_bytes = min_free_bytes
        self._free = free
        self._utcnow = utcnow
        self._warned_nothing_left = False

    def check(self) -> int:
        """Drop routine unsent events until free space is back above the floor; returns how many."""
        folder = self._store.path.parent
        total = 0
        for _ in range(MAX_ROUNDS):
            free = self._free(folder)
            if free >= self.min_free_bytes:
                self._warned_nothing_left = False
                break
            shortfall = self.min_free_bytes - free + self.min_free_bytes * HEADROOM
            count = min(MAX_DROP, max(MIN_DROP, math.ceil(shortfall / self._bytes_per_event())))
            reason = (f"free disk {free / 1e6:.1f} MB below the {self.min_free_bytes / 1e6:.1f} MB floor "
                      "(upstream.min_free_mb)")
            dropped = self._store.drop_routine(count, lambda gone: self._loss_record(gone, reason))
            if dropped is None:
                if not self._warned_nothing_left:
                    logger.error("%s, and no routine event is left to drop", reason)
                    self._warned_nothing_left = True
                break
            logger.warning("dropped %d routine unsent events (seq %d..%d): %s",
                           dropped.count, dropped.first_seq, dropped.last_seq, reason)
            total += dropped.count
        return total

    def _bytes_per_event(self) -> float:
        total = max(1, self._store.counts()["total"])
        return max(64.0, self._store.size_bytes() / total)

    def _loss_record(self, dropped: Dropped, reason: str) -> Event:
        return Event(
            time=utc_iso(self._utcnow()), kiosk_id=self._kiosk_id, site_id=self._site_id, decision="",
            reasons=(), temperature_c=None, code_colour=None, code_hash=None, kind="loss",
            detail={
                "dropped": dropped.count,
                "reason": reason,
                "first_seq": dropped.first_seq,
                "last_seq": dropped.last_seq,
                "first_time": dropped.first_time,
                "last_time": dropped.last_time,
            },
        )
