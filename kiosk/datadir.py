"""The data directory (``kiosk.data_dir``) is the kiosk's alone: created 0700, its files 0600.

The event log, the replay guard's hashes, the install secret and the trust list are no one else's
business. Under systemd the service's ``UMask=0077`` already gives these modes, but a ``kiosk``
command run by hand over SSH has the shell's umask (usually 022), so the modes are set here
explicitly. A folder that already exists keeps its mode (it may be shared, like /tmp); only one the
kiosk creates is made 0700.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600
# SQLite's companions of a database file; SQLite gives new ones the database's own mode.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private_dir(path: Path) -> None:
    """Create the folder ``path`` (0700) and any missing parents, unless it exists already.

    Raises OSError (FileExistsError when something other than a folder is in the way).
    """
    path = Path(path)
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if path.is_dir():  # made by another thread or process just now
            return
        raise
    os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask; this one is exact


def _tighten(fd_or_path: int | Path) -> None:
    try:
        os.chmod(fd_or_path, FILE_MODE)
    except FileNotFoundError:
        pass
    except PermissionError:
        pass  # another user's file: left as it is (the kiosk's own files are always its own)


def private_database(path: Path) -> None:
    """Make sure the SQLite file ``path`` exists with mode 0600 before SQLite opens it.

    An empty file is a new database to SQLite, and the -wal and -shm files it creates next to it
    take its mode. An existing file (and any companions) from before is made 0600 too.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        _tighten(fd)
    finally:
        os.close(fd)
    for suffix in _SQLITE_COMPANIONS:
        _tighten(path.with_name(path.name + suffix))


def open_private(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> IO:
    """Open ``path`` for writing (created or truncated) with mode 0600, as ``open`` would."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        _tighten(fd)
        return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)
    except BaseException:
        os.close(fd)
        raise
