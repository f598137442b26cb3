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
    # The temperature behind ``temperature_c`` (all °C): every body estimate taken (two when a
    # raised first reading was measured again), the skin and room readings, the measuring site,
    # and why the thermometer could not be trusted when ``temperature_c`` is null.
    temperature_readings_c: tuple[float, ...] = ()
    skin_c: float | None = None
    ambient_c: float | None = None
    temperature_site: str | None = None
    temperature_fault: str | None = None
    # Set by the event log when the event is committed: this kiosk's sequence number, strictly
    # increasing and never reused, so the collector can order events whatever their clock said.
    seq: int | None = None
    # "decision" for a PASS/REFUSE; "loss" and "clock" are the kiosk's own records (see
    # docs/upload-protocol.md), with their facts in ``detail``.
    kind: str = "decision"
    # The clock's state when the event was made: whether it was synchronised (None: unknown), the
    # seconds since boot and the boot's id, so the collector can correct an unsynchronised time.
    clock_synced: bool | None = None
    uptime_s: float | None = None
    boot_id: str | None = None
    detail: dict[str, Any] | None = field(default=None, hash=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        data["temperature_readings_c"] = list(self.temperature_readings_c)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Event":
        values = dict(data)
        values["reasons"] = tuple(values.get("reasons", ()))
        values["temperature_readings_c"] = tuple(values.get("temperature_readings_c", ()))
        return cls(**values)
