"""The event log on the device: an SQLite outbox of every decision, kept until the collector has it.

One table, one row per event. ``sent_at`` stays NULL until the collector has acknowledged the row,
so the unsent rows are the upload queue and a restart loses nothing. Sent rows are kept for
``kiosk export`` and the status page.

The decision thread appends and the upload thread reads and marks, so one connection is shared
behind a lock: SQLite serialises writes anyway and every statement here is short.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError
from kiosk.events import Event, utc_iso

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT UNIQUE NOT NULL,
    time    TEXT NOT NULL,
    body    TEXT NOT NULL,
    sent_at TEXT NULL
);
CREATE INDEX IF NOT EXISTS events_unsent ON events (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS events_time ON events (time);
"""


class StoreError(KioskError):
    """The event log cannot be opened, read or written; ``path`` names the file."""

    def __init__(self, path: Path, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class EventStore:
    """The device's event log and upload queue, in one SQLite file (WAL mode)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(self.path, f"cannot create folder: {exc.strerror or exc}") from None
        try:
            # timeout: `kiosk export` / `kiosk status` may read the file from another process.
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"cannot open event log: {exc}") from None
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(self.path, f"cannot switch the event log to WAL mode (got {mode})")
            # FULL: in WAL mode, NORMAL may lose the last commits on a power cut. An event must
            # survive a power cut once its verdict has been shown, so every commit is fsynced.
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(self.path, f"not a usable event log ({exc})") from None
        except StoreError:
            conn.close()
            raise
        self._conn = conn

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(self.path, "event log is closed")
        return self._conn

    def append(self, event: Event) -> None:
        """Record one event; it is on disk (committed, fsynced) when this returns.

        Appending an id that is already stored changes nothing: an id names one event.
        """
        with self._lock:
            try:
                self._db().execute(
                    "INSERT OR IGNORE INTO events (id, time, body) VALUES (?, ?, ?)",
                    (event.id, event.time, event.to_json()),
                )
            except sqlite3.Error as exc:
                raise StoreError(self.path, f"cannot record event {event.id}: {exc}") from None

    def unsent(self, limit: int) -> list[Event]:
        """Up to ``limit`` events not yet acknowledged by the collector, oldest first."""
        rows = self._query(
            "SELECT body FROM events WHERE sent_at IS NULL ORDER BY seq LIMIT ?", (max(0, limit),)
        )
        return [Event.from_dict(json.loads(body)) for (body,) in rows]

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        """Record that the collector acknowledged these events; returns how many rows changed."""
        stamp = utc_iso(at)
        with self._lock:
            try:
                db = self._db()
                db.execute("BEGIN")
                changed = 0
                for event_id in ids:
                    changed += db.execute(
                        "UPDATE events SET sent_at = ? WHERE id = ? AND sent_at IS NULL", (stamp, event_id)
                    ).rowcount
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn is not None and self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StoreError(self.path, f"cannot mark events sent: {exc}") from None
        return changed

    def counts(self) -> dict[str, Any]:
        """{"total": all events, "unsent": the upload backlog, "oldest_unsent": its first time or None}."""
        (total, unsent, oldest), = self._query(
            "SELECT COUNT(*), COUNT(*) - COUNT(sent_at), MIN(CASE WHEN sent_at IS NULL THEN time END) FROM events",
            (),
        )
        return {"total": total, "unsent": unsent, "oldest_unsent": oldest}

    def events(self, since: datetime | None = None, until: datetime | None = None) -> list[Event]:
        """Events with since <= time < until (either bound optional), in the order they were recorded."""
        clauses, params = [], []
        if since is not None:
            clauses.append("time >= ?")
            params.append(utc_iso(since))
        if until is not None:
            clauses.append("time < ?")
            params.append(utc_iso(until))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT body FROM events {where} ORDER BY seq", tuple(params))
        return [Event.from_dict(json.loads(body)) for (body,) in rows]

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(self.path, f"cannot read event log: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "EventStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
