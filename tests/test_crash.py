"""The crash suite: the kiosk process is killed with SIGKILL at random moments, again and again.

Each run of ``crash_child.py`` makes decisions and uploads them to the reference collector on
loopback, printing each event's id once its append returned (when the verdict would be shown).
It is killed while opening the log, while appending, while uploading, then started again. Now and
then the WAL file also gets a torn, half-written frame at its end, as a power cut in the middle of
a write would leave. Afterwards:

- every event that was shown is in the event log, and the log passes ``PRAGMA integrity_check``;
- sequence numbers only ever grew, across every restart;
- after a final drain, the collector holds exactly the events of the log, each once.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kiosk.config import parse
from kiosk.sim.upstream import Fault, ReferenceUpstream
from kiosk.sync import open_sync
from kit import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 60


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return "; ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))


def tear_wal_tail(db: Path, rng: random.Random) -> None:
    """Leave a partly written frame at the end of the WAL, as a power cut mid-write would."""
    wal = db.with_name(db.name + "-wal")
    if wal.exists() and wal.stat().st_size > 32:
        with wal.open("ab") as file:
            file.write(rng.randbytes(rng.randint(1, 4000)))


def test_sigkill_at_random_moments_loses_nothing_shown_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(90210)
    data_dir = tmp_path / "kiosk"
    db = data_dir / "events.db"
    upstream = ReferenceUpstream(data_dir=tmp_path / "upstream").start()
    shown: list[tuple[str, int]] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(CHILD.parent), os.environ.get("PYTHONPATH")]))}
    try:
        for kill in range(KILLS):
            if rng.random() < 0.3:  # make some kills land in the middle of an upload
                upstream.inject(rng.choice([Fault("stall", seconds=0.5), Fault("no_body", seconds=0.5),
                                            Fault("status", status=503, retry_after="0")]))
            child = subprocess.Popen(
                [sys.executable, str(CHILD), str(data_dir), upstream.url, str(rng.getrandbits(32))],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            )
            if rng.random() < 0.1:
                time.sleep(rng.uniform(0.0, 0.3))  # somewhere in starting up and opening the log
            else:
                assert child.stdout is not None
                ready = child.stdout.readline()
                assert ready == "ready\n", child.stderr.read() if child.stderr else ready
                time.sleep(rng.uniform(0.0, 0.15))  # somewhere in deciding and uploading
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate(timeout=10)
            assert child.returncode == -signal.SIGKILL, err
            for line in out.splitlines(keepends=True):
                if line.endswith("\n") and line != "ready\n":  # a line cut by the kill was not shown
                    assert len(line.split()) == 2, repr(line)
                    event_id, seq = line.split()
                    shown.append((event_id, int(seq)))
            if kill % 7 == 6:
                tear_wal_tail(db, rng)
            if kill % 15 == 14:
                assert integrity(db) == "ok"

        # Enough verdicts were shown for the kills to have landed among them (about 1,500 on a quiet
        # machine; a loaded one makes fewer decisions between kills).
        assert len(shown) > 300
        seqs = [seq for _, seq in shown]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # only ever growing

        with sqlite3.connect(db) as connection:
            logged = dict(connection.execute("SELECT id, seq FROM events").fetchall())
        assert integrity(db) == "ok"
        missing = [event_id for event_id, _ in shown if event_id not in logged]
        assert missing == []
        assert all(logged[event_id] == seq for event_id, seq in shown)
        assert upstream.collector.count() > 0  # uploads were under way while the kills came

        # The kiosk starts once more and catches up; the collector ends with each event once.
        upstream.take_fault()
        while upstream.take_fault() is not None:
            pass
        config = parse({"kiosk": {"id": "crash-kiosk", "site_id": "lab", "data_dir": str(data_dir)},
                        "upstream": {"url": upstream.url, "batch_size": 500}})
        store, uploader = open_sync(config)
        try:
            assert wait_until(lambda: uploader.drain_once() >= 0 and store.counts()["unsent"] == 0, timeout=30)
        finally:
            store.close()
        received = Counter(event["id"] for event in upstream.collector.events())
        assert set(received.values()) == {1}
        assert set(received) == set(logged)
        assert integrity(db) == "ok"
    finally:
        upstream.close()
