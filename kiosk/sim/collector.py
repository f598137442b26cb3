"""The reference log collector's storage: every event received, once, keyed by its id.

A kiosk retries a batch when it did not hear the answer, so the same event may arrive twice;
the second copy is counted (``copies``) and dropped. A batch's idempotency key is remembered with
the answer given, so a batch sent again is answered the same way without being processed again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kiosk.events import utc_iso

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT UNIQUE NOT NULL,
    received_at TEXT NOT NULL,
    body        TEXT NOT NULL,
    copies      INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS batches (
    key         TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    answer      TEXT NOT NULL
);
"""


class Collector:
    """Received events in an SQLite file; safe to use from the server's request threads."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(received)")}
        if "copies" not in columns:  # a file from before copies were counted
            self._conn.execute("ALTER TABLE received ADD COLUMN copies INTEGER NOT NULL DEFAULT 1")

    def receive(self, events: list[dict[str, Any]], key: str | None = None) -> tuple[int, int]:
        """Store a batch in one transaction; returns (accepted, duplicates).

        Every event must carry a string "id" (the server checks this before calling). With a
        ``key``, the answer is remembered for ``answer_for``.
        """
        stamp = utc_iso(datetime.now(timezone.utc))
        accepted = 0
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                for event in events:
                    added = self._conn.execute(
                        "INSERT OR IGNORE INTO received (id, received_at, body) VALUES (?, ?, ?)",
                        (event["id"], stamp, json.dumps(event, ensure_ascii=False, separators=(",", ":"))),
                    ).rowcount
                    if not added:
                        self._conn.execute("UPDATE received SET copies = copies + 1 WHERE id = ?", (event["id"],))
                    accepted += added
                duplicates = len(events) - accepted
                if key:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO batches (key, received_at, answer) VALUES (?, ?, ?)",
                        (key, stamp, json.dumps({"accepted": accepted, "duplicates": duplicates})),
                    )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return accepted, duplicates

    def answer_for(self, key: str) -> dict[str, Any] | None:
        """The answer given to the batch with this idempotency key, or None if it is new."""
        with self._lock:
            row = self._conn.execute("SELECT answer FROM batches WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def events(self) -> list[dict[str, Any]]:
        """Everything received, in the order it first arrived."""
        with self._lock:
            rows = self._conn.execute("SELECT body FROM received ORDER BY seq").fetchall()
        return [json.loads(body) for (body,) in rows]

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM received").fetchone()[0]

    def copies(self) -> int:
        """How many events arrived, counting every copy (``count()`` counts each event once)."""
        with self._lock:
            return self._conn.execute("SELECT COALESCE(SUM(copies), 0) FROM received").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
