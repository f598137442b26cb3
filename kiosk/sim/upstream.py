"""The reference upstream: the issuing platform and the log collector, on one local HTTP server.

Routes (JSON unless said otherwise; tokens are checked only when configured):

    POST /platform/verify        {"code": "..."} -> 200 the platform's record | 404 unknown code
    GET  /platform/sim/people    the simulated population (for scenarios and the demo)
    GET  /platform/sim/code      ?person=ID&minutes_ago=N -> {"code": "..."} as that person's phone showed it
    POST /events                 NDJSON batch (optionally gzip) -> {"accepted": n, "duplicates": m}
    GET  /events                 NDJSON of everything received

The collector side follows docs/upload-protocol.md. A batch is stored whole or not at all, so a
kiosk whose batch was refused can resend it unchanged once the problem is fixed.
"""

from __future__ import annotations

import hmac
import json
import logging
import signal
import socket
import tempfile
import threading
import zlib
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kiosk.errors import KioskError
from kiosk.sim.collector import Collector
from kiosk.sim.population import Population

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # on the wire, and again after gunzip
MAX_VERIFY_BODY_BYTES = 64 * 1024
NDJSON = "application/x-ndjson"


class ServeError(KioskError):
    """The reference upstream cannot listen (port taken, bad address)."""


class _Reply(Exception):
    """Ends a request early with this status and JSON payload."""

    def __init__(self, status: int, payload: Any, close: bool = False):
        self.status = status
        self.payload = payload
        self.close = close


class _Server(ThreadingHTTPServer):
    """Remembers its open connections, so that stopping really cuts kiosks off (keep-alive included)."""

    upstream: "ReferenceUpstream"

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]):
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

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
        ("GET", "/platform/sim/people"): "_people",
        ("GET", "/platform/sim/code"): "_code",
        ("POST", "/events"): "_post_events",
        ("GET", "/events"): "_get_events",
    }

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        name = self._ROUTES.get((method, url.path))
        self._body_consumed = False
        try:
            if name is None:
                if any(path == url.path for _, path in self._ROUTES):
                    raise _Reply(405, {"error": f"{method} not allowed on {url.path}"})
                raise _Reply(404, {"error": f"no route {url.path}"})
            status, body, content_type = getattr(self, name)(parse_qs(url.query))
        except _Reply as reply:
            if reply.close:
                self.close_connection = True
            status, body, content_type = reply.status, _json(reply.payload), "application/json"
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
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

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

    # --- collector -----------------------------------------------------------------------------

    def _post_events(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        self._check_token(self.server.upstream.collector_token, {"error": "wrong or missing token"})
        body = self._read_body(MAX_BODY_BYTES)
        events = parse_ndjson(body)
        accepted, duplicates = self.server.upstream.collector.receive(events)
        logger.debug("received %d events (%d duplicates)", accepted, duplicates)
        return 200, _json({"accepted": accepted, "duplicates": duplicates}), "application/json"

    def _get_events(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        self._check_token(self.server.upstream.collector_token, {"error": "wrong or missing token"})
        events = self.server.upstream.collector.events()
        body = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events)
        return 200, body.encode("utf-8"), NDJSON


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def parse_ndjson(body: bytes) -> list[dict[str, Any]]:
    """Every line of a batch as an event, or a 400 naming the first bad line (blank lines are skipped)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reply(400, {"error": f"body is not UTF-8 (byte {exc.start})"}) from None
    events: list[dict[str, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise _Reply(400, {"error": f"line {number}: not JSON ({getattr(exc, 'msg', exc)})"}) from None
        if not isinstance(item, dict):
            raise _Reply(400, {"error": f"line {number}: not a JSON object"})
        for key in ("id", "time"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise _Reply(400, {"error": f'line {number}: no string "{key}"'})
        events.append(item)
    return events


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
    ):
        """``data_dir`` holds the collector's database (a temporary folder when None, removed by
        ``close()``); ``population`` defaults to a fresh ``kiosk.sim.population.Population``
        (pass one built with an injected clock to control the platform's time)."""
        self.host = host
        self.platform_token = platform_token
        self.collector_token = collector_token
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kiosk-upstream-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.population = population if population is not None else Population()
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
            server = _Server((self.host, port), _Handler)
        except OSError as exc:
            raise ServeError(f"cannot listen on {self.host}:{port}: {exc.strerror or exc}") from None
        server.upstream = self
        return server

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ReferenceUpstream":
        """Serve in a background thread; after ``stop()`` this listens again on the same port."""
        if self._thread is not None:
            return self
        if self._server is None:
            self._server = self._bind(self.port)
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
) -> int:
    """Run the reference upstream in the foreground until Ctrl-C or SIGTERM; returns the exit status."""
    upstream = ReferenceUpstream(host, port, data_dir, platform_token, collector_token)
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
