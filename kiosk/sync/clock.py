"""Clock honesty: is the system clock synchronised, and what events need to be corrected later.

A Pi has no real-time clock: until NTP answers after boot, its time can be days off. Every event
is stamped with the clock's state (synchronised or not), the seconds since boot and the boot's id.
When the clock becomes synchronised, a "clock" record (wall time, seconds since boot, boot id) goes
upstream: the collector can then correct every unsynchronised event of that boot as
``record.time - (record.uptime_s - event.uptime_s)``, and order everything by ``seq``.

Whether the clock is synchronised is the one check the code verifier uses too
(``kiosk.codes.clock.ClockCheck``, configured by ``codes.clock_check``): events are stamped with
its latest reading, so an event never says ``clock_synced: true`` while a certificate is refused
as ``clock_unsynchronised``, nor the other way round. A state no source can tell is unknown (None),
never assumed good.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from kiosk.codes.clock import ClockCheck, system_clock_check
from kiosk.events import Event, utc_iso

logger = logging.getLogger(__name__)

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def uptime_s() -> float:
    """Seconds since boot, suspend included (the time that keeps counting whatever the wall clock says)."""
    clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
    return time.clock_gettime(clock)


def boot_id() -> str | None:
    """This boot's random id (32 hex characters), or None where the system has none."""
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip().replace("-", "") or None
    except OSError:
        return None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ClockWatch:
    """Stamps events with the clock's state and notices when the clock becomes synchronised.

    ``stamp`` runs on the decision path, so it asks no source: it takes the clock check's latest
    reading, from ``check`` (the upload thread, about once a minute) or from the code verifier
    (which reads it for every offline certificate), whichever came last.

    ``synchronised`` is the clock check (by default the system's, ``auto``), or in tests a bare
    reading of True, False or None.
    """

    def __init__(
        self,
        kiosk_id: str,
        site_id: str,
        synchronised: ClockCheck | Callable[[], bool | None] | None = None,
        uptime: Callable[[], float] = uptime_s,
        boot: Callable[[], str | None] = boot_id,
        utcnow: Callable[[], datetime] = _utcnow,
    ):
        self._kiosk_id = kiosk_id
        self._site_id = site_id
        if synchronised is None:
            synchronised = system_clock_check()
        self._check = synchronised if isinstance(synchronised, ClockCheck) else None
        self._synchronised = synchronised.state if isinstance(synchronised, ClockCheck) else synchronised
        self._uptime = uptime
        self._utcnow = utcnow
        self._lock = threading.Lock()
        self.boot_id = boot()
        self.synced: bool | None = None
        self.synced_at: datetime | None = None
        self._checked = False

    def stamp(self, event: Event) -> Event:
        """The event with the clock fields filled in (fields already set are kept)."""
        with self._lock:
            synced = self.synced if self._check is None else self._check.last
        return replace(
            event,
            clock_synced=event.clock_synced if event.clock_synced is not None else synced,
            uptime_s=event.uptime_s if event.uptime_s is not None else round(self._uptime(), 3),
            boot_id=event.boot_id if event.boot_id is not None else self.boot_id,
        )

    def check(self) -> Event | None:
        """Read the clock's state; returns a "clock" record to log when it just became synchronised.

        Already synchronised at the first check means the times are trustworthy from the start:
        no record is needed, but ``synced_at`` notes when it was first seen.
        """
        state = self._synchronised()
        now = self._utcnow()
        with self._lock:
            before, first = self.synced, not self._checked
            self.synced = state
            self._checked = True
            if state and not before:
                self.synced_at = now
        if first:
            logger.info("system clock synchronised: %s", {True: "yes", False: "NO", None: "unknown"}[state])
        if state is False and before:
            logger.warning("system clock lost its synchronisation")
        if not state or before or first:
            return None
        logger.info("system clock now synchronised: %s", utc_iso(now))
        return Event(
            time=utc_iso(now), kiosk_id=self._kiosk_id, site_id=self._site_id, decision="", reasons=(),
            temperature_c=None, code_colour=None, code_hash=None, kind="clock",
            clock_synced=True, uptime_s=round(self._uptime(), 3), boot_id=self.boot_id,
            detail={"synced_at": utc_iso(now)},
        )
