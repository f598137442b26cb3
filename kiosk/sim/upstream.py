"""The reference upstream: the issuing platform and the log collector, on one local HTTP server.

Routes (JSON unless said otherwise; tokens are checked only when configured):

    POST /platform/verify        {"code": "..."} -> 200 the platform's record | 404 unknown code
    POST /platform/family        {"phone": "<digits>"} -> 200 {"status": "ok", "members": [{"code", "holder"}]}
                                 | 404 {"status": "unknown"}: the proxy codes linked to that phone's owner
    GET  /platform/sim/people    the simulated population (for scenarios and the demo)
    GET  /platform/sim/code      ?person=ID&minutes_ago=N -> {"code": "..."} as that person's phone showed it
    GET  /trust/list             the trust list signed with the demo operator key (ETag; 304 if unchanged)
    POST /events                 NDJSON batch (optionally gzip) -> {"accepted": n, "duplicates": m}
                                 | 422 {"error": ..., "rejected": [{"line", "id", "reason"}, ...]}
    GET  /events                 NDJSON of everything received

The collector side follows docs/upload-protocol.md. A batch is stored whole or not at all, so a
kiosk whose batch was refused can resend it (without the events named as bad). A batch's
``Idempotency-Key`` is remembered: the same batch again gets the same answer.

Given a certificate and key it serves HTTPS. For tests, ``inject()`` queues faults that the next
requests suffer: on POST /events an error status, a stall, a dropped connection, an answer whose
body never comes, a server that stores the batch and dies; on every route (events, the platform's
verify and family lookups, the trust list) an answer that trickles in a byte at a time; and on the
platform and trust list routes an answer replaced by given bytes (a hostile or hand-signed list).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import signal
import socket
import ssl
import struct
import tempfile
import threading
import zlib
from collections import Counter, deque
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from kiosk.codes.trustlist import MEDIA_TYPE
from kiosk.errors import KioskError
from kiosk.sim.collector import Collector
from kiosk.sim.credentials import DemoCredentials
from kiosk.sim.population import Population

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # on the wire, and again after gunzip
MAX_VERIFY_BODY_BYTES = 64 * 1024
NDJSON = "application/x-ndjson"
# The trust list is signed again (a new issued_at, a new ETag) once the served one is this old.
TRUST_LIST_RESIGN = timedelta(hours=1)


class ServeError(KioskError, OSError):
    """The reference upstream cannot listen (port taken, bad address): an OSError, as binding is."""


class _Reply(Exception):
    """Ends a request early with this status and JSON payload."""

    def __init__(self, status: int, payload: Any, close: bool = False, headers: dict[str, str] | None = None):
        self.status = status
        self.payload = payload
        self.close = close
        self.headers = headers or {}


class _Hangup(Exception):
    """Ends a request without any answer (a fault); ``reset`` sends a TCP reset instead of a close."""

    def __init__(self, reset: bool = False):
        self.reset = reset


FaultKind = Literal["status", "stall", "drop", "no_body", "accept_then_die", "trickle", "trickle_head", "answer"]
FaultRoute = Literal["events", "verify", "family", "trust"]
_TRICKLES = ("trickle", "trickle_head")


@dataclass(frozen=True)
class Fault:
    """What the next request to ``route`` suffers (for tests).

    On ``events`` (POST /events, the default):

    - ``status``: answer ``status`` (500, 503, 429, 401 ...) with ``retry_after`` as Retry-After;
      nothing is stored;
    - ``stall``: read the batch, then say nothing for ``seconds`` and hang up; nothing is stored;
    - ``drop``: read half the batch, then reset the connection; nothing is stored;
    - ``no_body``: store the batch, send "200" and its headers, then never the body (hang up
      after ``seconds``);
    - ``accept_then_die``: store the batch, then hang up without answering and stop the server.

    On every route (``events``, ``verify``, ``family``, ``trust``):

    - ``trickle``: do the request as usual, send the status and headers (with the Content-Length)
      at once, then the body one byte every ``seconds``;
    - ``trickle_head``: the same, but the status line and headers trickle too.

    On ``verify``, ``family`` and ``trust``:

    - ``answer``: answer 200 with ``body`` instead (``status`` is ignored).
    """

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    route: FaultRoute = "events"
    body: bytes = b""


class _Server(ThreadingHTTPServer):
    """Remembers its open connections, so that stopping really cuts kiosks off (keep-alive included)."""

    upstream: "ReferenceUpstream"

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None = None):
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.tls = tls
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        connection, address = self.socket.accept()
        if self.tls is not None:
            # The handshake happens on the request's own thread (first read), so a slow or
            # plain-HTTP client cannot hold up the accepting loop.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Route errors are answered in _dispatch; what gets here is a client that went away or
        # failed the TLS handshake.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "kiosk-reference-upstream/1"
    # Keep-alive, like a production server: the kiosk's sessions reuse their connection per lookup.
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle or stalled client must not hold a thread forever
    # Headers and body go out in two writes; with Nagle on, a kept-alive connection then waits
    # for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    _body_consumed = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    _ROUTES: dict[tuple[str, str], str] = {
        ("POST", "/platform/verify"): "_verify",
        ("POST", "/platform/family"): "_family",
        ("GET", "/platform/sim/people"): "_people",
        ("GET", "/platform/sim/code"): "_code",
        ("POST", "/events"): "_post_events",
        ("GET", "/events"): "_get_events",
        ("GET", "/trust/list"): "_trust_list",
    }

    # The routes whose faults are taken before the route runs (POST /events takes its own).
    _FAULT_ROUTES: dict[str, FaultRoute] = {"_verify": "verify", "_family": "family", "_trust_list": "trust"}

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        name = self._ROUTES.get((method, url.path))
        self._body_consumed = False
        self._extra_headers: dict[str, str] = {}
        self._fault: Fault | None = None
        try:
            if name is None:
                if any(path == url.path for _, path in self._ROUTES):
                    raise _Reply(405, {"error": f"{method} not allowed on {url.path}"})
                raise _Reply(404, {"error": f"no route {url.path}"})
            if name in self._FAULT_ROUTES:
                self._fault = self.server.upstream.take_fault(self._FAULT_ROUTES[name])
            if self._fault is not None and self._fault.kind == "answer":
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._body_consumed = True
                status, body, content_type = 200, self._fault.body, "application/octet-stream"
            else:
                status, body, content_type = getattr(self, name)(parse_qs(url.query))
        except _Reply as reply:
            if reply.close:
                self.close_connection = True
            status, body, content_type = reply.status, _json(reply.payload), "application/json"
            self._extra_headers.update(reply.headers)
        except _Hangup as hangup:
            self._hang_up(hangup.reset)
            return
        except Exception:
            logger.exception("reference upstream failed on %s %s", method, url.path)
            status, body, content_type = 500, _json({"error": "internal error"}), "application/json"
        # A body left unread would be parsed as the next request: close the connection instead.
        declared = self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers
        if declared and not self._body_consumed:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for header, value in self._extra_headers.items():
            self.send_header(header, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if self._fault is not None and self._fault.kind in _TRICKLES:
            self._trickle(body, self._fault)
            return
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, body: bytes, fault: Fault) -> None:
        """Send the answer one byte every ``fault.seconds`` (its head too for "trickle_head"),
        until it is all sent (counted in ``stats["trickled"]``), the client hangs up or the server stops."""
        self.close_connection = True
        # The status line and headers, as end_headers would send them (taken from the buffer).
        head = b"".join(vars(self).pop("_headers_buffer", [])) + b"\r\n"
        closing = self.server.upstream.closing
        try:
            if fault.kind == "trickle":
                self.wfile.write(head)
                head = b""
            for byte in head + body:
                if closing.wait(fault.seconds):
                    return
                self.wfile.write(bytes([byte]))
        except OSError:
            return  # the client gave up: that is what is being tested
        self.server.upstream.count("trickled")

    def _hang_up(self, reset: bool) -> None:
        """Drop the connection with no answer: a reset, or a plain close."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- helpers -------------------------------------------------------------------------------

    def _check_token(self, expected: str, refusal: dict[str, str]) -> None:
        if not expected:
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            raise _Reply(401, refusal)

    def _read_body(self, limit: int) -> bytes:
        """The request body, decoded from gzip if so labelled, refusing anything over ``limit``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _Reply(411, {"error": "send a Content-Length, not a chunked body"}, close=True)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise _Reply(411, {"error": "Content-Length required"}, close=True)
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            raise _Reply(400, {"error": f"bad Content-Length {length_text!r}"}, close=True) from None
        if length > limit:
            raise _Reply(413, {"error": f"body of {length} bytes is over the {limit}-byte limit"}, close=True)
        raw = self.rfile.read(length)
        self._body_consumed = True
        if len(raw) != length:
            raise _Reply(400, {"error": "body shorter than its Content-Length"}, close=True)
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding != "gzip":
            raise _Reply(415, {"error": f"unsupported Content-Encoding {encoding!r} (use gzip or none)"})
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
        try:
            data = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise _Reply(400, {"error": f"body is not valid gzip ({exc})"}) from None
        if len(data) > limit:
            raise _Reply(413, {"error": f"body inflates to over the {limit}-byte limit"})
        if not inflater.eof:
            raise _Reply(400, {"error": "gzip body is truncated"})
        return data

    # --- platform ------------------------------------------------------------------------------

    def _population(self) -> Population:
        self._check_token(self.server.upstream.platform_token, {"status": "unauthorized"})
        return self.server.upstream.population

    def _verify(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        population = self._population()
        body = self._read_body(MAX_VERIFY_BODY_BYTES)
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _Reply(400, {"status": "bad_request", "error": "body is not JSON"}) from None
        if not isinstance(request, dict) or not isinstance(request.get("code"), str):
            raise _Reply(400, {"status": "bad_request", "error": 'expected {"code": "<string>"}'})
        record = population.lookup(request["code"])
        if record is None:
            return 404, _json({"status": "unknown"}), "application/json"
        return 200, _json(record), "application/json"

    def _family(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        # Counted as it arrives, so tests can tell how many lookups reached the platform.
        self.server.upstream.count("family")
        population = self._population()
        body = self._read_body(MAX_VERIFY_BODY_BYTES)
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _Reply(400, {"status": "bad_request", "error": "body is not JSON"}) from None
        phone = request.get("phone") if isinstance(request, dict) else None
        if not isinstance(phone, str) or not phone.isascii() or not phone.isdigit() or not 4 <= len(phone) <= 15:
            raise _Reply(400, {"status": "bad_request", "error": 'expected {"phone": "<4 to 15 digits>"}'})
        members = population.family(phone)
        if not members:
            return 404, _json({"status": "unknown"}), "application/json"
        return 200, _json({"status": "ok", "members": members}), "application/json"

    def _people(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        return 200, _json(self._population().describe_people()), "application/json"

    def _code(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        population = self._population()
        person = query.get("person", [""])[0]
        if not person:
            raise _Reply(400, {"error": "person=ID required"})
        minutes_text = query.get("minutes_ago", ["0"])[0]
        try:
            minutes = float(minutes_text)
            if not 0 <= minutes <= 7 * 24 * 60:
                raise ValueError
        except ValueError:
            raise _Reply(400, {"error": f"minutes_ago must be 0..10080, got {minutes_text!r}"}) from None
        at = population.now() - timedelta(minutes=minutes) if minutes else None
        try:
            code = population.code_for(person, at)
        except LookupError:
            raise _Reply(404, {"error": f"unknown person {person!r}"}) from None
        return 200, _json({"code": code}), "application/json"

    # --- trust list ----------------------------------------------------------------------------

    def _trust_list(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        body, etag = self.server.upstream.trust_list()
        self._extra_headers["ETag"] = etag
        if etag in [tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")]:
            return 304, b"", MEDIA_TYPE
        return 200, body, MEDIA_TYPE

    # --- collector -----------------------------------------------------------------------------

    def _post_events(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        upstream = self.server.upstream
        fault = upstream.take_fault("events")
        if fault is not None and fault.kind in _TRICKLES:
            self._fault, fault = fault, None  # the batch is handled as usual; its answer trickles
        if fault is not None and fault.kind == "status":
            self._read_body(MAX_BODY_BYTES)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            raise _Reply(fault.status, {"error": f"injected fault {fault.status}"}, headers=headers)
        if fault is not None and fault.kind == "drop":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length // 2)
            raise _Hangup(reset=True)
        self._check_token(upstream.collector_token, {"error": "wrong or missing token"})
        body = self._read_body(MAX_BODY_BYTES)
        if fault is not None and fault.kind == "stall":
            upstream.closing.wait(fault.seconds)
            raise _Hangup()
        key = self.headers.get("Idempotency-Key", "").strip()[:128] or None
        answer = upstream.collector.answer_for(key) if key else None
        if answer is not None:
            logger.debug("batch %s seen before: answered again", key)
            upstream.count("replayed")
            return 200, _json({**answer, "replayed": True}), "application/json"
        events, rejected = parse_ndjson(body)
        if rejected:
            first = rejected[0]
            upstream.count("refused")
            raise _Reply(422, {
                "error": f"{len(rejected)} event(s) refused, line {first['line']}: {first['reason']}",
                "rejected": rejected,
            })
        accepted, duplicates = upstream.collector.receive(events, key)
        upstream.count("stored")
        logger.debug("received %d events (%d duplicates)", accepted, duplicates)
        payload = _json({"accepted": accepted, "duplicates": duplicates})
        if fault is not None and fault.kind == "no_body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.flush()
            upstream.closing.wait(fault.seconds)
            raise _Hangup()
        if fault is not None and fault.kind == "accept_then_die":
            threading.Thread(target=upstream.stop, name="upstream-dies", daemon=True).start()
            raise _Hangup()
        return 200, payload, "application/json"

    def _get_events(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        self._check_token(self.server.upstream.collector_token, {"error": "wrong or missing token"})
        events = self.server.upstream.collector.events()
        body = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events)
        return 200, body.encode("utf-8"), NDJSON


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _line_problem(item: Any) -> str | None:
    """Why one decoded line is not an acceptable event, or None."""
    if not isinstance(item, dict):
        return "not a JSON object"
    for key in ("id", "time"):
        if not isinstance(item.get(key), str) or not item[key]:
            return f'no string "{key}"'
    if item.get("kind", "decision") == "decision" and item.get("decision", "PASS") not in ("PASS", "REFUSE"):
        return f'decision must be "PASS" or "REFUSE", got {item["decision"]!r}'[:160]
    return None


def parse_ndjson(body: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events of a batch, and the lines refused with their reason (blank lines are skipped).

    Each refusal names its line (1-based) and, when readable, the event's id, so a kiosk can set
    those events aside and send the rest.
    """
    events: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            rejected.append({"line": number, "id": None, "reason": f"not UTF-8 (byte {exc.start})"})
            continue
        except ValueError as exc:
            rejected.append({"line": number, "id": None, "reason": f"not JSON ({getattr(exc, 'msg', exc)})"})
            continue
        problem = _line_problem(item)
        if problem:
            event_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
            rejected.append({"line": number, "id": event_id, "reason": problem})
            continue
        events.append(item)
    return events, rejected


class ReferenceUpstream:
    """The platform and collector on one ThreadingHTTPServer; binds in the constructor, so ``url`` is known."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | str | None = None,
        platform_token: str = "",
        collector_token: str = "",
        *,
        population: Population | None = None,
        credentials: DemoCredentials | None = None,
        tls_cert: Path | str | None = None,
        tls_key: Path | str | None = None,
    ):
        """``data_dir`` holds the collector's database (a temporary folder when None, removed by
        ``close()``); ``population`` defaults to a fresh ``kiosk.sim.population.Population``
        (pass one built with an injected clock to control the platform's time). With
        ``tls_cert`` (PEM, and ``tls_key`` unless the key is in the same file) it serves HTTPS."""
        self.host = host
        self.platform_token = platform_token
        self.collector_token = collector_token
        self.closing = threading.Event()  # cuts injected stalls short when the server stops
        self._faults: deque[Fault] = deque()
        self._faults_lock = threading.Lock()
        # POST /events outcomes: "stored", "replayed" (idempotency key seen), "refused", "fault";
        # and "family": POST /platform/family requests received.
        self.stats: Counter[str] = Counter()
        self._tls: ssl.SSLContext | None = None
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key is not None else None)
            except (OSError, ssl.SSLError) as exc:
                raise ServeError(f"cannot load the TLS certificate {tls_cert}: {exc}") from None
            self._tls = context
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kiosk-upstream-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.population = population if population is not None else Population()
        self.credentials = credentials if credentials is not None else DemoCredentials()
        self._trust_lock = threading.Lock()
        self._trust: tuple[bytes, str, Any] | None = None
        self.collector = Collector(self.data_dir / "collector.db")
        self._thread: threading.Thread | None = None
        try:
            self._server: _Server | None = self._bind(port)
        except ServeError:
            self.collector.close()
            raise
        self.port: int = self._server.server_address[1]

    def _bind(self, port: int) -> _Server:
        try:
            server = _Server((self.host, port), _Handler, self._tls)
        except OSError as exc:
            raise ServeError(f"cannot listen on {self.host}:{port}: {exc.strerror or exc}") from None
        server.upstream = self
        return server

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def inject(self, *faults: Fault) -> None:
        """Queue faults: each of the next requests to a fault's route suffers one, in order."""
        for fault in faults:
            allowed = {"trickle", "trickle_head"} | ({"answer"} if fault.route != "events" else
                                                     {"status", "stall", "drop", "no_body", "accept_then_die"})
            if fault.kind not in allowed:
                raise ValueError(f"fault {fault.kind!r} cannot be injected on the {fault.route} route")
        with self._faults_lock:
            self._faults.extend(faults)

    def take_fault(self, route: FaultRoute = "events") -> Fault | None:
        """The next fault queued for ``route`` (None if there is none)."""
        with self._faults_lock:
            fault = next((queued for queued in self._faults if queued.route == route), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None:
            self.count("fault")
        return fault

    def count(self, outcome: str) -> None:
        with self._faults_lock:
            self.stats[outcome] += 1

    @property
    def serving(self) -> bool:
        """Whether it listens now (false after stop(), or after an "accept_then_die" fault)."""
        return self._server is not None

    @property
    def pending_faults(self) -> int:
        with self._faults_lock:
            return len(self._faults)

    def trust_list(self) -> tuple[bytes, str]:
        """The signed trust list and its ETag (signed at the platform clock's time, hourly)."""
        now = self.population.now()
        with self._trust_lock:
            if self._trust is None or not timedelta(0) <= now - self._trust[2] < TRUST_LIST_RESIGN:
                body = self.credentials.signed_trust_list(now)
                self._trust = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', now)
            return self._trust[0], self._trust[1]

    def start(self) -> "ReferenceUpstream":
        """Serve in a background thread; after ``stop()`` this listens again on the same port."""
        if self._thread is not None:
            return self
        if self._server is None:
            self._server = self._bind(self.port)
        self.closing.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="reference-upstream", daemon=True
        )
        self._thread.start()
        logger.info("reference upstream serving at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the port (received events stay in ``collector``)."""
        if self._server is None:
            return
        self.closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        self._server.server_close()
        self._server = None

    def close(self) -> None:
        """Stop, and release the collector (and the temporary folder, if any)."""
        self.stop()
        self.collector.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "ReferenceUpstream":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve(
    port: int,
    data_dir: Path | str,
    host: str = "127.0.0.1",
    platform_token: str = "",
    collector_token: str = "",
    tls_cert: Path | str | None = None,
    tls_key: Path | str | None = None,
) -> int:
    """Run the reference upstream in the foreground until Ctrl-C or SIGTERM; returns the exit status."""
    upstream = ReferenceUpstream(host, port, data_dir, platform_token, collector_token,
                                 tls_cert=tls_cert, tls_key=tls_key)
    stopping = threading.Event()
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    except ValueError:  # not the main thread: Ctrl-C / the caller's own handling only
        pass
    upstream.start()
    print(
        f"reference upstream at {upstream.url}  (platform: {upstream.url}/platform, "
        f"collector: {upstream.url}/events, data: {upstream.data_dir})  Ctrl-C to stop",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        upstream.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
