"""The upstream HTTP API as the kiosk sees it: POST a batch of events to the collector.

The wire format is described in docs/upload-protocol.md. One call is one request: retrying is the
uploader's job, and it is safe because the collector ignores event ids it already has. The request
is ``kiosk.http.request``: one deadline of ``upstream.timeout_s`` over the whole of it, sending the
batch and reading the answer included, and an answer of at most ``MAX_ANSWER_BYTES``, cut off while
it arrives. HTTPS certificates are always verified (against ``upstream.ca_bundle`` when set). The
bearer token goes only into the Authorization header: it is never logged and never part of an error.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from kiosk.config import UpstreamSection
from kiosk.errors import UploadError
from kiosk.events import Event
from kiosk.http import NetworkError, guard_session, request
from kiosk.sync.retry import parse_retry_after
from kiosk.sync.store import batch_key

logger = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# gzip level 6: most of level 9's gain for a fraction of its time.
GZIP_LEVEL = 6
# The collector's answer is a receipt, or an error naming refused events (at most one per event of
# a batch of upstream.batch_size <= 5000): 2 MiB is ample; anything larger is not an answer.
MAX_ANSWER_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Rejection:
    """One event the collector refused by name: its line in the batch (1-based) and/or id, and why."""

    line: int | None
    id: str | None
    reason: str


@dataclass(frozen=True)
class Receipt:
    """The collector's 2xx answer: how many events were new and how many it already had."""

    status: int
    accepted: int | None = None
    duplicates: int | None = None


def encode_batch(events: list[Event]) -> bytes:
    """The NDJSON body: one event's JSON per line, each line ending in a newline."""
    return "".join(event.to_json() + "\n" for event in events).encode("utf-8")


def _answer_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _rejections(data: Any) -> tuple[Rejection, ...]:
    """The collector's list of refused events, {"rejected": [{"line": 3, "id": "...", "reason": "..."}]}."""
    if not isinstance(data, dict) or not isinstance(data.get("rejected"), list):
        return ()
    found = []
    for item in data["rejected"][:10_000]:
        if not isinstance(item, dict):
            continue
        line = item.get("line") if isinstance(item.get("line"), int) else None
        event_id = item.get("id") if isinstance(item.get("id"), str) else None
        said = item.get("reason")
        reason = said if isinstance(said, str) else "refused by the collector"
        if line is not None or event_id is not None:
            found.append(Rejection(line, event_id, reason[:200]))
    return tuple(found)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UpstreamClient:
    """Sends event batches to ``{upstream.url}/events``."""

    def __init__(self, section: UpstreamSection, session: requests.Session | None = None,
                 utcnow: Callable[[], datetime] = _utcnow):
        self._section = section
        self._session = guard_session(session)
        self._utcnow = utcnow
        self.url = section.url.rstrip("/") + "/events"
        self._ca_problem: str | None = None
        # Passed with every request (the session ignores REQUESTS_CA_BUNDLE: ``guard_session``).
        self._verify: str | bool = True
        if section.ca_bundle:
            bundle = Path(section.ca_bundle)
            if bundle.is_file():
                self._verify = str(bundle)
            else:
                # Uploads fail with this reason (shown in `kiosk status`); the kiosk keeps serving
                # and keeps its events until the file is there.
                self._ca_problem = f"upstream.ca_bundle {bundle}: no such file"
        if section.url.startswith("http://") and section.token.get_secret_value():
            logger.warning("upstream.token is sent over plain HTTP to %s; use https://", section.url.split("@")[-1])

    def post_batch(self, body: bytes, key: str) -> Receipt:
        """POST one NDJSON batch (uncompressed ``body``) with its idempotency key.

        Returns the collector's receipt on 2xx; raises UploadError otherwise.
        """
        if self._ca_problem:
            raise UploadError(self._ca_problem)
        headers = {"Content-Type": NDJSON, IDEMPOTENCY_HEADER: key}
        if self._section.gzip:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        token = self._section.token.get_secret_value()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            answer = request(self._session, "POST", self.url, seconds=self._section.timeout_s,
                             max_bytes=MAX_ANSWER_BYTES, data=body, headers=headers, verify=self._verify)
        except NetworkError as exc:
            raise UploadError(f"collector: {exc}") from None
        data = _answer_json(answer.body)
        if 200 <= answer.status < 300:
            logger.debug("sent batch %s (%d bytes) to %s", key, len(body), self.url)
            if isinstance(data, dict):
                accepted, duplicates = data.get("accepted"), data.get("duplicates")
                return Receipt(answer.status,
                               accepted if isinstance(accepted, int) else None,
                               duplicates if isinstance(duplicates, int) else None)
            return Receipt(answer.status)
        reason = data["error"][:160] if isinstance(data, dict) and isinstance(data.get("error"), str) else ""
        cause = f"collector answered {answer.status}" + (f": {reason}" if reason else "")
        retry_after = None
        if answer.status in (429, 503):
            retry_after = parse_retry_after(answer.headers.get("Retry-After"), self._utcnow())
        raise UploadError(cause, status=answer.status, retry_after_s=retry_after, rejected=_rejections(data))

    def post_events(self, events: list[Event]) -> Receipt | None:
        """POST these events as one batch (None when there are none)."""
        if not events:
            return None
        return self.post_batch(encode_batch(events), batch_key([event.id for event in events]))

    def close(self) -> None:
        self._session.close()
