"""systemd notifications: READY once serving, WATCHDOG pets while the loop turns, silence when it hangs.

A unix datagram socket stands where systemd's notify socket would be, and reads what the kiosk sends.
"""

import socket
import threading
import time

import pytest

from kiosk.watchdog import Watchdog
from scene import Scene, run_scene


class NotifySocket:
    """What systemd listens on; records each message with its arrival time."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def close(self):
        """Stop listening, and take in what was sent and not read yet (a datagram is queued here
        by the time its send returns, so nothing sent before this is missed)."""
        self._stop.set()
        self._thread.join()
        self.sock.setblocking(False)
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            self.messages.append((time.monotonic(), data.decode()))
        self.sock.close()

    def pets(self):
        return [at for at, text in self.messages if "WATCHDOG=1" in text]


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
    texts = [text for _, text in listener.messages]
    assert texts[0].startswith("READY=1")
    assert texts.count("WATCHDOG=1") == 4  # at 0, 1, 2 and 3 s


def test_a_watchdog_for_another_process_is_ignored(tmp_path):
    watchdog = Watchdog(environ={"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert watchdog.interval_s is None


@pytest.mark.slow
@pytest.mark.e2e
def test_a_hung_loop_stops_petting(tmp_path):
    """The kiosk loop pets while it turns; when it hangs, the pets stop for longer than WatchdogSec."""
    listener = NotifySocket(tmp_path / "notify")
    watchdog_s = 0.4
    watchdog = Watchdog(environ={"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": str(int(watchdog_s * 1e6))})
    hang_for = 1.5

    def scene(s: Scene) -> None:
        time.sleep(1.0)
        real_tick = s.kiosk.tick
        hung = threading.Event()

        def hanging_tick():
            if not hung.is_set():
                hung.set()
                time.sleep(hang_for)  # e.g. a driver call that never returns
            real_tick()

        s.kiosk.tick = hanging_tick
        s.wait(hung.is_set, "the loop to hang")
        time.sleep(hang_for + 0.5)

    try:
        run_scene(tmp_path, scene, kiosk_options={"watchdog": watchdog})
    finally:
        listener.close()
    texts = [text for _, text in listener.messages]
    assert any(text.startswith("READY=1") for text in texts)
    assert any("STOPPING=1" in text for text in texts)
    pets = listener.pets()
    gaps = [b - a for a, b in zip(pets, pets[1:])]
    assert len(pets) >= 4
    # While the loop turned, systemd heard from it well within WatchdogSec...
    assert sorted(gaps)[len(gaps) // 2] < watchdog_s
    # ...and the hang left a silence systemd would have acted on.
    assert max(gaps) > watchdog_s
