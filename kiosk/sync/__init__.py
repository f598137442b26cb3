"""The event log on the device and its upload to the collector upstream.

``open_sync`` builds the pieces from the config: the store (stamping events with the clock's
state), the client, and the uploader with its upkeep (retention, disk floor, clock check).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.codes.clock import ClockCheck
    from kiosk.config import Config
    from kiosk.sync.store import EventStore
    from kiosk.sync.uploader import Uploader


def open_sync(
    config: "Config",
    *,
    free: Callable[[Path], int] | None = None,
    synchronised: "ClockCheck | Callable[[], bool | None] | None" = None,
    utcnow: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> tuple["EventStore", "Uploader"]:
    """The event store and its uploader for this config (``free`` replaces the disk-space reading
    in tests). Events are stamped from the clock check the code verifier uses too
    (``codes.clock_check``); ``synchronised`` gives another check, or a bare reading in tests."""
    # Imported here so that reading the log (kiosk status, export) does not load the HTTP stack.
    from kiosk.codes.clock import system_clock_check
    from kiosk.events import utc_iso
    from kiosk.sync.client import UpstreamClient
    from kiosk.sync.clock import ClockWatch
    from kiosk.sync.disk import DiskGuard, free_bytes
    from kiosk.sync.store import EventStore
    from kiosk.sync.uploader import Uploader

    upstream = config.upstream
    clock = synchronised if synchronised is not None else system_clock_check(config.codes.clock_check)
    watch = ClockWatch(config.kiosk.id, config.kiosk.site_id, synchronised=clock, utcnow=utcnow)
    watch.check()  # so the first events already carry the clock's state
    store = EventStore(config.store_path, stamp=watch.stamp, urgent_reasons=upstream.urgent_reasons)
    guard = DiskGuard(store, config.kiosk.id, config.kiosk.site_id, upstream.min_free_mb * 1_000_000,
                      free=free or free_bytes, utcnow=utcnow)
    saved: dict[str, object] = {}

    def check_clock() -> None:
        record = watch.check()
        if record is not None:
            store.append(record)
        state = {"clock_synced": watch.synced,
                 "clock_synced_at": utc_iso(watch.synced_at) if watch.synced_at else None}
        if state != saved:
            store.save_status(state)
            saved.update(state)

    def prune_sent() -> None:
        store.prune_sent(utcnow() - timedelta(days=upstream.retention_days))

    uploader = Uploader(store, UpstreamClient(upstream), upstream, clock=utcnow,
                        upkeep=[check_clock, prune_sent, guard.check])
    return store, uploader
