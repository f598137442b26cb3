"""Is the system clock trustworthy? Offline certificates are checked against it.

A Raspberry Pi has no battery-backed clock: after a power cut it boots with the time it saved at
shutdown (fake-hwclock) until NTP corrects it. Until then, an expired certificate can look valid
(and a valid one expired), so offline checks follow a configured policy instead.

Two signs of a synchronised clock, read without privileges:
- systemd-timesyncd creates ``/run/systemd/timesync/synchronized`` at its first synchronisation
  since boot (``/run`` is emptied at every boot);
- the kernel's NTP status (``adjtimex``): an NTP client that disciplines the clock (chrony, ntpd,
  timesyncd) clears ``STA_UNSYNC``; ``TIME_ERROR`` means the clock is not synchronised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
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


def timesyncd_synchronised(flag: Path = TIMESYNCD_FLAG) -> bool:
    return flag.exists()


class ClockCheck:
    """Answers "has the clock been synchronised?" the configured way; sources are injectable."""

    def __init__(
        self,
        mode: ClockMode = "auto",
        kernel: Callable[[], bool | None] = kernel_synchronised,
        timesyncd: Callable[[], bool] = timesyncd_synchronised,
    ):
        self.mode = mode
        self._kernel = kernel
        self._timesyncd = timesyncd
        self._synced_once = False

    def synchronised(self) -> bool:
        """True once a source reports synchronisation; unknown counts as not synchronised."""
        if self.mode == "off" or self._synced_once:
            return True
        if self.mode in ("auto", "timesyncd") and self._timesyncd():
            synced = True
        elif self.mode in ("auto", "kernel"):
            synced = self._kernel() is True
        else:
            synced = False
        if synced:
            # Synchronised since boot: a later NTP hiccup does not make the clock wrong.
            self._synced_once = True
            log.info("system clock synchronised")
        return synced

    def describe(self) -> str:
        """One line for staff, e.g. for ``kiosk status`` and ``kiosk trust``."""
        if self.mode == "off":
            return "not checked (codes.clock_check = \"off\")"
        return "synchronised" if self.synchronised() else "NOT synchronised since boot"
