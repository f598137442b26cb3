"""systemd's service notifications: READY when serving, and the watchdog petted by the main loop.

Under `Type=notify` with `WatchdogSec=`, systemd restarts the kiosk when the screen loop stops
petting for that long (a hung loop). Outside systemd (no NOTIFY_SOCKET) every call does nothing. The protocol is one datagram per
message on the socket systemd names, so it is sent directly rather than through a library that
reads the address only from the process environment.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, environ: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.enabled = bool(address)
        # An "@" names a socket in the abstract namespace.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if self.enabled else None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        # Pet at twice the rate systemd needs, so one slow frame is not a restart.
        self.interval_s = int(usec) / 1e6 / 2 if watched else None
        self._clock = clock
        self._last_pet = float("-inf")

    def _send(self, message: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto(message.encode(), self._address)
        except OSError as exc:  # systemd gone (shutting down): nothing to tell, nothing to stop for
            log.debug("sd_notify %r failed: %s", message, exc)

    def ready(self, status: str = "serving") -> None:
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, text: str) -> None:
        self._send(f"STATUS={text}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def pet(self) -> None:
        """Called on every pass of the main loop; sends at most one WATCHDOG=1 per interval."""
        if self.interval_s is None:
            return
        now = self._clock()
        if now - self._last_pet >= self.interval_s:
            self._last_pet = now
            self._send("WATCHDOG=1")
