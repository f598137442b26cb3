"""Event log and upload benchmark: append latency, drain rate, and bytes on disk per event.

    .venv/bin/python bench/sync.py [--events 100000] [--batch-size 500] [--synchronous FULL]

Appends N realistic events one by one to a fresh event log (each append a committed, fsynced
transaction, as on the kiosk), timing every append; then drains the whole backlog into the
reference collector, running as its own process on loopback (gzip NDJSON batches, idempotency
keys, the collector storing each event in SQLite), and checks that it holds every event once.
Prints a table, then one JSON line: events_per_s, insert_p50_ms, insert_p99_ms, durability,
db_mb_per_million (the log's size with every event sent, the state it keeps them in).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.config import UpstreamSection
from kiosk.events import Event, utc_iso
from kiosk.sync.client import UpstreamClient
from kiosk.sync.clock import ClockWatch
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import Uploader

REASONS = [(), (), (), (), (), (), ("fever",), ("yellow_code",), ("red_code",), ("stale_code",), ("cannot_verify",)]


def make_events(count: int, rng: random.Random) -> list[Event]:
    """A day at a busy entrance: mostly passes, some refusals, wrist readings, real-looking ids."""
    start = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
    events = []
    for n in range(count):
        reasons = rng.choice(REASONS)
        temperature = round(rng.gauss(36.6, 0.25) + (1.5 if "fever" in reasons else 0), 1)
        events.append(Event(
            time=utc_iso(start + timedelta(milliseconds=n * 850 + rng.randint(0, 400))),
            kiosk_id="gate-north-1", site_id="haikou-east-station",
            decision="REFUSE" if reasons else "PASS", reasons=reasons, temperature_c=temperature,
            code_colour={"yellow_code": "yellow", "red_code": "red"}.get(reasons[0] if reasons else "", "green"),
            code_hash=f"{rng.getrandbits(256):064x}", code_scheme="platform", proxy=rng.random() < 0.05,
            id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            temperature_readings_c=(temperature,), skin_c=round(temperature - 2.4, 2),
            ambient_c=round(rng.uniform(18, 30), 1), temperature_site="wrist",
        ))
    return events


def start_collector(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """The reference collector in its own process (as it would be on another machine)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "upstream", "--port", "0", "--data-dir", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the reference collector did not start: {line!r}")
    return process, found.group(1)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL",
                        help="FULL is what the kiosk uses; NORMAL only for comparison")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    events = make_events(args.events, rng)
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-sync-") as workdir:
        folder = Path(workdir)
        watch = ClockWatch("gate-north-1", "haikou-east-station")
        watch.check()
        store = EventStore(folder / "kiosk" / "events.db", stamp=watch.stamp, synchronous=args.synchronous)
        latencies = []
        for event in events:
            started = time.perf_counter()
            store.append(event)
            latencies.append((time.perf_counter() - started) * 1000.0)
        durability = store.durability()
        unsent_bytes = store.size_bytes()

        collector, url = start_collector(folder / "collector")
        try:
            section = UpstreamSection(url=url, batch_size=args.batch_size, timeout_s=30)
            uploader = Uploader(store, UpstreamClient(section), section)
            started = time.perf_counter()
            sent = uploader.drain_once()
            drain_s = time.perf_counter() - started
        finally:
            collector.terminate()
            collector.wait(timeout=10)
        store.release_space()
        sent_bytes = store.size_bytes()
        left = store.counts()["unsent"]
        store.close()
        with sqlite3.connect(folder / "collector" / "collector.db") as received:
            stored, distinct = received.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM received").fetchone()

    if sent != args.events or left or stored != args.events or distinct != args.events:
        raise SystemExit(f"drain incomplete: sent {sent}, left {left}, collector holds {stored} ({distinct} distinct)")

    result = {
        "events": args.events,
        "batch_size": args.batch_size,
        "events_per_s": round(args.events / drain_s),
        "drain_s": round(drain_s, 2),
        "insert_p50_ms": round(statistics.median(latencies), 3),
        "insert_p99_ms": round(percentile(latencies, 0.99), 3),
        "insert_max_ms": round(max(latencies), 3),
        "durability": durability,
        "db_mb_per_million": round(sent_bytes / args.events, 1),
        "db_mb_per_million_unsent": round(unsent_bytes / args.events, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
    }
    print(f"appended {args.events} events ({durability}): p50 {result['insert_p50_ms']} ms, "
          f"p99 {result['insert_p99_ms']} ms, max {result['insert_max_ms']} ms")
    print(f"drained into the loopback collector in {result['drain_s']} s: {result['events_per_s']} events/s "
          f"(batches of {args.batch_size}, gzip)")
    print(f"event log: {result['db_mb_per_million']} MB per million events sent "
          f"({result['db_mb_per_million_unsent']} MB while unsent)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
