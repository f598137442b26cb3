"""Keeping the device honest and within bounds: retention, the free-disk floor, the clock's state."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.config import Config, parse
from kiosk.events import utc_iso
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sync import open_sync
from kiosk.sync.clock import ClockWatch
from kiosk.sync.disk import DiskGuard
from kiosk.sync.store import EventStore
from sync_helpers import T0, FixedClock, make_event, routine, urgent


class Disk:
    """A small disk: whatever the event log's files take is no longer free."""

    def __init__(self, folder: Path, capacity: int):
        self.folder, self.capacity = folder, capacity
        self.other = 0  # bytes other programs (logs, updates) use

    def __call__(self, folder: Path) -> int:
        used = sum(p.stat().st_size for p in self.folder.glob("events.db*"))
        return self.capacity - used - self.other


def config_for(tmp_path: Path, url: str = "http://127.0.0.1:9", **upstream: object) -> Config:
    return parse({"kiosk": {"id": "gate-3", "site_id": "station", "data_dir": str(tmp_path / "data")},
                  "upstream": {"url": url, **upstream}})


def test_below_the_floor_the_oldest_routine_events_go_and_a_loss_record_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = EventStore(tmp_path / "events.db")
    urgent_ones = [store.append(urgent(n)) for n in range(0, 3000, 100)]
    routine_ones = [store.append(routine(n)) for n in range(1, 3000) if n % 100]
    disk = Disk(tmp_path, capacity=10_000_000)
    floor = disk(tmp_path) - 200_000  # fine now...
    clock = FixedClock(T0 + timedelta(days=1))
    guard = DiskGuard(store, "gate-3", "station", floor, free=disk, utcnow=clock)
    assert guard.check() == 0

    disk.other = 500_000  # ...until something else fills the disk
    with caplog.at_level(logging.WARNING):
        dropped = guard.check()
    assert dropped > 0
    assert disk(tmp_path) >= floor  # space is back above the floor
    remaining = store.events()
    kept_ids = {event.id for event in remaining}
    assert {event.id for event in urgent_ones} <= kept_ids  # urgent refusals are never dropped
    gone = [event for event in routine_ones if event.id not in kept_ids]
    assert gone == routine_ones[:len(gone)]  # the oldest went first
    loss = [event for event in remaining if event.kind == "loss"]
    assert sum(event.detail["dropped"] for event in loss) == len(gone) == dropped
    assert loss[0].detail["first_seq"] == gone[0].seq and loss[0].detail["first_time"] == gone[0].time
    assert "below the" in loss[0].detail["reason"] and loss[0].time == "2024-03-02T08:00:00.000Z"
    assert "dropped" in caplog.text
    store.close()


def test_when_only_urgent_events_are_left_nothing_more_is_dropped_and_it_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = EventStore(tmp_path / "events.db")
    kept = [store.append(urgent(n)) for n in range(50)]
    guard = DiskGuard(store, "gate-3", "station", 10**9, free=lambda folder: 0)
    with caplog.at_level(logging.ERROR):
        assert guard.check() == 0
        assert guard.check() == 0
    assert [e.id for e in store.events()] == [e.id for e in kept]
    assert len([r for r in caplog.records if "no routine event is left" in r.getMessage()]) == 1
    store.close()


def test_the_loss_record_goes_upstream_like_any_event(tmp_path: Path) -> None:
    with ReferenceUpstream(data_dir=tmp_path / "up") as upstream:
        disk = Disk(tmp_path / "data", capacity=0)
        store, uploader = open_sync(config_for(tmp_path, upstream.url, min_free_mb=1), free=disk,
                                    synchronised=lambda: True)
        for n in range(1, 400):
            store.append(routine(n))
        disk.capacity = 1_000_000  # a 1 MB floor with about 1 MB in total: some must go
        uploader.run_upkeep()  # what the upload thread does every minute
        assert uploader.drain_once() > 0
        received = upstream.collector.events()
        loss = [event for event in received if event.get("kind") == "loss"]
        assert len(loss) == 1 and loss[0]["kiosk_id"] == "gate-3"
        assert loss[0]["detail"]["dropped"] + len(received) - 1 == 399
        store.close()


def test_sent_events_are_pruned_after_the_retention_and_unsent_ones_kept(tmp_path: Path) -> None:
    clock = FixedClock(T0 + timedelta(days=40))
    store, uploader = open_sync(config_for(tmp_path, retention_days=30), utcnow=clock, synchronised=lambda: True)
    old_sent, old_unsent = store.append(routine(0)), store.append(routine(1))
    recent_sent = store.append(make_event(2, time="2024-04-05T00:00:00.000Z"))
    store.mark_sent([old_sent.seq, recent_sent.seq], T0)
    uploader.run_upkeep()
    assert [e.id for e in store.events()] == [old_unsent.id, recent_sent.id]
    store.close()


def test_events_carry_the_clock_state_and_a_synchronisation_is_recorded(tmp_path: Path) -> None:
    synced = [False]
    uptime = [12.5]
    clock = FixedClock()
    watch = ClockWatch("gate-3", "station", synchronised=lambda: synced[0], uptime=lambda: uptime[0],
                       boot=lambda: "b" * 32, utcnow=clock)
    assert watch.check() is None  # the first look: not synchronised, nothing to record yet
    before = watch.stamp(routine(1))
    assert (before.clock_synced, before.uptime_s, before.boot_id) == (False, 12.5, "b" * 32)

    synced[0], uptime[0] = True, 80.25
    clock.now += timedelta(days=900)  # NTP moved the wall clock a long way
    record = watch.check()
    assert record is not None and record.kind == "clock"
    assert (record.time, record.uptime_s, record.boot_id) == (utc_iso(clock.now), 80.25, "b" * 32)
    # What the collector can now do: put the early event at its real time.
    corrected = clock.now - timedelta(seconds=record.uptime_s - before.uptime_s)
    assert corrected == clock.now - timedelta(seconds=67.75)
    assert watch.check() is None  # recorded once, not every minute
    assert watch.stamp(routine(2)).clock_synced is True


def test_a_clock_synchronised_from_the_start_needs_no_record_but_its_time_is_kept(tmp_path: Path) -> None:
    clock = FixedClock()
    store, uploader = open_sync(config_for(tmp_path), synchronised=lambda: True, utcnow=clock)
    event = store.append(routine(1))
    assert event.clock_synced is True and event.uptime_s > 0
    uploader.run_upkeep()
    assert [e.kind for e in store.events()] == ["decision"]
    status = store.load_status()
    assert status["clock_synced"] is True and status["clock_synced_at"] == "2024-03-01T08:00:00.000Z"
    store.close()


def test_an_unknown_clock_state_is_never_taken_for_synchronised(tmp_path: Path) -> None:
    watch = ClockWatch("gate-3", "station", synchronised=lambda: None)
    assert watch.check() is None
    assert watch.stamp(routine(1)).clock_synced is None
