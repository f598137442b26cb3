"""One deadline over a whole HTTP request, against raw servers on loopback that misbehave in each
phase: the TLS handshake, the headers, the body (with and without a Content-Length), and a server
that never reads what it is sent. Each request must give up at its deadline: the server sees the
client hang up while its answer (or the upload) is still under way."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from kiosk.http import AnswerTooLarge, DeadlineExceeded, NetworkError, guard_session, request
from kit import read_request, wait_until
from sync_helpers import closed_port

DEADLINE_S = 0.5
OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"


class RawServer:
    """A loopback TCP server; each connection is handed to ``serve(conn)`` on its own thread."""

    def __init__(self, serve: Callable[[socket.socket, threading.Event], None]):
        self.serve = serve
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.peers: list[int] = []
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, peer = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.peers.append(peer[1])
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.serve(conn, self.stop)
            except OSError:
                pass  # the client gave up: that is what is being tested

    def close(self) -> None:
        self.stop.set()
        self._accepting.join(timeout=5)
        self.listener.close()
        for conn in self._conns:  # a kept-alive connection's reader returns at once
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Callable[[socket.socket, threading.Event], None]) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


class Trickle:
    """An answer a server sends a byte at a time (a hundred bytes take ten times the deadline); it
    records how many bytes got out before the client hung up."""

    def __init__(self, data: bytes, pause_s: float = 0.05):
        self.data = data
        self.pause_s = pause_s
        self.sent = 0
        self.hung_up = False  # a send failed: the client had closed the connection
        self.over = threading.Event()  # all sent, the client hung up, or the server stopped

    def send(self, conn: socket.socket, stop: threading.Event) -> None:
        try:
            for byte in self.data:
                if stop.wait(self.pause_s):
                    return
                conn.sendall(bytes([byte]))
                self.sent += 1
        except OSError:
            self.hung_up = True
        finally:
            self.over.set()


def gives_up_midway(call: Callable[[], object], answer: Trickle) -> BaseException:
    """Run ``call``; it must raise, having hung up on the server before the answer was all sent.
    Returns what it raised."""
    with pytest.raises(Exception) as raised:
        call()
    assert answer.over.wait(15)
    assert answer.hung_up, f"the server sent all {answer.sent} bytes: the client did not hang up before the end"
    return raised.value


def get(url: str, session: requests.Session | None = None, **kwargs: object):
    return request(session or guard_session(), "GET", url, seconds=DEADLINE_S,
                   max_bytes=kwargs.pop("max_bytes", 1 << 20), **kwargs)  # type: ignore[arg-type]


def test_a_trickled_head_ends_at_the_deadline(serve) -> None:
    answer = Trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"x" * 70 + b"\r\n\r\nok")

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        answer.send(conn, stop)

    server = serve(handler)
    raised = gives_up_midway(lambda: get(f"http://127.0.0.1:{server.port}/"), answer)
    assert isinstance(raised, DeadlineExceeded) and isinstance(raised, TimeoutError)
    assert str(raised) == f"no complete answer within {DEADLINE_S:g} s"


def test_a_trickled_body_without_a_length_is_not_taken_for_a_short_answer(serve) -> None:
    """Read-until-close: a connection cut at the deadline must not look like the end of the answer."""
    answer = Trickle(b"y" * 100)

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        answer.send(conn, stop)

    server = serve(handler)
    assert isinstance(gives_up_midway(lambda: get(f"http://127.0.0.1:{server.port}/"), answer), DeadlineExceeded)


def test_a_trickled_tls_handshake_ends_at_the_deadline(serve) -> None:
    """Before any HTTP: a 'server hello' that arrives a byte at a time."""
    answer = Trickle(b"\x16\x03\x03\x40\x00" + b"\x02" * 95)  # the start of a handshake record of 16 KiB

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(65536)  # the client hello
        answer.send(conn, stop)

    server = serve(handler)
    raised = gives_up_midway(lambda: get(f"https://127.0.0.1:{server.port}/"), answer)
    assert isinstance(raised, DeadlineExceeded)


def test_a_server_that_never_reads_the_request_ends_at_the_deadline(serve) -> None:
    """A big upload to a server that reads only the head: sending blocks, then the deadline ends it."""
    body = b"z" * (32 * 1024 * 1024)
    client_gave_up = threading.Event()
    server_gave_up: list[bool] = []

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.recv(100)
        # It holds the upload, unread, until the client gives up; after 10 s it gives up itself,
        # so a client without a deadline fails here instead of hanging.
        server_gave_up.append(not client_gave_up.wait(10))

    server = serve(handler)
    with pytest.raises(Exception) as raised:
        request(guard_session(), "POST", f"http://127.0.0.1:{server.port}/", seconds=DEADLINE_S, max_bytes=1024,
                data=body)
    client_gave_up.set()
    assert isinstance(raised.value, DeadlineExceeded)
    assert wait_until(lambda: bool(server_gave_up))
    assert server_gave_up == [False]  # the client gave up first, while its upload was still stuck


def test_an_answer_larger_than_allowed_is_cut_off(serve) -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"a" * 10_000_000)

    server = serve(handler)
    with pytest.raises(AnswerTooLarge):
        get(f"http://127.0.0.1:{server.port}/", max_bytes=100_000)


def test_kept_alive_connections_are_reused_and_a_cut_one_is_replaced(serve) -> None:
    answers = iter([b"ok", None, b"ok", b"ok"])  # None: trickle the second answer past the deadline
    slow = Trickle(b"ok", pause_s=DEADLINE_S * 2)

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while read_request(conn):
            answer = next(answers)
            if answer is None:
                conn.sendall(OK_HEAD)
                slow.send(conn, stop)
                return
            conn.sendall(OK_HEAD + answer)

    server = serve(handler)
    session = guard_session()
    url = f"http://127.0.0.1:{server.port}/"
    assert get(url, session).body == b"ok"
    assert isinstance(gives_up_midway(lambda: get(url, session), slow), DeadlineExceeded)
    assert get(url, session).body == b"ok"
    assert get(url, session).body == b"ok"
    assert len(server.peers) == 2  # one connection until the cut, one after it


def test_many_requests_in_a_row_leave_no_descriptors_behind(serve) -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while read_request(conn):
            conn.sendall(OK_HEAD + b"ok")

    server = serve(handler)
    session = guard_session()
    url = f"http://127.0.0.1:{server.port}/"
    get(url, session)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(200):
        assert get(url, session).status == 200
    assert len(os.listdir("/proc/self/fd")) <= before + 2
    assert len(server.peers) == 1


# --- every other failure: a NetworkError (an OSError) in a few words ---------------------------------


def _hang_up(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)


def _cut_short(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)


def _not_http(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + b"\x00\xff" * 100)


def _plain_http(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(65536)  # a TLS client hello, answered as if it were an HTTP request
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize(("handler", "scheme", "said"), [
    (_hang_up, "http", "closed the connection without an answer"),
    (_cut_short, "http", "answer cut off before its end"),
    (_not_http, "http", "answer is not HTTP"),
    (_plain_http, "https", "TLS failed"),
], ids=["hang-up", "cut-short", "not-http", "tls-to-plain-http"])
def test_a_failed_request_says_why_in_a_few_words(serve, handler, scheme: str, said: str) -> None:
    server = serve(handler)
    with pytest.raises(NetworkError) as raised:
        get(f"{scheme}://127.0.0.1:{server.port}/secret-path?token=abc")
    assert isinstance(raised.value, OSError)
    message = str(raised.value)
    assert message.startswith(said)
    assert not any(part in message for part in ("127.0.0.1", str(server.port), "secret-path", "abc", "SSH"))


def test_a_server_nobody_runs_is_a_refused_connection() -> None:
    with pytest.raises(NetworkError, match="^connection refused$"):
        get(f"http://127.0.0.1:{closed_port()}/")
