"""The event record: what is logged for every decision and sent upstream.

It holds no personal data: the code appears only as a keyed hash, and no name is kept.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a trailing Z."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    time: str
    kiosk_id: str
    site_id: str
    decision: str
    reasons: tuple[str, ...]
    temperature_c: float | None
    code_colour: str | None
    code_hash: str | None
    code_scheme: str | None = None
    proxy: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Event":
        values = dict(data)
        values["reasons"] = tuple(values.get("reasons", ()))
        return cls(**values)
