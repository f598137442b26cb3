"""The kiosk's one way to make an HTTP request to a server it does not control.

The platform lookups (``kiosk.codes.platform``, ``kiosk.codes.family``), the trust list download
(``kiosk.codes.trustlist``) and the upload (``kiosk.sync.client``) all go through ``request``:

- one deadline over the whole request, connecting, sending, headers and body (``kiosk.deadline``:
  requests' own timeout only bounds each single wait);
- the answer's body streamed and cut off at ``max_bytes`` (after any gzip decoding), so nothing a
  server sends can make the kiosk hold more than that;
- redirects never followed (a redirected POST turns into a GET and loses its body);
- every failure raised as a ``NetworkError`` whose message is a few words from ``describe``,
  naming no URL, token, code or phone number, and never quoting what the server sent.

Callers get an ``Answer`` for any HTTP status, and judge the status themselves.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
import requests.structures
import urllib3

from kiosk.deadline import Deadline, DeadlineAdapter
from kiosk.errors import AnswerTooLarge, DeadlineExceeded, NetworkError

__all__ = ["Answer", "AnswerTooLarge", "DeadlineExceeded", "NetworkError", "describe", "guard_session", "request"]

# Read size while streaming an answer: small enough that the size cap and the deadline are checked
# often, large enough that a big answer is not read a few bytes at a time.
CHUNK_BYTES = 16 * 1024

# What requests, urllib3 and http.client raise for trouble on the wire or in the answer. Anything
# else (a TypeError from a wrong argument) is a bug and is left to surface as one.
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                     OSError, ValueError)


def guard_session(session: requests.Session | None = None) -> requests.Session:
    """``session`` (or a new one) with deadline-aware adapters for http:// and https://.

    The environment is not consulted: no HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (which would send
    a lookup, and a token meant for a plain-http platform on this device, to another host), no
    ~/.netrc (whose password would replace the bearer token) and no REQUESTS_CA_BUNDLE. The
    kiosk talks to the URLs in its config and nothing else.
    """
    session = session if session is not None else requests.Session()
    session.trust_env = False
    session.mount("http://", DeadlineAdapter())
    session.mount("https://", DeadlineAdapter())
    return session


@dataclass(frozen=True)
class Answer:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes


def request(session: requests.Session, method: str, url: str, *, seconds: float, max_bytes: int,
            **kwargs: Any) -> Answer:
    """One request that completes within ``seconds``, answer and all, or raises NetworkError.

    DeadlineExceeded (a TimeoutError) when the deadline passes, AnswerTooLarge when the body is
    larger than ``max_bytes``, a plain NetworkError saying why for any other failure. ``session``
    should come from ``guard_session``; with another, only the socket timeouts and the checks
    between chunks of the body bound the time. ``kwargs`` go to ``requests.Session.request``.
    """
    with Deadline(seconds) as deadline:
        try:
            with session.request(method, url, timeout=deadline.timeouts(), stream=True, allow_redirects=False,
                                 **kwargs) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise AnswerTooLarge(max_bytes)
                    chunks.append(chunk)
                    if deadline.passed:
                        raise DeadlineExceeded(seconds)
                status, headers = response.status_code, response.headers
        except NetworkError:
            raise
        except _TRANSPORT_ERRORS as exc:
            if deadline.passed:
                raise DeadlineExceeded(seconds) from None
            raise NetworkError(describe(exc)) from None
        # A cut connection can look like the end of an answer sent without a Content-Length.
        if deadline.passed:
            raise DeadlineExceeded(seconds)
    return Answer(status, headers, b"".join(chunks))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (cause, context, arguments, urllib3's ``reason``), outermost first."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # (``reason`` is an exception on urllib3's errors, but a string on ssl's.)
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        todo.extend(item for item in linked if isinstance(item, BaseException))


def describe(exc: BaseException) -> str:
    """Why a request failed, in a few words for a log line or ``kiosk status``.

    requests nests the root cause a few levels deep (and reports, for one, a read timeout in the
    middle of a body as a ConnectionError); the root cause is looked for, most telling kind first.
    The words never include the URL, a header or anything the server sent.
    """
    causes = list(_causes(exc))

    def first(*kinds: type[BaseException]) -> BaseException | None:
        return next((cause for cause in causes if isinstance(cause, kinds)), None)

    if (own := first(NetworkError)) is not None:
        return str(own)
    if isinstance(tls := first(ssl.SSLCertVerificationError), ssl.SSLCertVerificationError):
        detail = tls.verify_message if isinstance(tls.verify_message, str) and tls.verify_message else ""
        return "TLS certificate not trusted" + (f" ({detail})" if detail else "")
    if isinstance(tls_failed := first(ssl.SSLError), ssl.SSLError):
        reason = tls_failed.reason if isinstance(tls_failed.reason, str) else ""
        return "TLS failed" + (f" ({reason.lower().replace('_', ' ')})" if reason else "")
    if first(ConnectionRefusedError) is not None:
        return "connection refused"
    if first(socket.gaierror) is not None:
        return "host name not resolved"
    if first(TimeoutError, urllib3.exceptions.TimeoutError, requests.Timeout) is not None:
        return "timed out"
    # (RemoteDisconnected is a kind of BadStatusLine: checked before the "not HTTP" kinds.)
    if first(http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError) is not None:
        return "closed the connection without an answer"
    if first(http.client.IncompleteRead, urllib3.exceptions.IncompleteRead, urllib3.exceptions.InvalidChunkLength,
             requests.exceptions.ChunkedEncodingError) is not None:
        return "answer cut off before its end"
    if first(requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError) is not None:
        return "answer cannot be decoded (Content-Encoding)"
    if first(http.client.HTTPException, requests.exceptions.InvalidHeader) is not None:
        return "answer is not HTTP"
    plain = next((cause for cause in causes if type(cause).__module__ == "builtins" and isinstance(cause, OSError)
                  and cause.strerror), None)
    if isinstance(plain, OSError) and plain.strerror:
        return plain.strerror.lower()
    return f"request failed ({type(exc).__name__})"
