"""The family lookup (people without phones) against real HTTP servers on loopback: the reference
platform's /family route, a stub that answers nonsense, a closed port and a server that never
answers; the rate limit, counted at the server; and the phone number never in a log line."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
import requests
from pydantic import SecretStr

from kiosk.codes.family import MAX_MEMBERS, FamilyLookup, FamilyResult, PhoneEntry
from kiosk.codes.ratelimit import SlidingWindow
from kiosk.config import Config, PlatformSection, merged
from kiosk.errors import ConfigError
from kiosk.sim.population import Population
from kiosk.sim.upstream import Fault, ReferenceUpstream
from kit import FakeClock

NOW = datetime(2026, 11, 26, 9, 30, 27, tzinfo=timezone.utc)
MOTHER_OF_P01 = "13800138001"  # p01's phone: linked to p11's printed proxy code
NO_PROXIES = "13800138002"  # p02 has a phone, but no family member's proxy code is linked to it
NOBODY = "13000000000"
TOKEN = "platform-token-7d1e"


@pytest.fixture
def upstream_options() -> dict:
    return {"platform_token": TOKEN, "population": Population(clock=lambda: NOW)}


def lookup_for(url: str, limit: int = 100, clock: FakeClock | None = None, token: str = TOKEN,
               timeout_s: float = 1.0) -> FamilyLookup:
    section = PlatformSection(url=url, token=SecretStr(token), timeout_s=timeout_s)
    clock = clock or FakeClock(1000.0)
    return FamilyLookup(section, SlidingWindow(limit, 600.0, clock))


# --------------------------------------------------------------------------- the reference platform


def test_a_phone_number_finds_its_familys_proxy_codes(upstream: ReferenceUpstream) -> None:
    family = lookup_for(f"{upstream.url}/platform")
    result = family.lookup(MOTHER_OF_P01)
    assert result.outcome == "found"
    assert [member.holder for member in result.members] == ["张*英"]
    # The code is the proxy entry's printed code: the platform verifies it as a proxy code.
    record = upstream.population.lookup(result.members[0].code)
    assert record is not None and record["proxy"] is True and record["holder"] == "张*英"
    assert result.members[0].code not in repr(result)  # a health code never lands in a log by accident


def test_unknown_numbers_and_numbers_without_proxy_codes_get_the_same_answer(upstream: ReferenceUpstream) -> None:
    family = lookup_for(f"{upstream.url}/platform")
    assert family.lookup(NOBODY) == FamilyResult("unknown")
    # A registered phone without proxy codes looks the same: a lookup does not reveal who is registered.
    assert family.lookup(NO_PROXIES) == FamilyResult("unknown")
    assert upstream.stats["family"] == 2


def test_wrong_token_is_unavailable_not_unknown(upstream: ReferenceUpstream) -> None:
    result = lookup_for(f"{upstream.url}/platform", token="wrong").lookup(MOTHER_OF_P01)
    assert result.outcome == "unavailable" and "token" in result.problem


def test_the_platform_refuses_a_body_that_is_not_a_phone_number(upstream: ReferenceUpstream) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for body in ({"phone": "1380013800a"}, {"phone": 13800138001}, {"number": MOTHER_OF_P01}, ["x"]):
        answer = requests.post(f"{upstream.url}/platform/family", json=body, headers=headers, timeout=5)
        assert answer.status_code == 400, body


def test_numbers_that_are_not_phone_numbers_are_not_sent(upstream: ReferenceUpstream) -> None:
    family = lookup_for(f"{upstream.url}/platform")
    for phone in ("", "1380013800", "138001380012", "1380013800a", "１３８００１３８００１", " 13800138001"):
        assert family.lookup(phone).outcome == "invalid", phone
    assert upstream.stats["family"] == 0


# --------------------------------------------------------------------------- the rate limit


def test_rate_limit_refuses_without_asking_the_platform(upstream: ReferenceUpstream) -> None:
    clock = FakeClock(1000.0)
    family = lookup_for(f"{upstream.url}/platform", limit=3, clock=clock)
    outcomes = []
    for phone in (NOBODY, NO_PROXIES, MOTHER_OF_P01):  # at 1000, 1010 and 1020 s
        outcomes.append(family.lookup(phone).outcome)
        clock.now += 10.0
    assert outcomes == ["unknown", "unknown", "found"]
    assert upstream.stats["family"] == 3
    assert family.lookup(MOTHER_OF_P01) == FamilyResult("rate_limited", problem="rate limit")
    clock.now += 569.0  # 1599 s: the first lookup is 599 s old
    assert family.lookup(MOTHER_OF_P01).outcome == "rate_limited"
    assert upstream.stats["family"] == 3  # the refused lookups never reached the platform
    clock.now += 1.0  # the first lookup is now 600 s old: room for one more
    assert family.lookup(MOTHER_OF_P01).outcome == "found"
    assert family.lookup(MOTHER_OF_P01).outcome == "rate_limited"
    assert upstream.stats["family"] == 4


def test_failed_lookups_count_against_the_limit(tmp_path) -> None:
    # Otherwise a number could be tried over and over while the platform is slow to answer.
    family = lookup_for(closed_port_url(), limit=2)
    assert [family.lookup(MOTHER_OF_P01).outcome for _ in range(3)] == ["unavailable", "unavailable", "rate_limited"]


def test_sliding_window() -> None:
    clock = FakeClock(1000.0)
    window = SlidingWindow(2, 10.0, clock)
    assert window.try_acquire() and window.retry_in() == 0.0
    clock.now += 4
    assert window.try_acquire()
    assert not window.try_acquire() and window.retry_in() == pytest.approx(6.0)
    clock.now += 6
    assert window.try_acquire() and not window.try_acquire()
    assert not SlidingWindow(0, 10.0, clock).try_acquire()
    with pytest.raises(ValueError):
        SlidingWindow(1, 0)


# --------------------------------------------------------------------------- faults


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/platform"


def test_platform_down_is_unavailable() -> None:
    result = lookup_for(closed_port_url()).lookup(MOTHER_OF_P01)
    assert result.outcome == "unavailable" and "refused" in result.problem


def test_a_platform_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)  # connections are accepted by the kernel, and never answered
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/platform"
        result = lookup_for(url, timeout_s=0.2).lookup(MOTHER_OF_P01)
    assert result.outcome == "unavailable" and "no complete answer" in result.problem


@pytest.mark.parametrize("kind", ["trickle", "trickle_head"])
def test_a_trickled_answer_ends_at_the_deadline(upstream: ReferenceUpstream, kind: str) -> None:
    """One byte at a time, each well within any read timeout: the lookup still ends on time."""
    upstream.inject(Fault(kind, route="family", seconds=0.05))  # the whole answer would take seconds
    result = lookup_for(f"{upstream.url}/platform", timeout_s=0.5).lookup(MOTHER_OF_P01)
    assert upstream.stats["trickled"] == 0  # it gave up while the answer was still arriving
    assert result == FamilyResult("unavailable", problem="platform: no complete answer within 0.5 s")
    assert lookup_for(f"{upstream.url}/platform").lookup(MOTHER_OF_P01).outcome == "found"


class Stub(ThreadingHTTPServer):
    answer: tuple[int, bytes]
    requests: int = 0


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Stub

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests += 1
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub(("127.0.0.1", 0), StubHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def member(code: str = "HCP1:AAAA", holder: str = "张*英") -> dict:
    return {"code": code, "holder": holder}


BAD_ANSWERS = {
    "not json": (200, b"<html>hello</html>", "not JSON"),
    "no status": (200, json.dumps({"members": [member()]}).encode(), "status: missing"),
    "pending": (200, json.dumps({"status": "pending"}).encode(), "status: must be"),
    "no members": (200, json.dumps({"status": "ok"}).encode(), "members"),
    "members not a list": (200, json.dumps({"status": "ok", "members": "x"}).encode(), "members"),
    "too many": (200, json.dumps({"status": "ok", "members": [member()] * (MAX_MEMBERS + 1)}).encode(), "members"),
    "code a number": (200, json.dumps({"status": "ok", "members": [{"code": 5, "holder": "a"}]}).encode(), "code"),
    "empty holder": (200, json.dumps({"status": "ok", "members": [member(holder="")]}).encode(), "holder"),
    "holder with a newline": (200, json.dumps({"status": "ok", "members": [member(holder="张\n英")]}).encode(), "holder"),
    "code with control characters": (200, json.dumps({"status": "ok", "members": [member(code="HCP1:\x00")]}).encode(), "code"),
    "huge": (200, b'{"status": "ok", "members": [], "pad": "' + b"x" * 20000 + b'"}', "larger than"),
    "404 page": (404, b"<html>not found</html>", "404"),
    "404 saying ok": (404, json.dumps({"status": "ok", "members": [member()]}).encode(), "404"),
    "200 saying unknown": (200, json.dumps({"status": "unknown"}).encode(), "200"),
    "500": (500, b"{}", "500"),
    "403": (403, b"{}", "token"),
}


@pytest.mark.parametrize("name", BAD_ANSWERS)
def test_nonsense_answers_are_unavailable(stub: Stub, name: str, caplog) -> None:
    status, body, problem = BAD_ANSWERS[name]
    stub.answer = (status, body)
    with caplog.at_level(logging.DEBUG):
        result = lookup_for(f"http://127.0.0.1:{stub.server_address[1]}/platform").lookup(MOTHER_OF_P01)
    assert result.outcome == "unavailable" and not result.members
    assert problem in result.problem
    assert stub.requests == 1
    assert MOTHER_OF_P01 not in caplog.text


def test_a_well_formed_stub_answer_is_accepted(stub: Stub) -> None:
    stub.answer = (200, json.dumps({"status": "ok", "members": [member("HCP1:X", "A*"), member("HCP1:Y", "B*")],
                                    "extra": 1}).encode())
    result = lookup_for(f"http://127.0.0.1:{stub.server_address[1]}/platform").lookup(MOTHER_OF_P01)
    assert result.outcome == "found"
    assert [(m.holder, m.code) for m in result.members] == [("A*", "HCP1:X"), ("B*", "HCP1:Y")]


# --------------------------------------------------------------------------- the number stays private


def test_the_phone_number_is_never_logged(upstream: ReferenceUpstream, caplog) -> None:
    clock = FakeClock(1000.0)
    with caplog.at_level(logging.DEBUG):
        family = lookup_for(f"{upstream.url}/platform", limit=3, clock=clock)
        outcomes = [family.lookup(MOTHER_OF_P01).outcome, family.lookup(NOBODY).outcome,
                    lookup_for(closed_port_url()).lookup(MOTHER_OF_P01).outcome,
                    lookup_for(f"{upstream.url}/platform", token="x").lookup(MOTHER_OF_P01).outcome,
                    family.lookup(MOTHER_OF_P01).outcome, family.lookup(MOTHER_OF_P01).outcome]
    assert outcomes == ["found", "unknown", "unavailable", "unavailable", "found", "rate_limited"]
    messages = [record.getMessage() for record in caplog.records]
    assert "family lookup: 1 members" in messages
    assert any(message.startswith("family lookup refused: rate limit") for message in messages)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)  # DEBUG was really captured
    for number in (MOTHER_OF_P01, NOBODY, MOTHER_OF_P01[3:]):
        assert number not in caplog.text


def test_phone_entry_masks_all_but_the_last_four_digits() -> None:
    entry = PhoneEntry(11, 11)
    assert entry.masked() == "" and not entry.complete
    for digit in "138":
        entry.press(digit)
    assert entry.masked() == "138"  # fewer than four: all still shown while typing
    for digit in MOTHER_OF_P01[3:]:
        entry.press(digit)
    assert entry.masked() == "••• •••• 8001" and entry.complete
    entry.press("5")  # at its longest: ignored
    assert len(entry) == 11 and MOTHER_OF_P01 not in repr(entry)
    entry.delete()
    assert not entry.complete and entry.masked() == "••• •••3 800"
    with pytest.raises(ValueError):
        entry.press("a")
    entry.press("1")
    assert entry.take() == MOTHER_OF_P01 and len(entry) == 0 and entry.masked() == ""


def test_phone_entry_length_range() -> None:
    entry = PhoneEntry(8, 12)
    for digit in "12345678":
        entry.press(digit)
    assert entry.complete and entry.masked() == "••• •567 8"
    for digit in "90123":
        entry.press(digit)
    assert len(entry) == 12


def test_config_keys_and_their_range() -> None:
    config = merged(Config(), {"codes": {"family_lookups": 2, "family_window_s": 60, "family_min_digits": 8,
                                         "family_max_digits": 12}})
    family = FamilyLookup.from_config(config)
    assert (family.limiter.limit, family.limiter.window_s) == (2, 60.0)
    assert (family.entry().min_digits, family.entry().max_digits) == (8, 12)
    family.close()
    with pytest.raises(ConfigError, match="codes: family_min_digits must not be more than family_max_digits"):
        merged(Config(), {"codes": {"family_min_digits": 12}})
