"""Fault injection: the collector misbehaves in every way a network and a server can, and every
decision still ends up upstream exactly once.

The kiosk side is the real store and upload thread; the collector is the reference server on
loopback with faults queued for its next requests. Delays are shortened by config (timeouts of
0.3 s, backoff capped at 1 s) and the jitter is fixed, so a run takes a second or two.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from kiosk.config import UpstreamSection
from kiosk.events import Event
from kiosk.sim.upstream import Fault, ReferenceUpstream
from kiosk.sync.client import UploadError, UpstreamClient
from kiosk.sync.retry import MAX_RETRY_AFTER_S, backoff_s, next_delay_s, parse_retry_after
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import Uploader
from sync_helpers import make_event, self_signed_cert, wait_for

TIMEOUT_S = 0.3


class Kiosk:
    """The kiosk's sync side: its store and a running upload thread."""

    def __init__(self, folder: Path, url: str, **overrides: object):
        values: dict[str, object] = dict(url=url, batch_size=4, interval_s=0.1, max_retry_s=1.0, timeout_s=TIMEOUT_S)
        values.update(overrides)
        section = UpstreamSection(**values)
        self.store = EventStore(folder / "events.db")
        self.uploader = Uploader(self.store, UpstreamClient(section), section, jitter=lambda: 0.5, auth_retry_s=0.5)
        self.stop = threading.Event()
        self.thread = self.uploader.start(self.stop)
        self.decided: list[Event] = []
        self.errors: list[str] = []

    def decide(self, n: int) -> Event:
        """One decision: every fourth is an urgent refusal, as at a busy entrance."""
        if n % 4 == 0:
            event = make_event(n, "REFUSE", (("yellow_code", "red_code", "fever")[n % 3],), id=f"{n:032x}")
        else:
            event = make_event(n, id=f"{n:032x}")
        stored = self.store.append(event)
        self.uploader.wake()
        self.decided.append(stored)
        return stored

    def note_error(self) -> None:
        error = self.uploader.status()["last_error"]
        if error and error not in self.errors:
            self.errors.append(error)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.store.close()


@pytest.fixture
def kiosk_for(tmp_path: Path) -> Iterator:
    made: list[Kiosk] = []

    def make(url: str, **overrides: object) -> Kiosk:
        made.append(Kiosk(tmp_path / f"kiosk{len(made)}", url, **overrides))
        return made[-1]

    yield make
    for kiosk in made:
        kiosk.close()


def assert_exactly_once_upstream(upstream: ReferenceUpstream, kiosk: Kiosk) -> None:
    assert wait_for(lambda: kiosk.store.counts()["unsent"] == 0, timeout=15), kiosk.uploader.status()
    listing = requests.get(f"{upstream.url}/events", timeout=5).text.splitlines()
    ids = Counter(json.loads(line)["id"] for line in listing)
    assert sorted(ids) == sorted(event.id for event in kiosk.decided)
    assert set(ids.values()) == {1}
    assert upstream.collector.count() == len(kiosk.decided)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault("status", status=500), "collector answered 500: injected fault 500"),
        (Fault("status", status=503, retry_after="1"), "collector answered 503: injected fault 503"),
        (Fault("status", status=429, retry_after="1"), "collector answered 429: injected fault 429"),
        (Fault("stall", seconds=5), f"collector: no complete answer within {TIMEOUT_S:g} s"),
        (Fault("drop"), "collector: closed the connection without an answer"),
        (Fault("no_body", seconds=5), f"collector: no complete answer within {TIMEOUT_S:g} s"),
        (Fault("accept_then_die"), "collector: closed the connection without an answer"),
        (Fault("trickle", seconds=0.05), f"collector: no complete answer within {TIMEOUT_S:g} s"),
        (Fault("trickle_head", seconds=0.05), f"collector: no complete answer within {TIMEOUT_S:g} s"),
    ],
    ids=["500", "503-retry-after", "429-retry-after", "timeout", "dropped-mid-request", "200-without-body",
         "accept-then-die", "trickled-answer", "trickled-head"],
)
def test_every_decision_arrives_exactly_once_through_a_fault(
    upstream: ReferenceUpstream, kiosk_for, fault: Fault, error: str
) -> None:
    kiosk = kiosk_for(upstream.url)
    for n in range(1, 7):
        kiosk.decide(n)
    assert wait_for(lambda: upstream.collector.count() == 6)

    # The next two requests both suffer it (one for Retry-After faults, whose wait is real time).
    upstream.inject(*([fault] if fault.retry_after else [fault, fault]))
    for n in range(7, 13):
        kiosk.decide(n)
    if fault.kind == "accept_then_die":
        for _ in range(2):  # it dies after storing a batch; an operator starts it again, twice
            assert wait_for(lambda: not upstream.serving)
            upstream.start()
    assert wait_for(lambda: upstream.pending_faults == 0, timeout=10)
    assert wait_for(lambda: kiosk.uploader.status()["last_error"] is not None)
    assert kiosk.uploader.status()["last_error"].startswith(error)

    assert_exactly_once_upstream(upstream, kiosk)
    assert kiosk.uploader.status()["state"] == "ok"
    if fault.kind in ("no_body", "accept_then_die", "trickle", "trickle_head"):
        # The collector had the batch but the kiosk never heard so: it was sent again and recognised.
        assert upstream.stats["replayed"] + upstream.collector.copies() - upstream.collector.count() >= 1


def test_a_revoked_token_stops_uploads_and_they_resume_when_the_collector_takes_it_again(
    upstream: ReferenceUpstream, kiosk_for
) -> None:
    kiosk = kiosk_for(upstream.url)
    upstream.inject(Fault("status", status=401))
    for n in range(1, 6):
        kiosk.decide(n)
    assert wait_for(lambda: kiosk.uploader.status()["state"] == "stopped")
    assert "upstream.token" in kiosk.uploader.status()["last_error"]
    assert kiosk.store.counts()["unsent"] == 5  # nothing lost while stopped
    assert_exactly_once_upstream(upstream, kiosk)  # tried again after auth_retry_s, accepted


def test_a_refused_event_is_parked_and_everything_else_arrives_once(upstream: ReferenceUpstream, kiosk_for) -> None:
    kiosk = kiosk_for(upstream.url)
    for n in range(1, 4):
        kiosk.decide(n)
    bad = kiosk.store.append(make_event(4, decision="MAYBE", id=f"{4:032x}"))
    kiosk.uploader.wake()
    for n in range(5, 9):
        kiosk.decide(n)
    assert wait_for(lambda: kiosk.store.counts()["queued"] == 0)
    assert [event.id for event, _ in kiosk.store.parked()] == [bad.id]
    ids = [event["id"] for event in upstream.collector.events()]
    assert sorted(ids) == sorted(event.id for event in kiosk.decided)


def test_a_random_storm_of_faults_while_decisions_keep_coming(upstream: ReferenceUpstream, kiosk_for) -> None:
    rng = random.Random(20240301)
    kinds = [
        Fault("status", status=500), Fault("status", status=502), Fault("status", status=503, retry_after="0"),
        Fault("status", status=429, retry_after="0"), Fault("stall", seconds=2), Fault("drop"),
        Fault("no_body", seconds=2), Fault("accept_then_die"), Fault("trickle", seconds=0.05),
        Fault("trickle_head", seconds=0.05),
    ]
    kiosk = kiosk_for(upstream.url)
    done = threading.Event()

    def supervise() -> None:  # an operator who restarts the collector whenever it dies
        while not done.is_set():
            if not upstream.serving:
                upstream.start()
            done.wait(0.05)

    supervisor = threading.Thread(target=supervise, daemon=True)
    supervisor.start()
    try:
        injected = 0
        for n in range(1, 151):
            kiosk.decide(n)
            if not upstream.pending_faults and rng.random() < 0.3:  # one fault at a time, often
                upstream.inject(rng.choice(kinds))
                injected += 1
            done.wait(0.02)
            kiosk.note_error()
        assert injected >= 6
        assert wait_for(lambda: upstream.pending_faults == 0, timeout=20)
        assert_exactly_once_upstream(upstream, kiosk)
    finally:
        done.set()
        supervisor.join(timeout=5)
    assert len(kiosk.errors) >= 3  # the storm was noticed, and survived


# --- one deadline over the whole upload request --------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("kind", ["trickle", "trickle_head"])
def test_a_trickled_answer_ends_the_upload_at_its_deadline(tmp_path: Path, kind: str, tls: bool) -> None:
    """One byte every 50 ms never trips a read timeout; the deadline over the whole request ends it."""
    cert, key = self_signed_cert(tmp_path / "tls") if tls else (None, None)
    with ReferenceUpstream(data_dir=tmp_path / "up", tls_cert=cert, tls_key=key) as server:
        section = UpstreamSection(url=server.url, timeout_s=0.5, ca_bundle=str(cert) if tls else "")
        client = UpstreamClient(section)
        server.inject(Fault(kind, seconds=0.05))  # the answer would take several seconds
        with pytest.raises(UploadError, match="no complete answer within 0.5 s"):
            client.post_events([make_event(1)])
        assert client.post_events([make_event(1)]).status == 200
        assert server.stats["replayed"] == 1  # it had stored the batch: the same answer again
        assert server.stats["trickled"] == 0  # the kiosk gave up before the trickled answer was all sent


# --- the retry schedule, without sleeping ------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert backoff_s(0, 2.0, 120.0, 0.9) == 0.0
    assert [backoff_s(n, 2.0, 120.0, 0.0) for n in range(1, 9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert [backoff_s(n, 2.0, 120.0, 0.999) for n in (1, 2, 7)] == pytest.approx([1.999, 3.998, 119.94])
    assert backoff_s(10_000, 2.0, 120.0, 0.5) == 90.0  # no overflow after a week of failures
    assert backoff_s(3, 300.0, 120.0, 0.0) == 150.0  # a cap below the base does not shorten the base


def test_backoff_rejects_a_jitter_outside_zero_to_one() -> None:
    with pytest.raises(ValueError):
        backoff_s(1, 2.0, 60.0, 1.0)


def test_retry_after_in_seconds_or_as_a_date_and_nonsense_ignored() -> None:
    now = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Fri, 01 Mar 2024 08:02:00 GMT", now) == 120.0
    assert parse_retry_after("Fri, 01 Mar 2024 07:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after("999999999", now) == MAX_RETRY_AFTER_S
    for nonsense in (None, "", "soon", "-5", "1.5", "Fri, 99 Foo 2024"):
        assert parse_retry_after(nonsense, now) is None


def test_the_next_delay_is_the_longer_of_the_backoff_and_retry_after() -> None:
    assert next_delay_s(1, 2.0, 60.0, 0.0, retry_after_s=30.0) == 30.0
    assert next_delay_s(7, 2.0, 60.0, 0.0, retry_after_s=5.0) == 30.0
    assert next_delay_s(2, 2.0, 60.0, 0.5) == 3.0
    assert next_delay_s(1, 2.0, 60.0, 0.0, retry_after_s=10 * MAX_RETRY_AFTER_S) == MAX_RETRY_AFTER_S
    # The whole schedule over a long outage, as a maintainer would read it from the log.
    schedule = [next_delay_s(n, 2.0, 120.0, 0.5) for n in range(1, 10)]
    assert schedule == [1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 90.0, 90.0, 90.0]
    assert sum(schedule) < timedelta(minutes=10).total_seconds()
