"""Uploading the event log to the reference collector, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from kiosk.config import UpstreamSection
from kiosk.events import Event, utc_iso
from kiosk.sim import upstream as upstream_module
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sync.client import UploadError, UpstreamClient
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import Uploader, retry_delay

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)


def make_event(n: int) -> Event:
    return Event(
        time=utc_iso(T0 + timedelta(seconds=n)),
        kiosk_id="kiosk-01",
        site_id="site-01",
        decision="REFUSE" if n % 3 == 0 else "PASS",
        reasons=("yellow_code",) if n % 3 == 0 else (),
        temperature_c=36.4 + (n % 5) / 10,
        code_colour="yellow" if n % 3 == 0 else "green",
        code_hash=f"{n:064x}",
        code_scheme="platform",
        proxy=n % 7 == 0,
        id=f"event-{n:04d}",
    )


class FixedClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[ReferenceUpstream]:
    server = ReferenceUpstream(data_dir=tmp_path / "upstream").start()
    yield server
    server.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "kiosk" / "events.db") as opened:
        yield opened


def section_for(url: str, **overrides: object) -> UpstreamSection:
    values: dict[str, object] = {"url": url, "batch_size": 3, "interval_s": 0.1, "timeout_s": 2.0}
    values.update(overrides)
    return UpstreamSection(**values)


def uploader_for(store: EventStore, url: str, clock: Callable[[], datetime] | None = None, **overrides: object) -> Uploader:
    section = section_for(url, **overrides)
    return Uploader(store, UpstreamClient(section), section, clock=clock or FixedClock())


def fill(store: EventStore, count: int, start: int = 0) -> list[Event]:
    events = [make_event(n) for n in range(start, start + count)]
    for event in events:
        store.append(event)
    return events


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], limit_s: float = 10.0) -> bool:
    """Poll a condition (for the background thread); the limit only stops a broken test hanging."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("gzip", [True, False])
def test_every_event_arrives_exactly_once_in_order(store: EventStore, upstream: ReferenceUpstream, gzip: bool) -> None:
    events = fill(store, 8)
    clock = FixedClock()
    uploader = uploader_for(store, upstream.url, clock=clock, gzip=gzip)

    assert uploader.drain_once() == 8
    assert upstream.collector.events() == [event.to_dict() for event in events]
    assert store.counts()["unsent"] == 0
    assert uploader.drain_once() == 0
    assert upstream.collector.count() == 8
    status = uploader.status()
    assert status["backlog"] == 0
    assert status["last_error"] is None
    assert status["last_success"] == utc_iso(clock.now)


def test_what_the_kiosk_sends_reads_back_as_the_same_events(store: EventStore, upstream: ReferenceUpstream) -> None:
    events = fill(store, 4)
    uploader_for(store, upstream.url).drain_once()
    lines = requests.get(f"{upstream.url}/events", timeout=5).text.splitlines()
    assert [Event.from_dict(json.loads(line)) for line in lines] == events


def test_a_collector_that_never_listened_keeps_events_queued_until_it_appears(store: EventStore, tmp_path: Path) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    events = fill(store, 5)
    uploader = uploader_for(store, url)

    assert uploader.drain_once() == 0
    status = uploader.status()
    assert status["backlog"] == 5
    assert status["last_error"] == "collector unreachable: Connection refused"
    assert status["last_success"] is None

    with ReferenceUpstream(port=port, data_dir=tmp_path / "late") as late:
        assert uploader.drain_once() == 5
        assert [e["id"] for e in late.collector.events()] == [e.id for e in events]
    assert uploader.status()["last_error"] is None


def test_a_stopped_collector_keeps_events_queued_and_gets_them_after_restart(
    store: EventStore, upstream: ReferenceUpstream
) -> None:
    uploader = uploader_for(store, upstream.url)
    first = fill(store, 2)
    assert uploader.drain_once() == 2

    upstream.stop()
    later = fill(store, 4, start=2)
    assert uploader.drain_once() == 0
    assert uploader.status()["backlog"] == 4
    assert "unreachable" in uploader.status()["last_error"]

    upstream.start()
    assert uploader.drain_once() == 4
    assert [e["id"] for e in upstream.collector.events()] == [e.id for e in first + later]


def test_a_batch_sent_again_after_a_lost_answer_is_not_duplicated(store: EventStore, upstream: ReferenceUpstream) -> None:
    events = fill(store, 3)
    section = section_for(upstream.url)
    # The collector stores the batch, but the kiosk never learns it did (say the answer was lost)...
    UpstreamClient(section).post_events(events)
    assert store.counts()["unsent"] == 3
    # ...so the uploader sends the same batch again.
    assert Uploader(store, UpstreamClient(section), section, clock=FixedClock()).drain_once() == 3
    assert upstream.collector.count() == 3
    assert store.counts()["unsent"] == 0


def test_a_wrong_token_leaves_events_queued_with_a_clear_error(tmp_path: Path, store: EventStore) -> None:
    with ReferenceUpstream(data_dir=tmp_path / "up", collector_token="right-token") as guarded:
        fill(store, 2)
        wrong = uploader_for(store, guarded.url, token="wrong-token")
        assert wrong.drain_once() == 0
        status = wrong.status()
        assert status["last_error"] == "collector answered 401: wrong or missing token"
        assert status["backlog"] == 2
        assert guarded.collector.count() == 0

        fixed = uploader_for(store, guarded.url, token="right-token")
        assert fixed.drain_once() == 2
        assert guarded.collector.count() == 2


def test_the_token_never_appears_in_errors_or_logs(
    tmp_path: Path, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ReferenceUpstream(data_dir=tmp_path / "up", collector_token="right-token") as guarded:
        fill(store, 1)
        uploader = uploader_for(store, guarded.url, token="s3cret-kiosk-token")
        uploader.drain_once()
        assert "s3cret" not in str(uploader.status())
    assert "s3cret" not in caplog.text


def test_a_persisting_failure_is_logged_once_not_per_retry(store: EventStore, caplog: pytest.LogCaptureFixture) -> None:
    fill(store, 1)
    clock = FixedClock()
    uploader = uploader_for(store, f"http://127.0.0.1:{closed_port()}", clock=clock)
    with caplog.at_level(logging.WARNING, logger="kiosk.sync.uploader"):
        for _ in range(5):
            clock.now += timedelta(seconds=5)
            uploader.drain_once()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "Connection refused" in warnings[0].getMessage()
        # Still failing much later: said again, so the journal shows it is still going on.
        clock.now += timedelta(hours=1)
        uploader.drain_once()
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert uploader.status()["failures"] == 6


def test_a_collector_with_a_small_body_limit_gets_smaller_batches(
    store: EventStore, upstream: ReferenceUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream_module, "MAX_BODY_BYTES", 2000)
    events = fill(store, 20)
    uploader = uploader_for(store, upstream.url, batch_size=50, gzip=False)
    for _ in range(10):
        uploader.drain_once()
        if not store.counts()["unsent"]:
            break
    assert [e["id"] for e in upstream.collector.events()] == [e.id for e in events]


def test_the_client_reports_a_refusal_with_its_status(upstream: ReferenceUpstream) -> None:
    client = UpstreamClient(section_for(upstream.url + "/nowhere"))
    with pytest.raises(UploadError) as caught:
        client.post_events([make_event(1)])
    assert caught.value.status == 404
    assert str(caught.value).startswith("collector answered 404")


def test_the_background_thread_sends_new_events_and_recovers_after_an_outage(
    store: EventStore, upstream: ReferenceUpstream
) -> None:
    uploader = uploader_for(store, upstream.url)
    stop = threading.Event()
    thread = uploader.start(stop)
    try:
        fill(store, 2)
        uploader.wake()
        assert wait_for(lambda: upstream.collector.count() == 2)

        upstream.stop()
        fill(store, 3, start=2)
        uploader.wake()
        assert wait_for(lambda: uploader.status()["last_error"] is not None)
        assert store.counts()["unsent"] == 3

        upstream.start()
        assert wait_for(lambda: upstream.collector.count() == 5)
        assert wait_for(lambda: uploader.status()["backlog"] == 0)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert [e["id"] for e in upstream.collector.events()] == [f"event-{n:04d}" for n in range(5)]


def test_retry_delay_grows_from_the_interval_and_is_capped() -> None:
    assert [retry_delay(n, 2.0) for n in range(6)] == [2.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert retry_delay(7, 2.0) == 60.0
    assert retry_delay(10_000, 2.0) == 60.0
    assert retry_delay(3, 300.0) == 300.0  # never shorter than the configured interval
