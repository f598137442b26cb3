"""The platform lookup against a real HTTP server on loopback, in good health and in every fault."""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
import requests
from pydantic import SecretStr

from kiosk.codes.hashing import CodeHasher
from kiosk.codes.platform import MAX_PAYLOAD_CHARS, PlatformVerifier
from kiosk.config import PlatformSection
from kiosk.decision import Policy, decide
from kiosk.results import Reason, TemperatureResult
from kiosk.sim.population import Population
from kiosk.sim.upstream import Fault, ReferenceUpstream
from sync_helpers import self_signed_cert

NOW = datetime(2026, 11, 26, 9, 30, 27, tzinfo=timezone.utc)
TOKEN = "kiosk-token-5f2c9a"
SECRET = b"install-secret-for-tests-0123456789"
PLATFORM_LOGGER = "kiosk.codes.platform"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class PlatformHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real platform
    # Headers and body go out in two writes; with Nagle on, a keep-alive answer waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: "PlatformStub"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", extra: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode())

    def do_POST(self) -> None:
        stub = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        stub.seen.append(Seen(self.path, dict(self.headers.items()), body, self.client_address[1]))
        if self.path != "/platform/verify":
            return self._send(404, b"<html>no such page</html>", "text/html")
        mode = stub.mode
        if mode == "hang_up":
            self.close_connection = True
            return
        if mode == "slow":
            stub.release.wait(5)
        if mode == "slow_body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "200")
            self.end_headers()
            self.wfile.write(b'{"status": "o')
            self.wfile.flush()
            stub.release.wait(5)
            self.close_connection = True
            return
        if mode == "status":
            return self._send(stub.status, b"<html>trouble</html>", "text/html", stub.extra_headers)
        if mode == "raw":
            return self._send(200, stub.raw)
        if self.headers.get("Authorization") != f"Bearer {stub.token}":
            return self._json(401, {"status": "unauthorized"})
        code = json.loads(body)["code"]
        answer = stub.population.lookup(code)
        if answer is None:
            return self._json(404, {"status": "unknown"})
        self._json(200, answer)


class PlatformStub(ThreadingHTTPServer):
    """The platform's verify endpoint, answering from a Population, switchable into fault modes."""

    daemon_threads = True

    def __init__(self, population: Population, token: str):
        super().__init__(("127.0.0.1", 0), PlatformHandler)
        self.population = population
        self.token = token
        self.mode = "normal"
        self.status = 500
        self.extra_headers: dict[str, str] = {}
        self.raw = b""
        self.seen: list[Seen] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/platform"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a slow answer written after the kiosk gave up: a broken pipe is expected


@pytest.fixture
def population() -> Population:
    return Population(clock=lambda: NOW)


@pytest.fixture
def platform(population: Population) -> Iterator[PlatformStub]:
    stub = PlatformStub(population, TOKEN)
    thread = threading.Thread(target=stub.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield stub
    stub.release.set()
    stub.shutdown()
    stub.server_close()
    thread.join(timeout=5)


def make_verifier(url: str, token: str = TOKEN, timeout_s: float = 0.2) -> PlatformVerifier:
    section = PlatformSection(url=url, token=SecretStr(token), timeout_s=timeout_s)
    return PlatformVerifier(section, CodeHasher(SECRET))


@pytest.fixture
def verifier(platform: PlatformStub) -> Iterator[PlatformVerifier]:
    verifier = make_verifier(platform.url)
    yield verifier
    verifier.close()


def verdict(result) -> tuple[str, tuple[Reason, ...]]:
    """What the visitor would see, given a normal temperature at the moment of the scan."""
    v = decide(TemperatureResult.measured(36.6), result, Policy(), NOW)
    return v.outcome, v.reasons


# -- a healthy platform -------------------------------------------------------------------------


@pytest.mark.parametrize("colour", ["green", "yellow", "red"])
def test_colour_comes_from_the_platform(population: Population, verifier: PlatformVerifier, colour: str) -> None:
    person = population.person_ids(colour=colour, proxy=False)[0]
    result = verifier.verify(population.code_for(person))
    assert result.verified and result.colour == colour and result.problem is None
    assert result.generated_at == datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    assert result.generated_at.utcoffset() == timedelta(0)
    assert result.holder is not None and "*" in result.holder
    assert result.proxy is False
    expected = {
        "green": ("PASS", ()),
        "yellow": ("REFUSE", (Reason.YELLOW_CODE,)),
        "red": ("REFUSE", (Reason.RED_CODE,)),
    }
    assert verdict(result) == expected[colour]


def test_colour_change_on_the_platform_is_seen_at_the_next_scan(
    population: Population, verifier: PlatformVerifier
) -> None:
    code = population.code_for("p01")
    assert verifier.verify(code).colour == "green"
    population.set_colour("p01", "yellow")
    assert verifier.verify(code).colour == "yellow"


def test_proxy_code(population: Population, verifier: PlatformVerifier) -> None:
    person = population.person_ids(proxy=True)[0]
    result = verifier.verify(population.code_for(person))
    assert result.verified and result.proxy is True
    assert result.generated_at == datetime(2026, 11, 26, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "payload",
    [
        "green",
        '{"colour": "green", "name": "张伟明"}',
        "HCP1:AAAAAAAAAAAAAAAAAAAAAAAA",
        "x" * MAX_PAYLOAD_CHARS,
    ],
)
def test_unknown_code_is_refused_whatever_the_text_says(
    platform: PlatformStub, verifier: PlatformVerifier, payload: str
) -> None:
    result = verifier.verify(payload)
    assert len(platform.seen) == 1 and json.loads(platform.seen[0].body) == {"code": payload}
    assert result.verified is True and result.colour == "unknown" and result.problem is None
    assert verdict(result)[1][0] == Reason.UNKNOWN_CODE


def test_forged_code_is_unknown(population: Population, verifier: PlatformVerifier) -> None:
    code = population.code_for("p07")
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert verifier.verify(forged).colour == "unknown"


def test_token_is_sent_as_bearer(platform: PlatformStub, verifier: PlatformVerifier, population: Population) -> None:
    verifier.verify(population.code_for("p01"))
    seen = platform.seen[0]
    assert seen.path == "/platform/verify"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Content-Type"] == "application/json"


def test_no_token_no_header(platform: PlatformStub, population: Population) -> None:
    result = make_verifier(platform.url, token="").verify(population.code_for("p01"))
    assert "Authorization" not in platform.seen[0].headers
    assert result.verified is False and result.problem == "platform rejected the kiosk's token (401)"


def test_connection_is_reused_between_visitors(
    platform: PlatformStub, verifier: PlatformVerifier, population: Population
) -> None:
    for person in ("p01", "p02", "p03"):
        assert verifier.verify(population.code_for(person)).verified
    assert len({seen.client_port for seen in platform.seen}) == 1


def test_code_hash_is_the_keyed_hash_and_nothing_leaks_into_the_log(
    verifier: PlatformVerifier, population: Population, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = population.code_for("p05")
    result = verifier.verify(code)
    assert result.code_hash == CodeHasher(SECRET).hash(code)
    assert code not in result.code_hash and result.code_hash != CodeHasher(b"other-install-secret-0123").hash(code)
    assert code not in caplog.text and TOKEN not in caplog.text


def test_answer_in_another_timezone_is_kept_as_utc(platform: PlatformStub, verifier: PlatformVerifier) -> None:
    platform.mode = "raw"
    platform.raw = json.dumps(
        {
            "status": "ok",
            "colour": "green",
            "generated_at": "2026-11-26T17:30:00+08:00",
            "holder": "李*",
            "extra": [1, 2],
        }
    ).encode()
    result = verifier.verify("HCP1:ANYTHING")
    assert result.verified and result.colour == "green" and result.holder == "李*" and result.proxy is False
    assert result.generated_at == datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    assert result.generated_at.tzinfo == timezone.utc


def test_unrecognised_colour_is_unknown(platform: PlatformStub, verifier: PlatformVerifier) -> None:
    platform.mode = "raw"
    platform.raw = b'{"status": "ok", "colour": "blue", "generated_at": "2026-11-26T09:30:00Z"}'
    result = verifier.verify("HCP1:ANYTHING")
    assert result.verified is True and result.colour == "unknown"
    assert "colour" in result.problem
    assert verdict(result) == ("REFUSE", (Reason.UNKNOWN_CODE,))


# -- malformed payloads are refused without asking ------------------------------------------------


@pytest.mark.parametrize(
    "payload, why",
    [
        ("", "empty"),
        ("H" * (MAX_PAYLOAD_CHARS + 1), "longer than 2048"),
        ("HCP1:ABC\x00DEF", "control"),
        ("HCP1:ABC\nDEF", "control"),
        ("HCP1:ABC\x7f", "control"),
        ("HCP1:ABC\x85", "control"),
        ("HCP1:\udcff", "control"),
    ],
)
def test_malformed_payload_never_reaches_the_platform(
    platform: PlatformStub, verifier: PlatformVerifier, payload: str, why: str
) -> None:
    result = verifier.verify(payload)
    assert platform.seen == []
    assert result.verified is True and result.colour == "unknown"
    assert result.problem.startswith("malformed code: ") and why in result.problem
    assert result.code_hash == CodeHasher(SECRET).hash(payload)
    assert verdict(result)[1][0] == Reason.UNKNOWN_CODE


# -- a platform in trouble: cannot verify, never an exception -------------------------------------


WRONG_SHAPES = {
    "not json": (b"{not json", "not JSON"),
    "html": (b"<html>maintenance</html>", "not JSON"),
    "a list": (b"[]", "answer"),
    "null": (b"null", "answer"),
    "no status": (b'{"colour": "green", "generated_at": "2026-11-26T09:30:00Z"}', "status"),
    "odd status": (b'{"status": "HCP1:ECHO", "colour": "green"}', "status"),
    "no time": (b'{"status": "ok", "colour": "green"}', "generated_at"),
    "naive time": (b'{"status": "ok", "colour": "green", "generated_at": "2026-11-26T09:30:00"}', "generated_at"),
    "number time": (b'{"status": "ok", "colour": "green", "generated_at": 1795685400}', "generated_at"),
    "garbled time": (b'{"status": "ok", "colour": "green", "generated_at": "yesterday"}', "generated_at"),
    "number colour": (b'{"status": "ok", "colour": 1, "generated_at": "2026-11-26T09:30:00Z"}', "colour"),
    "text proxy": (
        b'{"status": "ok", "colour": "green", "generated_at": "2026-11-26T09:30:00Z", "proxy": "false"}',
        "proxy",
    ),
    "number holder": (
        b'{"status": "ok", "colour": "green", "generated_at": "2026-11-26T09:30:00Z", "holder": 7}',
        "holder",
    ),
}


def assert_cannot_verify(result, caplog: pytest.LogCaptureFixture, payload: str, *phrases: str) -> None:
    assert result.verified is False and result.colour == "unknown"
    for phrase in phrases:
        assert phrase in result.problem
    assert result.code_hash == CodeHasher(SECRET).hash(payload)
    warnings = [r for r in caplog.records if r.name == PLATFORM_LOGGER and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [result.problem]
    assert payload not in caplog.text and TOKEN not in caplog.text
    assert verdict(result) == ("REFUSE", (Reason.CANNOT_VERIFY,))


@pytest.mark.parametrize("shape", WRONG_SHAPES, ids=list(WRONG_SHAPES))
def test_wrong_answer_shape(
    platform: PlatformStub,
    verifier: PlatformVerifier,
    population: Population,
    caplog: pytest.LogCaptureFixture,
    shape: str,
) -> None:
    platform.mode = "raw"
    platform.raw, where = WRONG_SHAPES[shape]
    code = population.code_for("p01")
    result = verifier.verify(code)
    assert_cannot_verify(result, caplog, code, "platform answer malformed", where)
    assert "HCP1:ECHO" not in result.problem


@pytest.mark.parametrize("status", [500, 502, 503, 400, 302])
def test_error_status(
    platform: PlatformStub,
    verifier: PlatformVerifier,
    population: Population,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    platform.mode = "status"
    platform.status = status
    platform.extra_headers = {"Location": "/elsewhere"} if status == 302 else {}
    code = population.code_for("p01")
    assert_cannot_verify(verifier.verify(code), caplog, code, f"platform answered {status}")
    assert [seen.path for seen in platform.seen] == ["/platform/verify"]  # the redirect is not followed


@pytest.mark.parametrize("status", [401, 403])
def test_token_rejected(
    platform: PlatformStub,
    verifier: PlatformVerifier,
    population: Population,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    platform.mode = "status"
    platform.status = status
    code = population.code_for("p01")
    assert_cannot_verify(verifier.verify(code), caplog, code, f"platform rejected the kiosk's token ({status})")


def test_wrong_token(platform: PlatformStub, population: Population, caplog: pytest.LogCaptureFixture) -> None:
    code = population.code_for("p01")
    result = make_verifier(platform.url, token="a-wrong-token").verify(code)
    assert_cannot_verify(result, caplog, code, "(401)")
    assert "a-wrong-token" not in caplog.text


def test_wrong_url_is_not_an_unknown_code(
    platform: PlatformStub, population: Population, caplog: pytest.LogCaptureFixture
) -> None:
    """A 404 page from a misconfigured URL must not make every visitor's code 'unknown'."""
    code = population.code_for("p01")
    result = make_verifier(platform.url + "/v2").verify(code)
    assert_cannot_verify(result, caplog, code, "platform answered 404")


@pytest.mark.parametrize("mode", ["slow", "slow_body"])
def test_timeout_is_honoured(
    platform: PlatformStub,
    verifier: PlatformVerifier,
    population: Population,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    platform.mode = mode  # the server holds its answer for up to 5 s; the kiosk waits 0.2 s
    code = population.code_for("p01")
    assert_cannot_verify(verifier.verify(code), caplog, code, "platform: no complete answer within 0.2 s")


def test_connection_closed_without_answer(
    platform: PlatformStub, verifier: PlatformVerifier, population: Population, caplog: pytest.LogCaptureFixture
) -> None:
    platform.mode = "hang_up"
    code = population.code_for("p01")
    assert_cannot_verify(verifier.verify(code), caplog, code, "closed the connection without an answer")


def test_platform_down(population: Population, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = population.code_for("p01")
    result = make_verifier(f"http://127.0.0.1:{port}/platform").verify(code)
    assert_cannot_verify(result, caplog, code, "platform: connection refused")


def test_recovers_after_a_fault(platform: PlatformStub, verifier: PlatformVerifier, population: Population) -> None:
    platform.mode = "hang_up"
    assert verifier.verify(population.code_for("p01")).verified is False
    platform.mode = "normal"
    assert verifier.verify(population.code_for("p01")).colour == "green"


# -- hardening: pending status, test times, size cap, circuit breaker ------------------------------


def test_pending_status_is_refused_as_unknown(platform: PlatformStub, verifier: PlatformVerifier) -> None:
    platform.mode = "raw"
    platform.raw = b'{"status": "pending"}'
    result = verifier.verify("HCP1:ANYTHING")
    assert result.verified is True and result.colour == "unknown" and "pending" in result.problem
    assert verdict(result) == ("REFUSE", (Reason.UNKNOWN_CODE,))


def test_platform_reports_the_latest_negative_test(
    population: Population, verifier: PlatformVerifier
) -> None:
    population.set_test("p01", NOW - timedelta(hours=30))
    result = verifier.verify(population.code_for("p01"))
    assert result.tested_at == NOW - timedelta(hours=30) and result.issuer == "platform"
    population.set_test("p01", NOW - timedelta(hours=3), "pending")
    assert verifier.verify(population.code_for("p01")).tested_at is None  # only a negative result counts
    assert verifier.verify(population.code_for("p02")).tested_at is None  # no test on record


def test_oversized_answer_is_cut_off(platform: PlatformStub, verifier: PlatformVerifier) -> None:
    platform.mode = "raw"
    platform.raw = b'{"status": "ok", "pad": "' + b"x" * (70 * 1024) + b'"}'
    result = verifier.verify("HCP1:ANYTHING")
    assert result.verified is False and "larger than" in result.problem


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_repeated_failures_then_closes(
    platform: PlatformStub, population: Population, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = Ticks()
    section = PlatformSection(url=platform.url, token=SecretStr(TOKEN), timeout_s=0.2,
                              breaker_failures=3, breaker_cooldown_s=30)
    verifier = PlatformVerifier(section, CodeHasher(SECRET), clock=ticks)
    code = population.code_for("p01")
    platform.mode = "status"
    platform.status = 503
    for _ in range(3):
        assert verifier.verify(code).problem == "platform answered 503"
    assert verifier.breaker.state == "open" and len(platform.seen) == 3
    # While open, visitors get the fallback at once: the platform is not asked at all.
    quick = verifier.verify(code)
    assert quick.verified is False and "not asked" in quick.problem and "30 s" in quick.problem
    assert len(platform.seen) == 3
    assert verdict(quick) == ("REFUSE", (Reason.CANNOT_VERIFY,))
    # After the cool-down one trial goes out; it fails, so the breaker opens again.
    ticks.now += 30
    assert verifier.breaker.state == "half_open"
    assert verifier.verify(code).problem == "platform answered 503" and len(platform.seen) == 4
    assert verifier.breaker.state == "open" and "not asked" in verifier.verify(code).problem
    # The platform is back: the next trial succeeds and lookups flow again.
    platform.mode = "normal"
    ticks.now += 30
    assert verifier.verify(code).colour == "green"
    assert verifier.breaker.state == "closed"
    assert verifier.verify(code).colour == "green" and len(platform.seen) == 6
    verifier.close()


def test_breaker_counts_only_failures_in_a_row(platform: PlatformStub, population: Population) -> None:
    verifier = make_verifier(platform.url)
    code = population.code_for("p01")
    for _ in range(5):
        platform.mode = "hang_up"
        assert verifier.verify(code).verified is False
        platform.mode = "normal"
        assert verifier.verify(code).colour == "green"
    assert verifier.breaker.state == "closed"
    verifier.close()


def test_breaker_while_down_returns_immediately(population: Population) -> None:
    """A platform that swallows connections: after the breaker opens, nobody waits out a timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # accepts, never answers
        ticks = Ticks()
        section = PlatformSection(url=f"http://127.0.0.1:{silent.getsockname()[1]}/platform", timeout_s=0.2,
                                  breaker_failures=2, breaker_cooldown_s=60)
        verifier = PlatformVerifier(section, CodeHasher(SECRET), clock=ticks)
        code = population.code_for("p01")
        assert "no complete answer" in verifier.verify(code).problem
        assert "no complete answer" in verifier.verify(code).problem
        for _ in range(20):
            assert "not asked" in verifier.verify(code).problem
        verifier.close()


# --- one deadline over the whole lookup -----------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("kind", ["trickle", "trickle_head"])
def test_a_trickled_answer_ends_at_the_deadline(tmp_path, kind: str, tls: bool, caplog) -> None:
    """With Content-Length set and one byte every 50 ms no read timeout ever fires; the lookup
    still ends at platform.timeout_s, as a refusal (cannot verify)."""
    cert, key = self_signed_cert(tmp_path / "tls") if tls else (None, None)
    population = Population(clock=lambda: NOW)
    with ReferenceUpstream(data_dir=tmp_path / "up", population=population, tls_cert=cert, tls_key=key) as server:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override the bundle
        session.verify = str(cert) if tls else True
        section = PlatformSection(url=f"{server.url}/platform", timeout_s=0.5)
        verifier = PlatformVerifier(section, CodeHasher(SECRET), session)
        code = population.code_for("p01")
        server.inject(Fault(kind, route="verify", seconds=0.05))  # the answer would take seconds
        result = verifier.verify(code)
        assert server.stats["trickled"] == 0  # it gave up while the answer was still arriving
        assert_cannot_verify(result, caplog, code, "platform: no complete answer within 0.5 s")
        assert verifier.verify(code).colour == "green"  # the next lookup is answered as usual
        verifier.close()


def test_a_platform_whose_certificate_is_not_trusted_cannot_verify(tmp_path, caplog) -> None:
    cert, key = self_signed_cert(tmp_path / "tls")
    population = Population(clock=lambda: NOW)
    with ReferenceUpstream(data_dir=tmp_path / "up", population=population, tls_cert=cert, tls_key=key) as server:
        session = requests.Session()
        session.trust_env = False
        verifier = PlatformVerifier(PlatformSection(url=f"{server.url}/platform", timeout_s=1), CodeHasher(SECRET), session)
        code = population.code_for("p01")
        assert_cannot_verify(verifier.verify(code), caplog, code, "TLS certificate not trusted")
        verifier.close()
