"""One bounded JSON request to a health-code platform, shared by the code lookup and the family lookup.

A hard time limit over the whole answer (requests' timeout only bounds each wait), a size cap, no
redirects (a redirected POST turns into a GET and loses its body), and every failure turned into
a few words that name no URL, token, code or phone number.
"""

from __future__ import annotations

import http.client
import socket
from typing import Any, Callable

import requests
import urllib3
from pydantic import ValidationError


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
        if isinstance(current, ConnectionRefusedError):
            return "platform unreachable (connection refused)"
        if isinstance(current, socket.gaierror):
            return "platform unreachable (host name not resolved)"
        if type(current).__module__ == "builtins" and isinstance(current, OSError) and current.strerror:
            return f"platform unreachable ({current.strerror.lower()})"
        todo.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
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
    """POST ``body``; return (status, answer bytes) for a 200 or a 404, raise PlatformFailure otherwise."""
    deadline = clock() + timeout_s
    try:
        # Streamed, so that the answer's size and its total time can be capped while it arrives.
        response = session.post(url, json=body, headers=headers, timeout=timeout_s, allow_redirects=False,
                                stream=True)
    except requests.Timeout:
        raise PlatformFailure(f"platform timeout after {timeout_s:g} s") from None
    except requests.ConnectionError as exc:
        raise PlatformFailure(connection_problem(exc, timeout_s)) from None
    except requests.RequestException as exc:
        raise PlatformFailure(f"platform request failed: {type(exc).__name__}") from None
    with response:
        status = response.status_code
        if status in (401, 403):
            raise PlatformFailure(f"platform rejected the kiosk's token ({status})")
        if status not in (200, 404):
            raise PlatformFailure(f"platform answered {status}")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=8192):
                size += len(chunk)
                if size > max_bytes:
                    raise PlatformFailure(f"platform answer malformed: larger than {max_bytes} bytes")
                chunks.append(chunk)
                if clock() > deadline:
                    raise PlatformFailure(f"platform timeout after {timeout_s:g} s")
        except requests.ConnectionError as exc:
            raise PlatformFailure(connection_problem(exc, timeout_s)) from None
        except requests.RequestException as exc:
            raise PlatformFailure(f"platform answer cut short: {type(exc).__name__}") from None
    if clock() > deadline:
        raise PlatformFailure(f"platform timeout after {timeout_s:g} s")
    return status, b"".join(chunks)
