"""Quiet hours (sound.quiet_hours): a span of the device's local wall-clock time, e.g. "22:00-07:00".

Local time, not UTC: the span is what the people living next to the kiosk mean by night. The
device's time zone is the system's (``timedatectl set-timezone Asia/Shanghai``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> "QuietHours | None":
        """"HH:MM-HH:MM" (checked by the config scheme), or None for "" (no quiet hours)."""
        if not text:
            return None
        start, end = text.split("-")
        return cls(time.fromisoformat(start), time.fromisoformat(end))

    def __contains__(self, moment: time) -> bool:
        moment = moment.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight
