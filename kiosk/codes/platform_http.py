"""One bounded JSON request to a health-code platform, shared by the code lookup and the family lookup.

One deadline over the whole request, connecting, headers and body (``kiosk.deadline``: requests'
timeout only bounds each wait), a size cap, no redirects (a redirected POST turns into a GET and
loses its body), and every failure turned into a few words that name no URL, token, code or phone
number.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any, Callable

import requests
import urllib3
from pydantic import ValidationError

from kiosk.deadline import AnswerTooLarge, DeadlineExceeded, bounded_request


class PlatformFailure(Exception):
    """The platform could not be asked, or its answer made no sense; the message says why."""


def connection_problem(exc: requests.ConnectionError, timeout_s: float) -> str:
    """A requests connection error's root cause in a few words, without the URL and pool details.

    requests reports a read timeout in the middle of an answer's body as a ConnectionError, so
    timeouts are looked for here too.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError)):
            return "platform closed the connection without an answer"
        if isinstance(current, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
            return f"platform timeout after {timeout_s:g} s"
        if isinstance(current, ssl.SSLCertVerificationError):
            return "platform unreachable (TLS certificate not trusted)"
        if isinstance(current, ssl.SSLError):
            return "platform unreachable (TLS failed)"
        if isinstance(current, ConnectionRefusedError):
            return "platform unreachable (connection refused)"
        if isinstance(current, socket.gaierror):
            return "platform unreachable (host name not resolved)"
        if type(current).__module__ == "builtins" and isinstance(current, OSError) and current.strerror:
            return f"platform unreachable ({current.strerror.lower()})"
        # (``reason`` is an exception on urllib3's errors, but a string on ssl's.)
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        todo.extend(item for item in linked if isinstance(item, BaseException))
    return "platform unreachable"


def shape_problem(exc: ValidationError, statuses: str) -> str:
    """The first thing wrong with an answer, naming the field but never echoing its value.

    ``statuses`` lists the accepted status tags for the message, e.g. "'ok' or 'unknown'".
    """
    first = exc.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return "not JSON"
    if kind == "union_tag_not_found":
        return "status: missing"
    if kind == "union_tag_invalid":  # pydantic's message would quote the value
        return f"status: must be {statuses}"
    # A field's location starts with the status tag that picked the model ("ok", "generated_at").
    where = ".".join(str(part) for part in first["loc"][1:]) or "answer"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    message = first["msg"] if kind != "string_pattern_mismatch" else "holds control characters"
    return f"{where}: {message}{more}"


def post_json(session: requests.Session, url: str, body: dict[str, Any], headers: dict[str, str],
              timeout_s: float, max_bytes: int, clock: Callable[[], float]) -> tuple[int, bytes]:
    """POST ``body``; return (status, answer bytes) for a 200 or a 404, raise PlatformFailure otherwise.

    ``timeout_s`` bounds the whole request (connecting, headers, body); ``session`` should come
    from ``kiosk.deadline.guard_session``.
    """
    try:
        answer = bounded_request(session, "POST", url, seconds=timeout_s, max_bytes=max_bytes, clock=clock,
                                 json=body, headers=headers)
    except DeadlineExceeded:
        raise PlatformFailure(f"platform timeout after {timeout_s:g} s") from None
    except AnswerTooLarge:
        raise PlatformFailure(f"platform answer malformed: larger than {max_bytes} bytes") from None
    except requests.Timeout:
        raise PlatformFailure(f"platform timeout after {timeout_s:g} s") from None
    except requests.ConnectionError as exc:
        raise PlatformFailure(connection_problem(exc, timeout_s)) from None
    except requests.RequestException as exc:
        raise PlatformFailure(f"platform request failed: {type(exc).__name__}") from None
    if answer.status in (401, 403):
        raise PlatformFailure(f"platform rejected the kiosk's token ({answer.status})")
    if answer.status not in (200, 404):
        raise PlatformFailure(f"platform answered {answer.status}")
    return answer.status, answer.body
