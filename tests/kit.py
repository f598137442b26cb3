"""The tests' shared tools: clocks a test moves by hand, and waiting for something another thread does.

The fixtures built on them (`upstream`, `store`) are in conftest.py.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)


class FakeClock:
    """A monotonic clock in seconds that only moves when told to: `sleep` moves it (and is
    remembered in `slept`), so code that waits or retries runs at once and its pauses can be read."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SteppedClock:
    """A running monotonic clock the test can move forward (`offset`) to skip a wait, for code
    on other threads that must keep going in real time meanwhile (the kiosk's loop)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


class FixedClock:
    """A UTC clock the test moves by hand (`clock.now += timedelta(...)`)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll until `condition` holds and say whether it did; the timeout only keeps a broken build
    from hanging the suite (use it as `assert wait_until(...)`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def read_request(conn: socket.socket) -> bytes:
    """What a client sent up to the blank line after its headers (less if it hung up first)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
