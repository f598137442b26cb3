"""The event log on the device: an SQLite outbox of every decision, kept until the collector has it.

Durability: the file is in WAL mode with ``synchronous=FULL``, so ``append`` returns only after the
event's commit is fsynced; the kiosk shows a verdict only after that (see docs/upload-protocol.md
for why FULL and not NORMAL). A process killed at any moment, or a power cut, loses nothing that
was shown.

Layout: each event is one row of ``outbox``. Its bulkiest fields are kept in compact form (the id
and code hash as bytes, the time as milliseconds, kiosk/site/boot ids as a small number into
``origins``) and the other fields' values as a JSON array, their names stored once in ``shapes``;
this keeps a million events under 300 MB. The ``events`` view
puts the JSON back together (``seq``, ``id``, ``time``, ``body``, ``status``, ...), so the file
stays readable with the ``sqlite3`` shell and the body sent upstream is exactly the view's.

Queue: rows are queued, sent (the collector acknowledged them) or parked (the collector refused
them by name, with its reason). The upload order is lane, then seq: urgent refusals first, then
the kiosk's own records, then routine events. ``sync_status`` holds the uploader's state, so
``kiosk status`` can read it from another process.

The file (with its -wal and -shm companions) is 0600 and a data folder the store creates is 0700,
whatever the umask of the shell a ``kiosk`` command was started from (``kiosk.datadir``).

The decision thread appends and the upload thread reads and marks, so one connection is shared
behind a lock; every statement is short, and long clean-ups are done in slices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from kiosk.datadir import make_private_dir, private_database
from kiosk.errors import StoreError
from kiosk.events import Event, utc_iso

logger = logging.getLogger(__name__)

LANE_URGENT, LANE_RECORD, LANE_ROUTINE = 0, 1, 2
QUEUED, SENT, PARKED = 0, 1, 2
DEFAULT_URGENT_REASONS = frozenset({"yellow_code", "red_code", "fever"})
SCHEMA_VERSION = 1
# Deleting or vacuuming this many rows / pages per transaction keeps the decision thread's wait short.
_SLICE = 2000

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_TIME_MS = 253402300800000  # 10000-01-01: the ISO form has four year digits
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# Fields the events view always writes back as text (or null), whether compacted or not.
_TEXT_FIELDS = ("id", "time", "code_hash", "kiosk_id", "site_id", "boot_id")


def _iso_sql(column: str) -> str:
    """SQL turning a millisecond column back into the ISO form ``utc_iso`` writes (exact integers)."""
    return (f"strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch') "
            f"|| printf('.%03dZ', {column} % 1000)")


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,  -- the kiosk's event sequence number
    lane      INTEGER NOT NULL,                   -- 0 urgent refusal, 1 kiosk record, 2 routine
    state     INTEGER NOT NULL DEFAULT 0,         -- 0 queued, 1 sent, 2 parked
    time_ms   INTEGER,                            -- event time; NULL: kept in vals
    done_ms   INTEGER,                            -- when sent or parked
    id        BLOB,                               -- 16 bytes; NULL: kept in vals
    code_hash BLOB,                               -- 32 bytes; NULL: kept in vals
    origin    INTEGER,                            -- origins.n; NULL: kept in vals
    shape     INTEGER NOT NULL,                   -- shapes.n: the names of the fields in vals
    vals      TEXT NOT NULL                       -- every other field's value, as a JSON array
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (lane, seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS outbox_time ON outbox (time_ms);
CREATE TABLE IF NOT EXISTS shapes (
    n    INTEGER PRIMARY KEY,
    keys TEXT UNIQUE NOT NULL                     -- JSON array of field names
);
CREATE TABLE IF NOT EXISTS origins (
    n        INTEGER PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    site_id  TEXT NOT NULL,
    boot_id  TEXT NOT NULL,                       -- '' when unknown
    UNIQUE (kiosk_id, site_id, boot_id)
);
CREATE TABLE IF NOT EXISTS parked (
    seq    INTEGER PRIMARY KEY,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_status (
    key   TEXT PRIMARY KEY,
    value TEXT
);
CREATE VIEW IF NOT EXISTS events AS
SELECT seq, lane, state, status, time_ms, id, time, sent_at, parked_reason,
       json_set(fields, '$.id', id, '$.time', time, '$.code_hash', code_hash, '$.kiosk_id', kiosk_id,
                '$.site_id', site_id, '$.boot_id', boot_id, '$.seq', seq) AS body
FROM (
    SELECT seq, lane, state, status, time_ms, fields, sent_at, parked_reason,
           iif(id_blob IS NULL, fields ->> '$.id', lower(hex(id_blob))) AS id,
           iif(time_ms IS NULL, fields ->> '$.time', {_iso_sql('time_ms')}) AS time,
           iif(hash_blob IS NULL, fields ->> '$.code_hash', lower(hex(hash_blob))) AS code_hash,
           iif(origin IS NULL, fields ->> '$.kiosk_id', origin_kiosk) AS kiosk_id,
           iif(origin IS NULL, fields ->> '$.site_id', origin_site) AS site_id,
           iif(origin IS NULL, fields ->> '$.boot_id', nullif(origin_boot, '')) AS boot_id
    FROM (
        SELECT e.seq, e.lane, e.state, e.time_ms, e.id AS id_blob, e.code_hash AS hash_blob, e.origin,
               CASE e.state WHEN 0 THEN 'queued' WHEN 1 THEN 'sent' ELSE 'parked' END AS status,
               iif(e.state = 1, {_iso_sql('e.done_ms')}, NULL) AS sent_at,
               o.kiosk_id AS origin_kiosk, o.site_id AS origin_site, o.boot_id AS origin_boot,
               p.reason AS parked_reason,
               (SELECT json_group_object(k.value, e.vals -> ('$[' || k.key || ']'))
                FROM json_each(s.keys) AS k) AS fields
        FROM outbox e
        JOIN shapes s ON s.n = e.shape
        LEFT JOIN origins o ON o.n = e.origin
        LEFT JOIN parked p ON p.seq = e.seq
    )
);
"""


def batch_key(ids: Iterable[str]) -> str:
    """The idempotency key for a batch of these event ids (the same ids give the same key)."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Batch:
    """Queued events ready to send: their sequence numbers, ids and NDJSON lines, in send order."""

    seqs: tuple[int, ...]
    ids: tuple[str, ...]
    lines: tuple[bytes, ...]

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def key(self) -> str:
        """The batch's idempotency key: the same events always give the same key."""
        return batch_key(self.ids)

    def ndjson(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)


@dataclass(frozen=True)
class Dropped:
    """What a disk-space clean-up removed: how many routine events, which seqs and times."""

    count: int
    first_seq: int
    last_seq: int
    first_time: str | None
    last_time: str | None


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _time_ms(text: Any) -> int | None:
    """Milliseconds for an ISO time that the view will print back identically, else None."""
    if not isinstance(text, str) or not _ISO_MS.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return None
    ms = _ms(moment)
    if not 0 <= ms < _MAX_TIME_MS or utc_iso(_EPOCH + timedelta(milliseconds=ms)) != text:
        return None
    return ms


def _hex_blob(data: dict[str, Any], key: str, pattern: re.Pattern[str]) -> bytes | None:
    value = data.get(key)
    if isinstance(value, str) and pattern.fullmatch(value):
        del data[key]
        return bytes.fromhex(value)
    return None


class EventStore:
    """The device's event log and upload queue, in one SQLite file (WAL mode, synchronous=FULL)."""

    def __init__(
        self,
        path: Path | str,
        *,
        stamp: Callable[[Event], Event] | None = None,
        urgent_reasons: Iterable[str] = DEFAULT_URGENT_REASONS,
        synchronous: str = "FULL",
        readonly: bool = False,
    ):
        """``stamp`` fills in fields when an event is appended (the clock's state, see
        ``kiosk.sync.clock``). ``synchronous`` exists for the benchmark's comparison; the kiosk
        always uses FULL. ``readonly`` opens an existing file for ``kiosk status``."""
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._stamp = stamp
        self._urgent = frozenset(urgent_reasons)
        self._lock = threading.Lock()
        self._origins: dict[tuple[str, str, str], int] = {}
        self._new_origins: dict[tuple[str, str, str], int] = {}
        self._shapes: dict[tuple[str, ...], int] = {}
        self._new_shapes: dict[tuple[str, ...], int] = {}
        self._conn: sqlite3.Connection | None = None
        if readonly:
            self._conn = self._open_readonly()
            return
        try:
            make_private_dir(self.path.parent)  # 0700 when the kiosk creates it
        except OSError as exc:
            raise StoreError(self.path, f"cannot create folder: {exc.strerror or exc}") from None
        try:
            private_database(self.path)  # 0600, and so are the -wal and -shm files SQLite adds
        except OSError as exc:
            raise StoreError(self.path, f"cannot open event log: {exc.strerror or exc}") from None
        try:
            # timeout: `kiosk status` and `kiosk export` may read the file from another process.
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"cannot open event log: {exc}") from None
        try:
            self._prepare(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(self.path, f"not a usable event log ({exc})") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # --- opening -----------------------------------------------------------------------------

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise StoreError(self.path, "no event log here (has the kiosk run yet?)")
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0,
                                   check_same_thread=False, isolation_level=None)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"cannot read event log ({exc})") from None
        if version != SCHEMA_VERSION:
            conn.close()
            raise StoreError(self.path, f"event log has layout {version}, expected {SCHEMA_VERSION} "
                                        "(start the kiosk once to upgrade it)")
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        fresh = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
        if fresh:
            # Set before the first table exists: lets clean-ups give space back to the file system.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(self.path, f"cannot switch the event log to WAL mode (got {mode})")
        if self.synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise StoreError(self.path, f"unknown synchronous setting {self.synchronous!r}")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        # The WAL file is cut back to this size after a checkpoint, so it cannot keep a peak's size.
        conn.execute("PRAGMA journal_size_limit=4194304")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(self.path, f"event log has layout {version}, newer than this kiosk ({SCHEMA_VERSION})")
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'events'").fetchone()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if kind == ("table",):
                conn.execute("ALTER TABLE events RENAME TO events_v0")
            else:  # the view is always this version's, so readers see what this code writes
                conn.execute("DROP VIEW IF EXISTS events")
            # One by one: executescript would commit the half-done upgrade.
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            if kind == ("table",):
                self._migrate_v0(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._commit(conn)
        except BaseException:
            self._new_origins.clear()
            self._new_shapes.clear()
            conn.execute("ROLLBACK")
            raise
        if kind == ("table",):
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("VACUUM")

    def _migrate_v0(self, conn: sqlite3.Connection) -> None:
        """Move the first layout's rows (JSON body, sent_at) over, keeping seq and sent state."""
        rows = conn.execute("SELECT seq, body, sent_at FROM events_v0 ORDER BY seq").fetchall()
        for seq, body, sent_at in rows:
            event = Event.from_dict(json.loads(body))
            done_ms = _time_ms(sent_at) if sent_at else None
            self._insert(conn, event, seq=seq, state=SENT if sent_at else QUEUED, done_ms=done_ms)
        conn.execute("DROP TABLE events_v0")
        logger.info("event log %s: moved %d events to layout %d", self.path, len(rows), SCHEMA_VERSION)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(self.path, "event log is closed")
        return self._conn

    # --- writing events ----------------------------------------------------------------------

    def lane_of(self, event: Event) -> int:
        """Urgent refusals (yellow code, red code, fever by default), kiosk records, or routine."""
        if event.kind != "decision":
            return LANE_RECORD
        if event.decision == "REFUSE" and self._urgent.intersection(event.reasons):
            return LANE_URGENT
        return LANE_ROUTINE

    def _origin(self, conn: sqlite3.Connection, data: dict[str, Any]) -> int | None:
        kiosk_id, site_id, boot = data.get("kiosk_id"), data.get("site_id"), data.get("boot_id")
        if not isinstance(kiosk_id, str) or not isinstance(site_id, str) or not isinstance(boot, (str, type(None))):
            return None
        key = (kiosk_id, site_id, boot or "")
        number = self._origins.get(key)
        if number is None:
            conn.execute("INSERT OR IGNORE INTO origins (kiosk_id, site_id, boot_id) VALUES (?, ?, ?)", key)
            number = conn.execute(
                "SELECT n FROM origins WHERE kiosk_id = ? AND site_id = ? AND boot_id = ?", key
            ).fetchone()[0]
            self._new_origins[key] = number  # cached once the transaction commits
        for name in ("kiosk_id", "site_id", "boot_id"):
            data.pop(name, None)
        return number

    def _insert(self, conn: sqlite3.Connection, event: Event, seq: int | None = None,
                state: int = QUEUED, done_ms: int | None = None) -> int:
        """One row for the event (inside the caller's transaction); returns its seq."""
        data = event.to_dict()
        data.pop("seq", None)
        for key in _TEXT_FIELDS:
            if not isinstance(data.get(key), (str, type(None))):
                raise StoreError(self.path, f"event {event.id!r}: {key} must be text, got {data[key]!r}")
        event_id = _hex_blob(data, "id", _HEX32)
        code_hash = _hex_blob(data, "code_hash", _HEX64)
        time_ms = _time_ms(data.get("time"))
        if time_ms is not None:
            del data["time"]
        origin = self._origin(conn, data)
        shape = self._shape(conn, tuple(data))
        vals = json.dumps(list(data.values()), ensure_ascii=False, separators=(",", ":"))
        cursor = conn.execute(
            "INSERT INTO outbox (seq, lane, state, time_ms, done_ms, id, code_hash, origin, shape, vals) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, self.lane_of(event), state, time_ms, done_ms, event_id, code_hash, origin, shape, vals),
        )
        if cursor.lastrowid is None:  # never for a plain INSERT; kept out of the types
            raise sqlite3.DatabaseError("the insert reported no row")
        return cursor.lastrowid

    def _shape(self, conn: sqlite3.Connection, keys: tuple[str, ...]) -> int:
        """The number of this list of field names (names are stored once, not in every row)."""
        number = self._shapes.get(keys)
        if number is None:
            text = json.dumps(list(keys), separators=(",", ":"))
            conn.execute("INSERT OR IGNORE INTO shapes (keys) VALUES (?)", (text,))
            number = conn.execute("SELECT n FROM shapes WHERE keys = ?", (text,)).fetchone()[0]
            self._new_shapes[keys] = number  # cached once the transaction commits
        return number

    def append(self, event: Event) -> Event:
        """Record one event; it is on disk (committed, fsynced) when this returns.

        Returns the event as stored: stamped (see ``stamp``) and with its ``seq``.
        """
        if self._stamp is not None:
            event = self._stamp(event)
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN")
                seq = self._insert(db, event)
                self._commit(db)
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(self.path, f"cannot record event {event.id}: {exc}") from None
            except BaseException:
                self._rollback()
                raise
        return replace(event, seq=seq)

    def _commit(self, db: sqlite3.Connection) -> None:
        db.execute("COMMIT")
        self._origins.update(self._new_origins)
        self._shapes.update(self._new_shapes)
        self._new_origins.clear()
        self._new_shapes.clear()

    def _rollback(self) -> None:
        self._new_origins.clear()
        self._new_shapes.clear()
        if self._conn is not None and self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    # --- the upload queue --------------------------------------------------------------------

    def next_batch(self, max_events: int, max_bytes: int) -> Batch:
        """The next queued events in send order, at most ``max_events`` and ``max_bytes`` of NDJSON.

        A single event larger than ``max_bytes`` still forms a batch of its own.
        """
        seqs: list[int] = []
        ids: list[str] = []
        lines: list[bytes] = []
        size = 0
        with self._lock:
            try:
                cursor = self._db().execute(
                    "SELECT seq, id, body FROM events WHERE state = 0 ORDER BY lane, seq LIMIT ?",
                    (max(1, max_events),),
                )
                for seq, event_id, body in cursor:
                    line = body.encode("utf-8")
                    if lines and size + len(line) + 1 > max_bytes:
                        break
                    seqs.append(seq)
                    ids.append(str(event_id))
                    lines.append(line)
                    size += len(line) + 1
                cursor.close()
            except sqlite3.Error as exc:
                raise StoreError(self.path, f"cannot read event log: {exc}") from None
        return Batch(tuple(seqs), tuple(ids), tuple(lines))

    def unsent(self, limit: int) -> list[Event]:
        """Up to ``limit`` queued events, in the order they will be sent."""
        rows = self._query("SELECT body FROM events WHERE state = 0 ORDER BY lane, seq LIMIT ?", (max(0, limit),))
        return [Event.from_dict(json.loads(body)) for (body,) in rows]

    def has_urgent(self) -> bool:
        """Whether an urgent refusal is waiting to be sent."""
        return bool(self._query("SELECT 1 FROM outbox WHERE state = 0 AND lane = 0 LIMIT 1", ()))

    def mark_sent(self, seqs: Iterable[int], at: datetime, status: dict[str, Any] | None = None) -> int:
        """Record that the collector acknowledged these events (and, in the same commit, the
        uploader's ``status``); returns how many rows changed."""
        done = _ms(at)
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN")
                cursor = db.executemany(
                    "UPDATE outbox SET state = 1, done_ms = ? WHERE seq = ? AND state = 0",
                    [(done, seq) for seq in seqs],
                )
                changed = cursor.rowcount
                if status:
                    self._write_status(db, status)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(self.path, f"cannot mark events sent: {exc}") from None
        return changed

    def park(self, reasons: dict[int, str], at: datetime) -> int:
        """Take events the collector refused by name out of the queue, keeping them and its reason."""
        done = _ms(at)
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN")
                changed = 0
                for seq, reason in reasons.items():
                    changed += db.execute(
                        "UPDATE outbox SET state = 2, done_ms = ? WHERE seq = ? AND state = 0", (done, seq)
                    ).rowcount
                    db.execute("INSERT OR REPLACE INTO parked (seq, reason) VALUES (?, ?)", (seq, reason[:300]))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(self.path, f"cannot park events: {exc}") from None
        return changed

    def parked(self) -> list[tuple[Event, str]]:
        """Every parked event with the collector's reason, oldest first."""
        rows = self._query("SELECT body, parked_reason FROM events WHERE state = 2 ORDER BY seq", ())
        return [(Event.from_dict(json.loads(body)), reason) for body, reason in rows]

    def requeue_parked(self) -> int:
        """Put every parked event back in the queue (after the collector was fixed); returns how many."""
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN")
                changed = db.execute("UPDATE outbox SET state = 0, done_ms = NULL WHERE state = 2").rowcount
                db.execute("DELETE FROM parked")
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(self.path, f"cannot requeue parked events: {exc}") from None
        return changed

    # --- reading -----------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """{"total", "unsent" (queued + parked), "queued", "urgent", "parked", "oldest_unsent"
        (the time of the earliest event not yet acknowledged, or None)}."""
        (total,), = self._query("SELECT COUNT(*) FROM outbox", ())
        by_lane = dict(self._query("SELECT lane, COUNT(*) FROM outbox WHERE state = 0 GROUP BY lane", ()))
        (parked, first_parked), = self._query("SELECT COUNT(*), MIN(seq) FROM parked", ())
        firsts = [first_parked] if first_parked is not None else []
        for lane in by_lane:
            firsts += [seq for (seq,) in self._query(
                "SELECT seq FROM outbox WHERE state = 0 AND lane = ? ORDER BY seq LIMIT 1", (lane,))]
        oldest = None
        if firsts:
            oldest = self._query("SELECT time FROM events WHERE seq = ?", (min(firsts),))[0][0]
        queued = sum(by_lane.values())
        return {
            "total": total,
            "unsent": queued + parked,
            "queued": queued,
            "urgent": by_lane.get(LANE_URGENT, 0),
            "parked": parked,
            "oldest_unsent": oldest,
        }

    def events(self, since: datetime | None = None, until: datetime | None = None) -> list[Event]:
        """Events with since <= time < until (either bound optional), in the order they were recorded."""
        clauses, params = [], []
        if since is not None:
            clauses.append("time_ms >= ?")
            params.append(_ms(since))
        if until is not None:
            clauses.append("time_ms < ?")
            params.append(_ms(until))
        # Through the time index (a plain WHERE on the view would scan every row).
        where = f"WHERE seq IN (SELECT seq FROM outbox WHERE {' AND '.join(clauses)})" if clauses else ""
        rows = self._query(f"SELECT body FROM events {where} ORDER BY seq", tuple(params))
        return [Event.from_dict(json.loads(body)) for (body,) in rows]

    def durability(self) -> str:
        """The journal mode and sync setting in force, e.g. "WAL, synchronous=FULL"."""
        (mode,), = self._query("PRAGMA journal_mode", ())
        (level,), = self._query("PRAGMA synchronous", ())
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return f"{str(mode).upper()}, synchronous={names.get(level, level)}"

    def integrity_check(self) -> str:
        """"ok", or SQLite's description of what is damaged."""
        rows = self._query("PRAGMA integrity_check", ())
        return "; ".join(str(row[0]) for row in rows)

    def size_bytes(self) -> int:
        """The database's size in pages (what the file holds, free pages excluded)."""
        (pages,), = self._query("PRAGMA page_count", ())
        (free,), = self._query("PRAGMA freelist_count", ())
        (page_size,), = self._query("PRAGMA page_size", ())
        return (pages - free) * page_size

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(self.path, f"cannot read event log: {exc}") from None

    # --- the uploader's state ----------------------------------------------------------------

    @staticmethod
    def _write_status(db: sqlite3.Connection, values: dict[str, Any]) -> None:
        db.executemany(
            "INSERT INTO sync_status (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(key, json.dumps(value)) for key, value in values.items()],
        )

    def save_status(self, values: dict[str, Any]) -> None:
        """Merge these keys into the stored uploader state (JSON values)."""
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN")
                self._write_status(db, values)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(self.path, f"cannot save upload status: {exc}") from None

    def load_status(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self._query("SELECT key, value FROM sync_status", ())}

    # --- keeping the disk bounded ------------------------------------------------------------

    def prune_sent(self, before: datetime) -> int:
        """Delete acknowledged events whose time is before ``before``; returns how many.

        Works in slices so a big clean-up never holds up a decision for long.
        """
        cutoff = _ms(before)
        removed = 0
        while True:
            with self._lock:
                db = self._db()
                try:
                    changed = db.execute(
                        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE time_ms < ? AND state = 1 LIMIT ?)",
                        (cutoff, _SLICE),
                    ).rowcount
                except sqlite3.Error as exc:
                    raise StoreError(self.path, f"cannot prune sent events: {exc}") from None
            removed += changed
            if changed < _SLICE:
                break
        if removed:
            self.release_space()
        return removed

    def drop_routine(self, count: int, record: Callable[[Dropped], Event]) -> Dropped | None:
        """Delete the ``count`` oldest routine events not yet sent and append ``record(dropped)``
        in the same commit, so events never disappear without a trace. None when there are none."""
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN")
                rows = db.execute(
                    "SELECT seq, time FROM events WHERE state = 0 AND lane = 2 ORDER BY seq LIMIT ?", (max(0, count),)
                ).fetchall()
                if not rows:
                    db.execute("ROLLBACK")
                    return None
                dropped = Dropped(len(rows), rows[0][0], rows[-1][0], rows[0][1], rows[-1][1])
                db.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq, _ in rows])
                entry = record(dropped)
                if self._stamp is not None:
                    entry = self._stamp(entry)
                self._insert(db, entry)
                self._commit(db)
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(self.path, f"cannot drop events: {exc}") from None
            except BaseException:
                self._rollback()
                raise
        self.release_space()
        return dropped

    def release_space(self) -> None:
        """Give free pages back to the file system (in slices), and cut the WAL file back."""
        while True:
            with self._lock:
                db = self._db()
                try:
                    (free,), = db.execute("PRAGMA freelist_count").fetchall()
                    if not free:
                        break
                    db.execute(f"PRAGMA incremental_vacuum({_SLICE})").fetchall()
                except sqlite3.Error as exc:
                    raise StoreError(self.path, f"cannot release free space: {exc}") from None
            if free <= _SLICE:
                break
        with self._lock:
            try:
                self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                logger.debug("checkpoint skipped: %s", exc)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "EventStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
