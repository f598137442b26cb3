"""The keyed hash that stands for a scanned code in logs and events.

HMAC-SHA256 with a per-install secret: the same code hashes the same on this kiosk (so replays and
repeat visits can be matched), but the hash cannot be reversed or compared across installs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from kiosk.datadir import make_private_dir

SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """Read the install secret, creating it (mode 0600) on first use."""
    try:
        secret = path.read_bytes()
        if len(secret) >= SECRET_BYTES:
            return secret
    except FileNotFoundError:
        pass
    make_private_dir(path.parent)  # the first file in a new data folder: the folder is the kiosk's alone
    secret = secrets.token_bytes(SECRET_BYTES)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return secret


class CodeHasher:
    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("the install secret must be at least 16 bytes")
        self._secret = secret

    def hash(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
