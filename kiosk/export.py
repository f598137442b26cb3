"""`kiosk export`: the event log between two times, as CSV or JSON lines, for the operator or an audit."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from kiosk.errors import StoreError, UsageError
from kiosk.events import Event
from kiosk.sync.store import EventStore

CSV_FIELDS = tuple(field.name for field in dataclasses.fields(Event))


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or time; without a zone it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an ISO 8601 date or time: {text!r} (e.g. 2026-11-26 or 2026-11-26T08:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def export(store_path: Path, out: IO[str], fmt: str, since: datetime | None = None,
           until: datetime | None = None) -> int:
    """Write the events with since <= time < until to `out`; return how many."""
    if not store_path.exists():
        raise StoreError(store_path, "no event log here (check kiosk.data_dir)")
    with EventStore(store_path, readonly=True) as store:
        events: list[Event] = store.events(since=since, until=until)
    if fmt == "jsonl":
        for event in events:
            out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for event in events:
            row = {key: ";".join(map(str, value)) if isinstance(value, (list, tuple)) else value
                   for key, value in event.to_dict().items()}
            writer.writerow(row)
    else:
        raise UsageError(f"unknown export format {fmt!r}: use csv or jsonl")
    return len(events)
