"""The upstream HTTP API as the kiosk sees it: POST a batch of events to the collector.

The wire format is described in docs/upload-protocol.md. One call is one request: retrying is the
uploader's job, and it is safe because the collector ignores event ids it already has.
"""

from __future__ import annotations

import gzip
import logging
import re

import requests

from kiosk.config import UpstreamSection
from kiosk.errors import KioskError
from kiosk.events import Event

logger = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"


class UploadError(KioskError):
    """A batch did not reach the collector; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, cause: str, status: int | None = None):
        self.cause = cause
        self.status = status
        super().__init__(cause)


def encode_batch(events: list[Event]) -> bytes:
    """The NDJSON body: one event's JSON per line, each line ending in a newline."""
    return "".join(event.to_json() + "\n" for event in events).encode("utf-8")


def _network_cause(exc: requests.RequestException, timeout_s: float) -> str:
    """A one-line reason instead of urllib3's nested repr (which repeats the whole URL twice)."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout_s:g} s"
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    return type(exc).__name__


def _answer_reason(response: requests.Response) -> str:
    """The collector's own short reason, if it sent one as {"error": "..."}."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"][:120]
    return ""


class UpstreamClient:
    """Sends event batches to ``{upstream.url}/events``."""

    def __init__(self, section: UpstreamSection, session: requests.Session | None = None):
        self._section = section
        self._session = session if session is not None else requests.Session()
        self.url = section.url.rstrip("/") + "/events"

    def post_events(self, events: list[Event]) -> None:
        """POST one batch; returns when the collector answered 2xx, raises UploadError otherwise."""
        if not events:
            return
        body = encode_batch(events)
        headers = {"Content-Type": NDJSON}
        if self._section.gzip:
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        token = self._section.token.get_secret_value()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._session.post(self.url, data=body, headers=headers, timeout=self._section.timeout_s)
        except requests.RequestException as exc:
            raise UploadError(f"collector unreachable: {_network_cause(exc, self._section.timeout_s)}") from None
        with response:
            if 200 <= response.status_code < 300:
                logger.debug("sent %d events (%d bytes) to %s", len(events), len(body), self.url)
                return
            reason = _answer_reason(response)
            cause = f"collector answered {response.status_code}" + (f": {reason}" if reason else "")
            raise UploadError(cause, status=response.status_code)

    def close(self) -> None:
        self._session.close()
