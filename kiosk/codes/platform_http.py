"""One bounded JSON request to a health-code platform, shared by the code lookup and the family lookup.

The request itself is ``kiosk.http.request``: one deadline over the whole of it, a size cap, no
redirects, and every network failure in a few words that name no URL, token, code or phone number.
Here: the token's refusal and unexpected statuses, and what is wrong with an answer's shape.
"""

from __future__ import annotations

from typing import Any

import requests
from pydantic import ValidationError

from kiosk.errors import PlatformFailure
from kiosk.http import NetworkError, request

__all__ = ["PlatformFailure", "post_json", "shape_problem"]


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
              timeout_s: float, max_bytes: int) -> tuple[int, bytes]:
    """POST ``body``; return (status, answer bytes) for a 200 or a 404, raise PlatformFailure otherwise.

    ``timeout_s`` bounds the whole request (connecting, headers, body); ``session`` should come
    from ``kiosk.http.guard_session``.
    """
    try:
        answer = request(session, "POST", url, seconds=timeout_s, max_bytes=max_bytes, json=body, headers=headers)
    except NetworkError as exc:
        raise PlatformFailure(f"platform: {exc}") from None
    if answer.status in (401, 403):
        raise PlatformFailure(f"platform rejected the kiosk's token ({answer.status})")
    if answer.status not in (200, 404):
        raise PlatformFailure(f"platform answered {answer.status}")
    return answer.status, answer.body
