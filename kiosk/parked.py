"""`kiosk parked`: the events the collector refused, and putting them back in the upload queue.

A collector that names events it will not take (a 4xx with `rejected`, or one event too large for
any batch) gets them parked: kept in the log, out of the queue, with the collector's reason. Once
the collector is fixed, `kiosk parked --requeue` queues them again; the running kiosk sends them on
its next upload (the event log is shared safely between processes).
"""

from __future__ import annotations

from typing import IO

from kiosk.config import Config
from kiosk.errors import StoreError
from kiosk.printable import printable
from kiosk.sync.store import EventStore


def run_parked(config: Config, requeue: bool, out: IO[str]) -> int:
    """List the parked events (time, id, the collector's reason); with ``requeue``, queue them again.

    A log that cannot be read raises StoreError, which ``kiosk`` reports in one line (exit 1).
    """
    if not requeue:
        with EventStore(config.store_path, readonly=True) as store:
            parked = store.parked()
        for event, reason in parked:
            # The reason is the collector's text: escaped, so it cannot forge lines on the terminal.
            print(f"{event.time}  {event.id}  {printable(reason)}", file=out)
        print(f"{len(parked)} parked event(s)" + (": `kiosk parked --requeue` sends them again" if parked else ""),
              file=out)
        return 0
    if not config.store_path.exists():  # never create an empty log just to requeue nothing
        raise StoreError(config.store_path, "no event log here (has the kiosk run yet?)")
    with EventStore(config.store_path, urgent_reasons=config.upstream.urgent_reasons) as store:
        count = store.requeue_parked()
    print(f"{count} parked event(s) queued for upload again", file=out)
    return 0
