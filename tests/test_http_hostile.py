"""Servers that answer the kiosk with intent to harm: the platform, the collector and any server
behind kiosk.http, played by raw sockets on loopback.

What must hold: every such answer ends in a short, fixed summary (no server text), a refused code
or a kept batch; memory stays bounded; no proxy from the environment is used; a name the platform
sends cannot stop the screen.
"""

from __future__ import annotations

import gzip
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from kiosk.codes.hashing import CodeHasher
from kiosk.codes.platform import PlatformVerifier
from kiosk.config import PlatformSection, ScreenSection, UpstreamSection
from kiosk.display.screen import Screen
from kiosk.display.state import ScreenState
from kiosk.errors import UploadError
from kiosk.http import NetworkError, guard_session, request
from kiosk.sync.client import UpstreamClient

from kit import read_request

pytestmark = pytest.mark.timeout(60)

DEADLINE_S = 1.0
MAX_BYTES = 64 * 1024
TOKEN = "kiosk-token-5f2c9a"
SECRET = b"install-secret-for-tests-0123456789"
# Memory a request may take beyond its answer cap (requests, urllib3 and the decoder's buffers).
PEAK_BYTES = 8 * 1024 * 1024
CODE = "https://hc.example.gov.cn/c/Zq7hR2mXkP4vN8sT1wY6bJ3dF9gL5cA0eU2iO"


class Raw:
    """A loopback server: reads each request's head, then ``answer(conn)`` on its own thread;
    ``heads`` keeps what each client sent (up to its blank line)."""

    def __init__(self, answer: Callable[[socket.socket], None]):
        self.answer = answer
        self.heads: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(30)
                head = read_request(conn)
                if b"\r\n\r\n" not in head:
                    return  # hung up before the end of its headers
                self.heads.append(head)
                self.answer(conn)
            except OSError:
                pass  # the client hung up: often what is tested

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def raw() -> Iterator[Callable[[Callable[[socket.socket], None]], Raw]]:
    servers: list[Raw] = []

    def start(answer: Callable[[socket.socket], None]) -> Raw:
        servers.append(Raw(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def sends(*parts: bytes) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        for part in parts:
            conn.sendall(part)
    return answer


def endless(head: bytes, piece: bytes) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.sendall(head)
        while True:
            conn.sendall(piece)
    return answer


def encoded(encoding: bytes, body: bytes) -> Callable[[socket.socket], None]:
    return sends(b"HTTP/1.1 200 OK\r\nContent-Encoding: " + encoding + b"\r\nContent-Length: %d\r\n\r\n" % len(body),
                 body)


ZEROS = b"\0" * (64 * 1024 * 1024)
GZIP_BOMB = gzip.compress(ZEROS, 9)
_RAW = zlib.compressobj(9, zlib.DEFLATED, -15)
RAW_DEFLATE_BOMB = _RAW.compress(ZEROS) + _RAW.flush()
OK = b"HTTP/1.1 200 OK\r\n"
EVIL = b"\x1b[2J\x1b[32mall fine\r\nINFO forged line \xe2\x80\xae"

# (server, what the kiosk says): the summary is fixed text; the server's words never appear in it.
HOSTILE = {
    "gzip bomb": (encoded(b"gzip", GZIP_BOMB), "answer larger than"),
    "gzip inside gzip": (encoded(b"gzip, gzip", gzip.compress(GZIP_BOMB)), "answer larger than"),
    "gzip named twice": (sends(OK + b"Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n\r\n",
                               gzip.compress(GZIP_BOMB)), "answer larger than"),
    "raw deflate bomb": (encoded(b"deflate", RAW_DEFLATE_BOMB), "answer larger than"),
    "zlib deflate bomb": (encoded(b"deflate", zlib.compress(ZEROS, 9)), "answer larger than"),
    "six encodings": (encoded(b"gzip, " * 5 + b"gzip", b"\x1f\x8b" + b"x" * 100), "cannot be decoded"),
    "gzip that is not": (encoded(b"gzip", b"\x1f\x8b" + EVIL), "cannot be decoded"),
    "chunk size line without end": (endless(OK + b"Transfer-Encoding: chunked\r\n\r\n", b"1" * 65536),
                                    "cut off"),
    "endless chunks": (endless(OK + b"Transfer-Encoding: chunked\r\n\r\n", b"4\r\nxxxx\r\n" * 4096),
                       "answer larger than"),
    "endless trailers": (endless(OK + b"Transfer-Encoding: chunked\r\n\r\n0\r\n", b"X-T: " + b"a" * 1000 + b"\r\n"),
                         "no complete answer within"),
    "a 10 MB header line": (endless(OK + b"X-Big: ", b"a" * 65536), "not HTTP"),
    "100,000 headers": (endless(OK, b"X-Many: a\r\n"), "not HTTP"),
    "endless 100 Continue": (endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n"), "no complete answer within"),
    "a body shorter than its length": (sends(OK + b"Content-Length: 100\r\n\r\nshort"), "cut off"),
    "two lengths": (sends(OK + b"Content-Length: 2\r\nContent-Length: 4\r\n\r\nbody"), "not HTTP"),
    "a length of 30 digits": (sends(OK + b"Content-Length: " + b"9" * 30 + b"\r\n\r\nbody"), "cut off"),
    "HTTP/0.9": (sends(EVIL), "not HTTP"),
    "a status line of escapes": (sends(b"HTTP/1.1 " + EVIL + b"\r\n\r\n"), "not HTTP"),
    "nothing": (sends(), "closed the connection"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_answer_is_a_short_fixed_summary_in_bounded_memory(raw, name: str) -> None:
    answer, said = HOSTILE[name]
    server = raw(answer)
    tracemalloc.start()
    try:
        with pytest.raises(NetworkError) as caught:
            request(guard_session(), "GET", server.url + "/x", seconds=DEADLINE_S, max_bytes=MAX_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert said in message
    assert "\x1b" not in message and "forged" not in message and "all fine" not in message
    assert peak < MAX_BYTES + PEAK_BYTES


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_the_code_is_refused(raw, status: int) -> None:
    elsewhere = raw(sends(OK + b"Content-Length: 0\r\n\r\n"))
    platform = raw(sends(b"HTTP/1.1 %d Moved\r\nLocation: %s/verify\r\nContent-Length: 0\r\n\r\n"
                         % (status, elsewhere.url.encode())))
    result = verifier(platform.url).verify(CODE)
    assert not result.verified and result.problem == f"platform answered {status}"
    assert elsewhere.heads == []


def verifier(url: str) -> PlatformVerifier:
    return PlatformVerifier(PlatformSection(url=url, token=SecretStr(TOKEN), timeout_s=DEADLINE_S), CodeHasher(SECRET))


def platform_answering(raw, body: bytes) -> Raw:
    return raw(sends(OK + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body), body))


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_in_the_environment_never_sees_a_lookup_or_the_token(raw, monkeypatch, variable: str) -> None:
    proxy = platform_answering(raw, b'{"status": "ok", "colour": "green", "generated_at": "2030-01-01T00:00:00Z"}')
    platform = platform_answering(raw, b'{"status": "unknown"}')
    monkeypatch.setenv(variable, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    result = verifier(platform.url).verify(CODE)
    assert result.verified and result.colour == "unknown"  # the platform's own answer
    assert proxy.heads == [] and len(platform.heads) == 1


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
@pytest.mark.parametrize("field", ["generated_at", "test_at"])
def test_a_time_with_no_utc_equivalent_refuses_the_code_without_raising(raw, moment: str, field: str) -> None:
    times = {"generated_at": "2030-01-01T00:00:00Z", "test_at": "2030-01-01T00:00:00Z", field: moment}
    body = ('{"status": "ok", "colour": "green", "generated_at": "%(generated_at)s", '
            '"test_at": "%(test_at)s", "test_result": "negative"}' % times).encode()
    result = verifier(platform_answering(raw, body).url).verify(CODE)
    assert not result.verified and result.problem == "platform answer malformed: a time out of range"


def test_a_holder_name_with_a_nul_is_a_malformed_answer(raw) -> None:
    body = (b'{"status": "ok", "colour": "green", "generated_at": "2030-01-01T00:00:00Z", '
            b'"holder": "\\u5f20\\u0000*"}')
    result = verifier(platform_answering(raw, body).url).verify(CODE)
    assert not result.verified and result.problem == "platform answer malformed: holder: holds control characters"


@pytest.mark.parametrize("name", ["\\u200b", "\\ufeff", "\\u202e"])
def test_a_holder_name_with_nothing_to_draw_still_shows_the_pass_page(raw, name: str) -> None:
    body = (b'{"status": "ok", "colour": "green", "generated_at": "2030-01-01T00:00:00Z", "holder": "%s"}'
            % name.encode())
    result = verifier(platform_answering(raw, body).url).verify(CODE)
    assert result.verified and result.holder
    screen = Screen(ScreenSection(mode="headless"), "zh")
    try:
        screen.show(ScreenState(kind="pass", temperature_c=36.5, holder=result.holder))
        assert screen.render()
        screen.show(ScreenState(kind="family_choose", choices=(result.holder,)))
        assert screen.render()
    finally:
        screen.close()


@pytest.mark.parametrize("value", [b"\xb2", b"\xb9\xb3", b"Mon, 01 Jan 2024 00:00:00 +" + b"9" * 20])
def test_an_odd_retry_after_is_ignored_and_the_batch_kept(raw, value: bytes) -> None:
    collector = raw(sends(b"HTTP/1.1 503 Busy\r\nRetry-After: " + value + b"\r\nContent-Length: 0\r\n\r\n"))
    client = UpstreamClient(UpstreamSection(url=collector.url, timeout_s=DEADLINE_S))
    with pytest.raises(UploadError) as caught:
        client.post_batch(b'{"id": "1"}\n', "key-1")
    assert caught.value.status == 503 and caught.value.retry_after_s is None
    assert str(caught.value) == "collector answered 503"
