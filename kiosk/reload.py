"""Config edits over SSH: notice a changed /etc/kiosk/config.toml (or SIGHUP), validate it, hand it over.

A file that does not validate is never applied: the kiosk keeps the last good config, logs the
error with its key path, and keeps the error for `kiosk status` until a good file replaces it.
The file is polled (its size, mtime and inode), which also catches editors that write a new file
and rename it over the old one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Callable

from kiosk.config import Config, ConfigError, load

log = logging.getLogger(__name__)

POLL_S = 2.0


def _fingerprint(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


class ConfigWatcher:
    """Runs in its own thread; calls `apply(config)` with each new good config."""

    def __init__(self, path: Path, current: Config, apply: Callable[[Config], None], poll_s: float = POLL_S):
        self.path = Path(path)
        self._apply = apply
        self._poll_s = poll_s
        self._current = current
        self._seen = _fingerprint(self.path)
        self._requested = threading.Event()
        self.error: str | None = None

    def request(self) -> None:
        """Check the file now (SIGHUP, `systemctl reload kiosk`)."""
        self._requested.set()

    def install_sighup(self) -> None:
        """Only from the main thread (a Python rule for signal handlers)."""
        signal.signal(signal.SIGHUP, lambda *_: self.request())

    def check(self, forced: bool = False) -> bool:
        """Reload if the file changed (or if forced); return True when a new config was applied."""
        fingerprint = _fingerprint(self.path)
        if not forced and fingerprint == self._seen:
            return False
        self._seen = fingerprint
        try:
            config = load(self.path)
        except ConfigError as exc:
            self.error = "; ".join(exc.problems)
            log.error("config %s not applied, still running on the last good one: %s", self.path, self.error)
            return False
        self.error = None
        if config == self._current:
            log.info("config %s re-read: no change", self.path)
            return False
        self._current = config
        log.info("config %s changed: applying", self.path)
        self._apply(config)
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            forced = self._requested.wait(self._poll_s)
            self._requested.clear()
            if stop.is_set():
                return
            try:
                self.check(forced)
            except Exception:  # a watcher that dies would silently stop all future reloads
                log.exception("config reload failed")
