"""Is the system clock trustworthy? Offline certificates are checked against it, and every event
is stamped with it.

A Raspberry Pi has no battery-backed clock: after a power cut it boots with the time it saved at
shutdown (fake-hwclock) until NTP corrects it. Until then, an expired certificate can look valid
(and a valid one expired), so offline checks follow a configured policy instead, and the events
say ``clock_synced: false`` so the collector can correct their times.

There is one check, ``ClockCheck``, configured by ``codes.clock_check``: the code verifier asks it
before trusting an offline certificate, and the event log (``kiosk.sync.clock.ClockWatch``) stamps
events with its latest reading, so a code refused as ``clock_unsynchronised`` is never logged with
``clock_synced: true``. ``system_clock_check`` gives the process's one instance for a mode.

Two signs of a synchronised clock, read without privileges:
- systemd-timesyncd creates ``/run/systemd/timesync/synchronized`` at its first synchronisation
  since boot (``/run`` is emptied at every boot);
- the kernel's NTP status (``adjtimex``): an NTP client that disciplines the clock (chrony, ntpd,
  timesyncd) clears ``STA_UNSYNC``; ``TIME_ERROR`` means the clock is not synchronised. Where
  ``adjtimex`` cannot be read, ``timedatectl`` (which reads the same status) is asked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Literal

log = logging.getLogger(__name__)

ClockMode = Literal["auto", "kernel", "timesyncd", "off"]
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
_TIME_ERROR = 5  # adjtimex return value: clock not synchronised
_STA_UNSYNC = 0x0040
# struct timex is 208 bytes on 64-bit Linux (less on 32-bit); a larger buffer is harmless.
_TIMEX_BYTES = 512
_STATUS_OFFSET = {8: 40, 4: 20}  # offset of ``int status`` after ``modes`` and five longs


def kernel_synchronised() -> bool | None:
    """The kernel's view (what ``timedatectl`` shows as "System clock synchronized"), or None
    where it cannot be read (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buffer = ctypes.create_string_buffer(_TIMEX_BYTES)  # modes = 0: read only
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    offset = _STATUS_OFFSET.get(ctypes.sizeof(ctypes.c_long))
    status = int.from_bytes(buffer.raw[offset:offset + 4], sys.byteorder) if offset else 0
    return state != _TIME_ERROR and not status & _STA_UNSYNC


def timedatectl_synchronised() -> bool | None:
    """``timedatectl``'s NTPSynchronized, or None where it cannot be asked."""
    try:
        answer = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=3, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = answer.stdout.strip()
    if answer.returncode != 0 or value not in ("yes", "no"):
        return None
    return value == "yes"


def ntp_synchronised() -> bool | None:
    """The kernel's NTP status, asked of ``timedatectl`` where ``adjtimex`` cannot be read; None
    when neither answers (unknown, never assumed good)."""
    state = kernel_synchronised()
    return state if state is not None else timedatectl_synchronised()


def timesyncd_synchronised(flag: Path = TIMESYNCD_FLAG) -> bool:
    return flag.exists()


class ClockCheck:
    """Answers "has the clock been synchronised?" the configured way; sources are injectable.

    ``auto``: the timesyncd flag, else the kernel's NTP status; ``kernel`` or ``timesyncd``: only
    that one; ``off``: the clock is trusted as it is (a device with a real-time clock).
    """

    def __init__(
        self,
        mode: ClockMode = "auto",
        kernel: Callable[[], bool | None] = ntp_synchronised,
        timesyncd: Callable[[], bool] = timesyncd_synchronised,
    ):
        self.mode = mode
        self._kernel = kernel
        self._timesyncd = timesyncd
        self._synced_once = False
        # The latest reading (None: unknown, or not read yet); events are stamped with it.
        self.last: bool | None = True if mode == "off" else None

    def state(self) -> bool | None:
        """Read the sources: True once synchronised since boot, False when the source says it is
        not, None when no source can tell."""
        if self.mode == "off" or self._synced_once:
            state: bool | None = True
        elif self.mode in ("auto", "timesyncd") and self._timesyncd():
            state = True
        elif self.mode in ("auto", "kernel"):
            state = self._kernel()
        else:
            state = False
        if state is True and not self._synced_once:
            # Synchronised since boot: a later NTP hiccup does not make the clock wrong.
            self._synced_once = True
            if self.mode != "off":
                log.info("system clock synchronised")
        self.last = state
        return state

    def synchronised(self) -> bool:
        """True once a source reports synchronisation; unknown counts as not synchronised."""
        return self.state() is True

    def describe(self) -> str:
        """One line for staff, e.g. for ``kiosk status`` and ``kiosk trust``."""
        if self.mode == "off":
            return "not checked (codes.clock_check = \"off\")"
        return "synchronised" if self.synchronised() else "NOT synchronised since boot"


_system: dict[str, ClockCheck] = {}
_system_lock = threading.Lock()


def system_clock_check(mode: ClockMode = "auto") -> ClockCheck:
    """The process's one check of the system clock in this mode, shared by the code verifier and
    the event log so that both see the same readings."""
    with _system_lock:
        check = _system.get(mode)
        if check is None:
            check = _system[mode] = ClockCheck(mode)
        return check
