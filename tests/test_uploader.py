"""Uploading the event log to the reference collector, a real HTTP(S) server on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from kiosk.config import UpstreamSection
from kiosk.events import Event, utc_iso
from kiosk.sim import upstream as upstream_module
from kiosk.sim.upstream import Fault, ReferenceUpstream
from kiosk.sync.client import MAX_ANSWER_BYTES, UploadError, UpstreamClient
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import AUTH_RETRY_S, Uploader
from kit import FakeClock
from sync_helpers import FixedClock, closed_port, make_event, routine, self_signed_cert, urgent, wait_for

# The collector of the token tests takes only this token.
with_token = pytest.mark.parametrize("upstream_options", [{"collector_token": "right-token"}], ids=["token"])


class LoopClock(FakeClock):
    """The upload thread's monotonic clock, moved by the test; counts how often it is read."""

    def __init__(self) -> None:
        super().__init__()
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.now


def went_round(uploader: Uploader, monotonic: LoopClock, readings: int = 4) -> bool:
    """Wake the upload thread until it has read its clock `readings` more times. Each turn of its
    loop reads it, and an attempt reads it before and after its request, so by then whatever the
    thread would do at this time is done: a check that nothing was sent does not rest on waiting
    long enough. (Waking it again is what a busy entrance does anyway.)"""
    target = monotonic.readings + readings

    def turned() -> bool:
        uploader.wake()
        return monotonic.readings >= target

    return wait_for(turned)


def section_for(url: str, **overrides: object) -> UpstreamSection:
    values: dict[str, object] = {"url": url, "batch_size": 3, "interval_s": 0.1, "timeout_s": 2.0}
    values.update(overrides)
    return UpstreamSection(**values)


def uploader_for(store: EventStore, url: str, clock: Callable[[], datetime] | None = None,
                 jitter: float = 0.5, monotonic: Callable[[], float] = time.monotonic, **overrides: object) -> Uploader:
    section = section_for(url, **overrides)
    return Uploader(store, UpstreamClient(section), section, clock=clock or FixedClock(), jitter=lambda: jitter,
                    monotonic=monotonic)


def fill(store: EventStore, count: int, start: int = 0) -> list[Event]:
    return [store.append(routine(n)) for n in range(start, start + count)]


def received_ids(upstream: ReferenceUpstream) -> list[str]:
    return [event["id"] for event in upstream.collector.events()]


@pytest.mark.parametrize("gzip", [True, False])
def test_queued_events_reach_the_collector_once_and_are_marked_sent(
    store: EventStore, upstream: ReferenceUpstream, gzip: bool
) -> None:
    events = fill(store, 8)
    clock = FixedClock()
    uploader = uploader_for(store, upstream.url, clock=clock, gzip=gzip)

    assert uploader.drain_once() == 8
    assert upstream.collector.events() == [event.to_dict() for event in events]
    assert store.counts()["unsent"] == 0
    assert uploader.drain_once() == 0
    assert upstream.collector.count() == 8
    status = uploader.status()
    assert (status["state"], status["backlog"], status["last_error"]) == ("ok", 0, None)
    assert status["last_success_at"] == utc_iso(clock.now)


def test_what_the_kiosk_sends_reads_back_as_the_same_events_with_their_sequence(
    store: EventStore, upstream: ReferenceUpstream
) -> None:
    events = fill(store, 4)
    uploader_for(store, upstream.url).drain_once()
    lines = requests.get(f"{upstream.url}/events", timeout=5).text.splitlines()
    received = [Event.from_dict(json.loads(line)) for line in lines]
    assert received == events
    assert [event.seq for event in received] == [1, 2, 3, 4]


def test_urgent_refusals_overtake_a_routine_backlog(store: EventStore, upstream: ReferenceUpstream) -> None:
    fill(store, 9)
    uploader = uploader_for(store, upstream.url, batch_size=3)
    late = [store.append(urgent(100, "red_code")), store.append(urgent(101, "fever"))]
    uploader.drain_once()
    assert received_ids(upstream)[:2] == [event.id for event in late]
    assert upstream.collector.count() == 11


def test_a_collector_that_never_listened_keeps_events_queued_until_it_appears(store: EventStore, tmp_path: Path) -> None:
    port = closed_port()
    events = fill(store, 5)
    clock = FixedClock()
    uploader = uploader_for(store, f"http://127.0.0.1:{port}", clock=clock)

    assert uploader.drain_once() == 0
    status = uploader.status()
    assert (status["state"], status["backlog"], status["last_success_at"]) == ("retrying", 5, None)
    assert status["last_error"] == "collector: connection refused"
    assert status["last_error_at"] == utc_iso(clock.now)

    with ReferenceUpstream(port=port, data_dir=tmp_path / "late") as late:
        assert uploader.drain_once() == 5
        assert received_ids(late) == [e.id for e in events]
    status = uploader.status()
    assert (status["state"], status["failures"]) == ("ok", 0)
    assert "connection refused" in status["last_error"]  # still shown, with its time, after recovery


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
    assert uploader.status()["last_error"] in ("collector: connection refused",
                                                "collector: closed the connection without an answer")

    upstream.start()
    assert uploader.drain_once() == 4
    assert received_ids(upstream) == [e.id for e in first + later]


def test_a_batch_sent_again_after_a_lost_answer_is_answered_again_not_stored_twice(
    store: EventStore, upstream: ReferenceUpstream
) -> None:
    events = fill(store, 3)
    section = section_for(upstream.url)
    batch = store.next_batch(3, 1 << 20)
    # The collector stores the batch, but the kiosk never learns it did (say the answer was lost)...
    first = UpstreamClient(section).post_batch(batch.ndjson(), batch.key)
    assert (first.accepted, first.duplicates) == (3, 0)
    assert store.counts()["unsent"] == 3
    # ...so the uploader sends the same batch, with the same idempotency key, again.
    assert Uploader(store, UpstreamClient(section), section, clock=FixedClock()).drain_once() == 3
    assert received_ids(upstream) == [e.id for e in events]
    assert upstream.collector.copies() == 3  # recognised by its key: not even counted as copies
    assert store.counts()["unsent"] == 0


@with_token
def test_a_wrong_token_stops_uploads_keeps_events_and_says_so(store: EventStore, upstream: ReferenceUpstream) -> None:
    fill(store, 2)
    monotonic = LoopClock()
    wrong = uploader_for(store, upstream.url, token="wrong-token", monotonic=monotonic)
    assert wrong.drain_once() == 0
    status = wrong.status()
    assert status["state"] == "stopped"
    assert status["last_error"].startswith("collector answered 401: wrong or missing token")
    assert "upstream.token" in status["last_error"]
    assert status["backlog"] == 2
    assert upstream.collector.count() == 0

    stop = threading.Event()
    thread = wrong.start(stop)
    try:
        # Stopped means stopped: not even an urgent refusal has the thread knock again early...
        store.append(urgent(50))
        wrong.wake()
        monotonic.advance(AUTH_RETRY_S - 1)
        assert went_round(wrong, monotonic)
        assert wrong.status()["failures"] == 1
        # ...until AUTH_RETRY_S later, when it asks once (the token may have been fixed upstream).
        monotonic.advance(1)
        assert wait_for(lambda: wrong.status()["failures"] == 2)
        assert went_round(wrong, monotonic)
        assert wrong.status()["failures"] == 2
    finally:
        stop.set()
        thread.join(timeout=5)
    assert upstream.collector.count() == 0

    fixed = uploader_for(store, upstream.url, token="right-token")
    assert fixed.drain_once() == 3
    assert upstream.collector.count() == 3


@with_token
def test_the_token_never_appears_in_errors_logs_or_the_saved_status(
    store: EventStore, upstream: ReferenceUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fill(store, 1)
    uploader = uploader_for(store, upstream.url, token="s3cret-kiosk-token")
    uploader.drain_once()
    assert "s3cret" not in str(uploader.status())
    assert "s3cret" not in caplog.text
    assert "s3cret" not in str(store.load_status())
    assert b"s3cret" not in b"".join(p.read_bytes() for p in store.path.parent.glob("events.db*"))


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
        assert "collector: connection refused" in warnings[0].getMessage()
        # Still failing much later: said again, so the journal shows it is still going on.
        clock.now += timedelta(hours=1)
        uploader.drain_once()
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert uploader.status()["failures"] == 6


def test_a_collector_with_a_small_body_limit_gets_smaller_batches(
    store: EventStore, upstream: ReferenceUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream_module, "MAX_BODY_BYTES", 2500)
    events = fill(store, 20)
    uploader = uploader_for(store, upstream.url, batch_size=50, gzip=False)
    assert uploader.drain_once() == 20
    assert received_ids(upstream) == [e.id for e in events]
    assert store.parked() == []


def test_an_event_the_collector_never_accepts_is_parked_and_the_rest_goes_on(
    store: EventStore, upstream: ReferenceUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    good = fill(store, 2)
    bad = store.append(make_event(2, decision="MAYBE"))
    after = fill(store, 3, start=3)
    uploader = uploader_for(store, upstream.url, batch_size=10)
    with caplog.at_level(logging.WARNING):
        assert uploader.drain_once() == 5
    assert received_ids(upstream) == [e.id for e in good + after]
    (parked, reason), = store.parked()
    assert parked == bad
    assert 'decision must be "PASS" or "REFUSE"' in reason
    assert uploader.status()["parked"] == 1
    assert "parked" in caplog.text


def test_a_single_event_too_large_for_the_collector_is_parked(
    store: EventStore, upstream: ReferenceUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream_module, "MAX_BODY_BYTES", 2000)
    fill(store, 2)
    huge = store.append(make_event(5, detail={"note": "x" * 3000}))
    fill(store, 2, start=6)
    uploader = uploader_for(store, upstream.url, batch_size=50, gzip=False)
    assert uploader.drain_once() == 4
    (parked, reason), = store.parked()
    assert parked.id == huge.id and "too large" in reason


def test_the_client_reports_a_refusal_with_its_status(upstream: ReferenceUpstream) -> None:
    client = UpstreamClient(section_for(upstream.url + "/nowhere"))
    with pytest.raises(UploadError) as caught:
        client.post_events([routine(1)])
    assert caught.value.status == 404
    assert str(caught.value).startswith("collector answered 404")


def test_retry_after_is_honoured_even_for_urgent_refusals(store: EventStore, upstream: ReferenceUpstream) -> None:
    clock, monotonic = FixedClock(), LoopClock()
    uploader = uploader_for(store, upstream.url, clock=clock, jitter=0.0, monotonic=monotonic)
    upstream.inject(Fault("status", status=503, retry_after="30"))
    fill(store, 1)
    assert uploader.drain_once() == 0
    status = uploader.status()
    assert status["last_error"] == "collector answered 503: injected fault 503"
    assert status["next_attempt_at"] == utc_iso(clock.now + timedelta(seconds=30))

    stop = threading.Event()
    thread = uploader.start(stop)
    try:
        store.append(urgent(9))
        uploader.wake()
        monotonic.advance(29)  # the collector asked for 30 s of quiet: nothing is sent meanwhile
        assert went_round(uploader, monotonic)
        assert upstream.collector.count() == 0
        monotonic.advance(1)
        assert wait_for(lambda: upstream.collector.count() == 2)
    finally:
        stop.set()
        thread.join(timeout=5)


def test_an_urgent_refusal_cuts_a_backoff_short_and_a_routine_event_does_not(
    store: EventStore, upstream: ReferenceUpstream
) -> None:
    # A long backoff (30 s from interval_s) after one failure, as after an outage.
    monotonic = LoopClock()
    uploader = uploader_for(store, upstream.url, interval_s=60, max_retry_s=60, jitter=0.0, monotonic=monotonic)
    upstream.inject(Fault("status", status=500))
    fill(store, 1)
    assert uploader.drain_once() == 0
    stop = threading.Event()
    thread = uploader.start(stop)
    try:
        store.append(routine(5))
        uploader.wake()
        monotonic.advance(20)
        assert went_round(uploader, monotonic)
        assert upstream.collector.count() == 0  # routine events wait out the backoff

        refusal = store.append(urgent(6, "red_code"))
        uploader.wake()
        assert wait_for(lambda: upstream.collector.count() == 3, timeout=5)
        assert received_ids(upstream)[0] == refusal.id
    finally:
        stop.set()
        thread.join(timeout=5)


def test_https_with_the_collectors_ca_in_the_bundle(store: EventStore, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path / "tls")
    with ReferenceUpstream(data_dir=tmp_path / "up", tls_cert=cert, tls_key=key) as secure:
        assert secure.url.startswith("https://")
        events = fill(store, 3)
        untrusted = uploader_for(store, secure.url)
        assert untrusted.drain_once() == 0
        assert untrusted.status()["last_error"].startswith("collector: TLS certificate not trusted (self")
        assert secure.collector.count() == 0

        missing = uploader_for(store, secure.url, ca_bundle=str(tmp_path / "nope.pem"))
        assert missing.drain_once() == 0
        assert missing.status()["last_error"] == f"upstream.ca_bundle {tmp_path / 'nope.pem'}: no such file"

        trusted = uploader_for(store, secure.url, ca_bundle=str(cert))
        assert trusted.drain_once() == 3
        assert received_ids(secure) == [e.id for e in events]


def test_plain_http_to_a_tls_collector_fails_cleanly(store: EventStore, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path / "tls")
    with ReferenceUpstream(data_dir=tmp_path / "up", tls_cert=cert, tls_key=key) as secure:
        fill(store, 1)
        plain = uploader_for(store, secure.url.replace("https://", "http://"), timeout_s=1.0)
        assert plain.drain_once() == 0
        assert plain.status()["last_error"].startswith("collector: ")
        assert store.counts()["queued"] == 1


def test_the_upload_state_is_saved_for_kiosk_status_in_another_process(
    store: EventStore, upstream: ReferenceUpstream
) -> None:
    clock = FixedClock()
    uploader = uploader_for(store, upstream.url, clock=clock)
    upstream.inject(Fault("status", status=500))
    fill(store, 2)
    uploader.drain_once()
    clock.now += timedelta(seconds=10)
    uploader.drain_once()
    with sqlite3.connect(store.path) as other:
        saved = {key: json.loads(value) for key, value in other.execute("SELECT key, value FROM sync_status")}
    assert saved["state"] == "ok"
    assert saved["last_success_at"] == utc_iso(clock.now)
    assert saved["last_error"] == "collector answered 500: injected fault 500"
    assert saved["last_error_at"] == utc_iso(clock.now - timedelta(seconds=10))


def test_the_background_thread_sends_new_events_and_recovers_after_an_outage(
    store: EventStore, upstream: ReferenceUpstream
) -> None:
    uploader = uploader_for(store, upstream.url, max_retry_s=1)
    stop = threading.Event()
    thread = uploader.start(stop)
    try:
        fill(store, 2)
        uploader.wake()
        assert wait_for(lambda: upstream.collector.count() == 2)

        upstream.stop()
        fill(store, 3, start=2)
        uploader.wake()
        assert wait_for(lambda: uploader.status()["state"] == "retrying")
        assert store.counts()["unsent"] == 3

        upstream.start()
        assert wait_for(lambda: upstream.collector.count() == 5)
        assert wait_for(lambda: uploader.status()["backlog"] == 0)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert received_ids(upstream) == [routine(n).id for n in range(5)]


def test_upkeep_tasks_run_on_the_upload_thread_and_a_failing_one_does_not_stop_it(
    store: EventStore, upstream: ReferenceUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("disk on fire")

    def record() -> None:
        ran.append(threading.current_thread().name)
        store.append(make_event(77, decision="", kind="clock"))

    section = section_for(upstream.url)
    uploader = Uploader(store, UpstreamClient(section), section, clock=FixedClock(), upkeep=[broken, record])
    stop = threading.Event()
    thread = uploader.start(stop)
    try:
        assert wait_for(lambda: upstream.collector.count() == 1)  # what upkeep appended goes out
    finally:
        stop.set()
        thread.join(timeout=5)
    assert ran[:2] == ["broken", "uploader"]
    assert "disk on fire" in caplog.text


# --- an answer that never ends ---------------------------------------------------------------------


class _Flooding(BaseHTTPRequestHandler):
    """Takes the batch, answers 200 with the start of a receipt, then far more than any answer."""

    protocol_version = "HTTP/1.1"
    server: "FloodingCollector"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.batches += 1
        kind = self.server.kind
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if kind == "endless":
            self.send_header("Transfer-Encoding", "chunked")
        elif kind == "huge":
            self.send_header("Content-Length", str(1 << 40))
        else:  # "gzip-bomb"
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(bomb())))
        self.end_headers()
        block = b'{"accepted": 3, "duplicates": 0' + b" " * 65536
        try:
            if kind == "gzip-bomb":
                self.wfile.write(bomb())
                return
            while not self.server.stopping.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if kind == "endless" else block)
                block = b" " * 65536
        except OSError:
            pass  # the kiosk hung up: that is what is being tested
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@functools.cache
def bomb() -> bytes:
    """gzip of a receipt's start and 32 MiB of spaces (about 150 KiB), built a MiB at a time."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16 +: the gzip container
    spaces = b" " * (1 << 20)
    parts = [packer.compress(b'{"accepted": 3')] + [packer.compress(spaces) for _ in range(32)]
    return b"".join(parts) + packer.flush()


class FloodingCollector(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, kind: str):
        super().__init__(("127.0.0.1", 0), _Flooding)
        self.kind = kind
        self.batches = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the kiosk hanging up mid-answer is the point, not a server error

    def close(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("kind", ["endless", "huge", "gzip-bomb"])
def test_an_answer_larger_than_any_receipt_is_cut_off_and_nothing_is_marked_sent(store: EventStore, kind: str) -> None:
    """A 200 whose body never ends (or claims a terabyte, or inflates to 32 MiB): the kiosk reads
    at most MAX_ANSWER_BYTES of it, says so, and keeps the batch queued."""
    fill(store, 3)
    collector = FloodingCollector(kind)
    try:
        uploader = uploader_for(store, collector.url, timeout_s=30.0, gzip=False)
        tracemalloc.start()
        try:
            assert uploader.drain_once() == 0
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        collector.close()
    assert collector.batches == 1
    status = uploader.status()
    assert status["last_error"] == f"collector: answer larger than {MAX_ANSWER_BYTES} bytes"
    assert (status["state"], status["backlog"], store.counts()["unsent"]) == ("retrying", 3, 3)
    assert peak < 8 * MAX_ANSWER_BYTES  # a few copies of the cap at most, not the flood
