"""systemd notifications: READY once serving, WATCHDOG pets while the loop turns, silence when it hangs.

A unix datagram socket stands where systemd's notify socket would be, and reads what the kiosk sends.
"""

import socket
import threading

import pytest

from kiosk.watchdog import Watchdog
from kit import FakeClock
from scene import Scene, run_scene


class NotifySocket:
    """What systemd listens on; keeps each message the kiosk sends, in order."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self._messages: list[str] = []

    @property
    def messages(self) -> list[str]:
        """Everything sent so far: a datagram is queued here by the time its send returns."""
        while self.sock.fileno() != -1:  # not closed yet
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self._messages
            self._messages.append(data.decode())
        return self._messages

    def pets(self) -> int:
        return sum("WATCHDOG=1" in text for text in self.messages)

    def close(self):
        self.messages  # noqa: B018 (takes in what is queued)
        self.sock.close()


def test_without_systemd_nothing_is_sent():
    watchdog = Watchdog(environ={})
    assert not watchdog.enabled and watchdog.interval_s is None
    watchdog.ready()
    watchdog.pet()  # no socket: silently nothing


def test_pets_are_rate_limited_to_half_the_watchdog_period(tmp_path):
    listener = NotifySocket(tmp_path / "notify")
    now = [0.0]
    watchdog = Watchdog(environ={"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "2000000"}, clock=lambda: now[0])
    try:
        assert watchdog.interval_s == 1.0
        watchdog.ready()
        for step in range(31):  # three seconds of a loop at 10 Hz
            now[0] = step / 10
            watchdog.pet()
    finally:
        listener.close()
    texts = listener.messages
    assert texts[0].startswith("READY=1")
    assert texts.count("WATCHDOG=1") == 4  # at 0, 1, 2 and 3 s


def test_a_watchdog_for_another_process_is_ignored(tmp_path):
    watchdog = Watchdog(environ={"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert watchdog.interval_s is None


class LoopClock(FakeClock):
    """The watchdog's clock, moved by the test; remembers which threads asked it the time (each pet does)."""

    def __init__(self):
        super().__init__()
        self.asked_by: set[str] = set()

    def __call__(self) -> float:
        self.asked_by.add(threading.current_thread().name)
        return self.now


@pytest.mark.e2e
def test_a_hung_loop_stops_petting(tmp_path):
    """The kiosk loop pets while it turns; while it hangs systemd hears nothing, however long that
    is on the watchdog's clock; the pets come back with the loop."""
    listener = NotifySocket(tmp_path / "notify")
    watchdog_s = 2.0
    clock = LoopClock()
    watchdog = Watchdog(environ={"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": str(int(watchdog_s * 1e6))},
                        clock=clock)
    silences: list[float] = []  # on the watchdog's clock, from one pet to the next

    def heard_again(s: Scene, heard: int, since: float) -> None:
        s.wait(lambda: listener.pets() > heard, "a pet")
        silences.append(clock.now - since)

    def scene(s: Scene) -> None:
        s.turns(3)
        assert listener.pets() == 1  # at the first turn; the clock has not moved since
        for _ in range(3):  # while the loop turns, systemd hears from it every half WatchdogSec
            heard, since = listener.pets(), clock.now
            clock.advance(watchdog.interval_s)
            heard_again(s, heard, since)
        real_tick = s.kiosk.tick
        hung, release = threading.Event(), threading.Event()

        def hanging_tick():
            if not hung.is_set():
                hung.set()
                release.wait(30)  # e.g. a driver call that never returns
            real_tick()

        s.kiosk.tick = hanging_tick
        s.wait(hung.is_set, "the loop to hang")
        heard, since = listener.pets(), clock.now
        clock.advance(3 * watchdog_s)  # systemd would have restarted it long ago
        assert listener.pets() == heard
        release.set()  # the loop turns again, and pets at once
        heard_again(s, heard, since)
        s.turns(3)
        assert listener.pets() == heard + 1

    try:
        run_scene(tmp_path, scene, kiosk_options={"watchdog": watchdog})
    finally:
        listener.close()
    texts = listener.messages
    assert texts[0].startswith("READY=1")
    assert any("STOPPING=1" in text for text in texts)
    # While the loop turned, systemd heard from it well within WatchdogSec; the hang left a silence
    # it would have acted on.
    assert silences == [watchdog.interval_s] * 3 + [3 * watchdog_s]
    assert watchdog.interval_s < watchdog_s
    # Only the loop pets (run_scene runs it on this thread): nothing else keeps systemd quiet.
    assert clock.asked_by == {threading.current_thread().name}
