"""The replay guard: a code that got someone in is refused if shown again within a window.

A screenshot of a valid code passed to a friend, or one printed certificate handed back over the
barrier, shows the same code twice. The guard remembers a keyed hash of each accepted code (never
the code) with the time it was accepted, in memory or in a small SQLite file that survives a
restart (0600, like every file in the data folder), and forgets it once the window has passed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from kiosk.datadir import make_private_dir, private_database

log = logging.getLogger(__name__)

# Forgetting old entries costs a DELETE; do it at most this often.
_PRUNE_EVERY_S = 60.0


class ReplayGuard:
    """``seen(key)``: was this key accepted within the window? ``accept(key)``: remember it now.

    ``path`` None keeps the hashes in memory. ``window_s`` 0 turns the guard off. ``clock`` is
    wall-clock seconds (injectable). An entry counts while the clock is within the window of it on
    either side, so a clock stepped backwards does not forget recent entries.
    """

    def __init__(self, window_s: float, path: Path | None = None, clock: Callable[[], float] = time.time):
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: dict[str, float] = {}
        self._db: sqlite3.Connection | None = None
        self._pruned_at = float("-inf")
        if path is not None and window_s > 0:
            make_private_dir(path.parent)  # 0700 when the kiosk creates it
            private_database(path)  # 0600: the hashes are the kiosk's alone
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS accepted (key TEXT PRIMARY KEY, at REAL NOT NULL)")

    @property
    def enabled(self) -> bool:
        return self.window_s > 0

    def seen(self, key: str) -> bool:
        if not self.enabled:
            return False
        now = self._clock()
        with self._lock:
            if self._db is None:
                at = self._memory.get(key)
            else:
                row = self._db.execute("SELECT at FROM accepted WHERE key = ?", (key,)).fetchone()
                at = row[0] if row else None
        return at is not None and abs(now - at) < self.window_s

    def accept(self, key: str) -> None:
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            if self._db is None:
                self._memory[key] = now
            else:
                self._db.execute("INSERT OR REPLACE INTO accepted (key, at) VALUES (?, ?)", (key, now))
            if abs(now - self._pruned_at) >= _PRUNE_EVERY_S:
                self._prune(now)

    def _prune(self, now: float) -> None:
        low, high = now - self.window_s, now + self.window_s
        if self._db is None:
            self._memory = {k: at for k, at in self._memory.items() if low < at < high}
        else:
            self._db.execute("DELETE FROM accepted WHERE at <= ? OR at >= ?", (low, high))
        self._pruned_at = now

    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return len(self._memory)
            return int(self._db.execute("SELECT COUNT(*) FROM accepted").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
