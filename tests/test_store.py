"""The device's event log: an SQLite outbox that survives restarts, sends urgent refusals first,
keeps a million events in under 300 MB, and refuses a broken file clearly."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.errors import KioskError
from kiosk.events import Event, utc_iso
from kiosk.sync.store import EventStore, StoreError
from sync_helpers import T0, make_event, routine, urgent


def stored(store: EventStore, *events: Event) -> list[Event]:
    return [store.append(event) for event in events]


def test_append_returns_the_event_with_its_sequence_number(store: EventStore) -> None:
    first, second = stored(store, routine(1), routine(2))
    assert (first.seq, second.seq) == (1, 2)
    assert first == routine(1).__class__(**{**routine(1).__dict__, "seq": 1})
    assert store.events() == [first, second]


def test_urgent_refusals_are_queued_ahead_of_routine_events_then_by_sequence(store: EventStore) -> None:
    events = stored(
        store,
        routine(1),
        urgent(2, "yellow_code"),
        make_event(3, "REFUSE", ("stale_code",)),  # a refusal, but not an urgent one
        urgent(4, "fever"),
        routine(5),
        urgent(6, "red_code"),
    )
    order = [event.id for event in store.unsent(10)]
    assert order == [events[i].id for i in (1, 3, 5, 0, 2, 4)]
    assert store.counts()["urgent"] == 3
    assert store.has_urgent()


def test_which_reasons_are_urgent_is_configurable(tmp_path: Path) -> None:
    with EventStore(tmp_path / "events.db", urgent_reasons={"stale_code"}) as store:
        events = stored(store, urgent(1, "fever"), make_event(2, "REFUSE", ("stale_code",)))
        assert [e.id for e in store.unsent(10)] == [events[1].id, events[0].id]


def test_mark_sent_takes_events_out_of_the_queue_but_keeps_them(store: EventStore) -> None:
    events = stored(store, *(routine(n) for n in range(4)))
    assert store.mark_sent([events[0].seq, events[2].seq], T0) == 2
    assert store.unsent(10) == [events[1], events[3]]
    counts = store.counts()
    assert (counts["total"], counts["unsent"], counts["queued"]) == (4, 2, 2)
    assert counts["oldest_unsent"] == events[1].time
    assert store.events() == events
    # Marking again (a late acknowledgement) changes nothing.
    assert store.mark_sent([events[0].seq], T0 + timedelta(hours=1)) == 0


def test_events_survive_a_restart_with_their_sent_state_and_numbering(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(path) as first:
        events = stored(first, *(routine(n) for n in range(3)))
        first.mark_sent([events[0].seq], T0)
    with EventStore(path) as second:
        assert second.unsent(10) == events[1:]
        assert second.events() == events
        assert second.append(routine(9)).seq == 4
    with sqlite3.connect(path) as plain:
        row = plain.execute("SELECT status, sent_at FROM events WHERE id = ?", (events[0].id,)).fetchone()
    assert row == ("sent", utc_iso(T0))


def test_sequence_numbers_are_never_reused_after_events_are_deleted(store: EventStore) -> None:
    events = stored(store, *(routine(n) for n in range(3)))
    store.mark_sent([e.seq for e in events], T0)
    assert store.prune_sent(T0 + timedelta(days=1)) == 3
    assert store.append(routine(10)).seq == 4


def test_the_file_is_in_wal_mode_and_every_commit_is_synced(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "kiosk" / "events.db"
    with EventStore(path) as store:
        assert store.durability() == "WAL, synchronous=FULL"
        store.append(routine(1))
        other = sqlite3.connect(path)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # Committed before append() returned: another connection sees it at once.
        assert other.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
        other.close()
        assert store.integrity_check() == "ok"


def test_the_events_view_gives_each_event_as_it_is_sent(store: EventStore) -> None:
    event = store.append(urgent(5, "fever"))
    with sqlite3.connect(store.path) as plain:  # no kiosk code needed to read the log
        (event_id, time, body), = plain.execute("SELECT id, time, body FROM events").fetchall()
    assert (event_id, time) == (event.id, event.time)
    assert json.loads(body) == json.loads(event.to_json())
    batch = store.next_batch(10, 1 << 20)
    assert batch.lines == (body.encode(),)


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "event-0001", "code_hash": None},  # an id that is not hex, no code read
        {"time": "2024-03-01T08:00:00+08:00"},  # a time in another form
        {"time": "1969-12-31T23:59:59.999Z"},  # before 1970
        {"kiosk_id": "闸机-北-1", "code_colour": None, "temperature_c": None},
        {"code_hash": "ABCDEF" * 10 + "ABCD", "detail": {"note": "unusual", "n": [1, 2.5]}},
        {"boot_id": None, "uptime_s": 12.345, "clock_synced": False},
    ],
)
def test_every_event_comes_back_exactly_as_appended(store: EventStore, fields: dict[str, object]) -> None:
    event = store.append(make_event(1, **fields))
    assert store.events() == [event]
    assert Event.from_dict(json.loads(store.next_batch(1, 1 << 20).lines[0])) == event


def test_batches_are_bounded_by_count_and_bytes(store: EventStore) -> None:
    events = stored(store, *(routine(n) for n in range(10)))
    line = len(store.next_batch(1, 1 << 20).ndjson())
    assert len(store.next_batch(4, 1 << 20)) == 4
    by_bytes = store.next_batch(100, line * 3 + 5)
    assert by_bytes.seqs == tuple(e.seq for e in events[:3])
    assert len(by_bytes.ndjson()) <= line * 3 + 5
    assert len(store.next_batch(100, 10)) == 1  # one event always goes, however small the limit
    assert by_bytes.key == store.next_batch(3, 1 << 20).key  # same events, same idempotency key
    assert by_bytes.key != store.next_batch(4, 1 << 20).key


def test_parked_events_leave_the_queue_with_the_collectors_reason(store: EventStore) -> None:
    events = stored(store, *(routine(n) for n in range(3)))
    assert store.park({events[1].seq: "line 2: decision must be PASS or REFUSE"}, T0) == 1
    assert [e.id for e in store.unsent(10)] == [events[0].id, events[2].id]
    assert store.parked() == [(events[1], "line 2: decision must be PASS or REFUSE")]
    counts = store.counts()
    assert (counts["queued"], counts["parked"], counts["unsent"]) == (2, 1, 3)
    assert counts["oldest_unsent"] == events[0].time
    assert store.requeue_parked() == 1
    assert [e.id for e in store.unsent(10)] == [e.id for e in events]
    assert store.parked() == []


def test_pruning_deletes_only_sent_events_older_than_the_cutoff(store: EventStore) -> None:
    old_sent, old_unsent, old_parked, new_sent = stored(store, routine(0), routine(1), routine(2), routine(3600))
    store.mark_sent([old_sent.seq, new_sent.seq], T0)
    store.park({old_parked.seq: "bad"}, T0)
    assert store.prune_sent(T0 + timedelta(minutes=30)) == 1
    assert [e.id for e in store.events()] == [old_unsent.id, old_parked.id, new_sent.id]


def test_dropping_for_disk_space_takes_the_oldest_routine_events_and_records_it(store: EventStore) -> None:
    events = stored(store, routine(1), urgent(2), routine(3), routine(4), routine(5))
    sent = events[2]
    store.mark_sent([sent.seq], T0)

    def record(dropped) -> Event:
        return make_event(99, decision="", kind="loss", detail={"dropped": dropped.count})

    dropped = store.drop_routine(2, record)
    assert (dropped.count, dropped.first_seq, dropped.last_seq) == (2, events[0].seq, events[3].seq)
    assert (dropped.first_time, dropped.last_time) == (events[0].time, events[3].time)
    remaining = store.events()
    assert [e.id for e in remaining[:-1]] == [events[1].id, sent.id, events[4].id]
    assert remaining[-1].kind == "loss" and remaining[-1].detail == {"dropped": 2}
    # The urgent refusal and the loss record are never dropped; only routine events are.
    assert store.drop_routine(10, record).count == 1
    assert store.drop_routine(10, record) is None
    assert {e.kind for e in store.unsent(10)} == {"decision", "loss"}
    assert [e.id for e in store.unsent(10) if e.kind == "decision"] == [events[1].id]


def test_a_million_events_fit_in_300_mb(store: EventStore) -> None:
    count = 3000
    for n in range(count):
        event = make_event(n, id=f"{(n * 7919) ** 3:032x}"[-32:], code_hash=f"{(n * 104729) ** 5:064x}"[-64:],
                           temperature_readings_c=(36.4, 36.5), skin_c=34.1, ambient_c=24.5,
                           temperature_site="wrist", uptime_s=86400.123 + n, clock_synced=True,
                           boot_id="a97e65c7a9e44c9b871491ed3fdf1c37")
        store.append(event)
    assert store.size_bytes() / count * 1_000_000 <= 300e6


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


def test_an_event_log_from_the_first_layout_is_upgraded_without_losing_anything(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    old = [routine(1), urgent(2), routine(3)]
    with sqlite3.connect(path) as plain:
        plain.executescript(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, "
            "time TEXT NOT NULL, body TEXT NOT NULL, sent_at TEXT NULL);"
        )
        for event in old:
            plain.execute("INSERT INTO events (id, time, body) VALUES (?, ?, ?)", (event.id, event.time, event.to_json()))
        plain.execute("UPDATE events SET sent_at = ? WHERE seq = 1", (utc_iso(T0),))
    with EventStore(path) as store:
        assert [(e.id, e.seq) for e in store.events()] == [(e.id, n) for n, e in enumerate(old, start=1)]
        assert [e.id for e in store.unsent(10)] == [old[1].id, old[2].id]  # the sent one stays sent
        assert store.append(routine(4)).seq == 4
        assert store.integrity_check() == "ok"


def test_the_uploader_state_is_kept_for_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        store.append(routine(1))
        store.save_status({"state": "retrying", "last_error": "collector answered 503"})
        store.save_status({"failures": 3})
        with EventStore(path, readonly=True) as reader:
            assert reader.load_status() == {"state": "retrying", "last_error": "collector answered 503", "failures": 3}
            assert reader.counts()["queued"] == 1
            with pytest.raises(StoreError):
                reader.append(routine(2))


def test_reading_a_missing_log_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no event log here"):
        EventStore(tmp_path / "nowhere.db", readonly=True)
    assert not (tmp_path / "nowhere.db").exists()


def test_events_between_two_times(store: EventStore) -> None:
    events = stored(store, *(routine(n * 60) for n in range(5)))  # one a minute
    assert store.events(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == events[1:3]
    assert store.events(since=T0 + timedelta(minutes=4)) == events[4:]
    assert store.events(until=T0 + timedelta(seconds=30)) == events[:1]


def test_a_closed_store_refuses_with_a_kiosk_error(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.append(routine(1))


def test_one_thread_appends_while_another_drains(store: EventStore) -> None:
    total = 300
    appended = threading.Event()

    def decide() -> None:
        for n in range(total):
            store.append(routine(n))
        appended.set()

    marked: list[int] = []

    def upload() -> None:
        while True:
            done = appended.is_set()
            batch = store.next_batch(17, 1 << 20)
            store.mark_sent(batch.seqs, T0)
            marked.extend(batch.seqs)
            if done and not batch:
                return

    threads = [threading.Thread(target=decide), threading.Thread(target=upload)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert marked == list(range(1, total + 1))
    assert store.counts()["total"] == total
    assert store.counts()["unsent"] == 0
