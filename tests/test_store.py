"""The device's event log: an SQLite outbox that survives restarts and refuses a broken file clearly."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.errors import KioskError
from kiosk.events import Event, utc_iso
from kiosk.sync.store import EventStore, StoreError

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)


def make_event(n: int, decision: str = "PASS") -> Event:
    return Event(
        time=utc_iso(T0 + timedelta(seconds=n)),
        kiosk_id="kiosk-01",
        site_id="site-01",
        decision=decision,
        reasons=() if decision == "PASS" else ("fever",),
        temperature_c=36.5 if decision == "PASS" else 38.2,
        code_colour="green",
        code_hash=f"{n:064x}",
        id=f"event-{n:04d}",
    )


@pytest.fixture
def store(tmp_path: Path):
    with EventStore(tmp_path / "events.db") as opened:
        yield opened


def test_appended_events_are_unsent_oldest_first(store: EventStore) -> None:
    events = [make_event(n, "PASS" if n % 2 else "REFUSE") for n in range(5)]
    for event in events:
        store.append(event)
    assert store.unsent(10) == events
    assert store.unsent(2) == events[:2]
    assert store.counts()["total"] == 5
    assert store.counts()["unsent"] == 5
    assert store.counts()["oldest_unsent"] == events[0].time


def test_mark_sent_takes_events_out_of_the_queue_but_keeps_them(store: EventStore) -> None:
    events = [make_event(n) for n in range(4)]
    for event in events:
        store.append(event)
    assert store.mark_sent([events[0].id, events[2].id], T0) == 2
    assert store.unsent(10) == [events[1], events[3]]
    assert store.counts() == {"total": 4, "unsent": 2, "oldest_unsent": events[1].time}
    assert store.events() == events
    # Marking again (a late acknowledgement) changes nothing.
    assert store.mark_sent([events[0].id], T0 + timedelta(hours=1)) == 0


def test_events_survive_a_restart_with_their_sent_state(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    events = [make_event(n) for n in range(3)]
    with EventStore(path) as first:
        for event in events:
            first.append(event)
        first.mark_sent([events[0].id], T0)
    with EventStore(path) as second:
        assert second.unsent(10) == events[1:]
        assert second.events() == events
        sent_at = sqlite3.connect(path).execute("SELECT sent_at FROM events WHERE id = ?", (events[0].id,)).fetchone()
        assert sent_at == (utc_iso(T0),)


def test_the_file_is_in_wal_mode_and_the_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "kiosk" / "events.db"
    with EventStore(path) as store:
        store.append(make_event(1))
        other = sqlite3.connect(path)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # Committed before append() returned: another connection sees it at once.
        assert other.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
        other.close()


def test_a_file_that_is_not_a_database_gives_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    garbage = b"this is a shopping list, not a database\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as caught:
        EventStore(path)
    assert isinstance(caught.value, KioskError)
    assert caught.value.path == path
    assert str(path) in str(caught.value)
    assert "not a usable event log" in str(caught.value)
    assert path.read_bytes() == garbage


def test_a_folder_that_cannot_be_created_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="cannot create folder"):
        EventStore(blocker / "events.db")


def test_the_same_event_appended_twice_is_stored_once(store: EventStore) -> None:
    event = make_event(7)
    store.append(event)
    store.append(event)
    assert store.events() == [event]


def test_events_between_two_times(store: EventStore) -> None:
    events = [make_event(n * 60) for n in range(5)]  # one a minute
    for event in events:
        store.append(event)
    assert store.events(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == events[1:3]
    assert store.events(since=T0 + timedelta(minutes=4)) == events[4:]
    assert store.events(until=T0 + timedelta(seconds=30)) == events[:1]


def test_a_closed_store_refuses_with_a_kiosk_error(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.append(make_event(1))


def test_one_thread_appends_while_another_drains(store: EventStore) -> None:
    total = 300
    appended = threading.Event()

    def decide() -> None:
        for n in range(total):
            store.append(make_event(n))
        appended.set()

    marked: list[str] = []

    def upload() -> None:
        while True:
            done = appended.is_set()
            batch = store.unsent(17)
            store.mark_sent([event.id for event in batch], T0)
            marked.extend(event.id for event in batch)
            if done and not batch:
                return

    threads = [threading.Thread(target=decide), threading.Thread(target=upload)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert marked == [f"event-{n:04d}" for n in range(total)]
    assert store.counts()["total"] == total
    assert store.counts()["unsent"] == 0
