"""The kiosk's decision-and-upload path in a process of its own, for the crash suite to kill.

    python crash_child.py DATA_DIR COLLECTOR_URL SEED

It builds the event log and the upload thread exactly as the kiosk does (``open_sync``), prints
"ready", then makes decisions a few milliseconds apart for as long as it lives. After each append
returns it prints the event's id and seq and flushes: that is the moment the kiosk would show the
verdict, so every printed id must survive whatever happens next.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from datetime import datetime, timezone

from kiosk.config import parse
from kiosk.events import Event, utc_iso
from kiosk.sync import open_sync

REASONS = [(), (), (), (), ("fever",), ("yellow_code",), ("red_code",), ("stale_code",)]


def main(data_dir: str, url: str, seed: int) -> None:
    rng = random.Random(seed)
    config = parse({
        "kiosk": {"id": "crash-kiosk", "site_id": "lab", "data_dir": data_dir},
        "upstream": {"url": url, "batch_size": rng.choice([1, 4, 16, 64]), "interval_s": 0.1,
                     "max_retry_s": 1.0, "timeout_s": 1.0},
    })
    store, uploader = open_sync(config)
    uploader.start(threading.Event())
    print("ready", flush=True)
    while True:
        reasons = rng.choice(REASONS)
        event = Event(
            time=utc_iso(datetime.now(timezone.utc)), kiosk_id=config.kiosk.id, site_id=config.kiosk.site_id,
            decision="REFUSE" if reasons else "PASS", reasons=reasons,
            temperature_c=38.1 if "fever" in reasons else 36.6,
            code_colour={"yellow_code": "yellow", "red_code": "red"}.get(reasons[0] if reasons else "", "green"),
            code_hash=f"{rng.getrandbits(256):064x}", code_scheme="platform",
        )
        stored = store.append(event)
        print(stored.id, stored.seq, flush=True)  # shown
        uploader.wake()
        time.sleep(rng.uniform(0.0, 0.004))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
