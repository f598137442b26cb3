"""One deadline over a whole HTTP request: connecting, the TLS handshake, the headers and the body.

requests (and urllib3 under it) only bound each single wait for the network: a server that sends
one byte a second never trips a read timeout, and a lookup with ``timeout_s = 1.5`` can take a
minute. A ``Deadline`` gives the request made inside its ``with`` a deadline instead
(``kiosk.http.request`` uses it). The socket timeouts still cap each wait; in addition, a watchdog
thread shuts the request's connection down when the deadline passes, which ends whatever read or
write is blocked on it (headers or body, plain or TLS).

The watchdog finds the connection through a session with ``DeadlineAdapter``s (``kiosk.http.guard_session``
mounts them; they see each socket urllib3 gives a connection, and each pooled connection a request reuses).
Not covered: resolving the host name (the system resolver's own timeouts apply); a URL with an IP
address, or a local resolver, avoids that.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from functools import cache
from typing import Any

import requests
import requests.adapters
from urllib3.connection import DummyConnection
from urllib3.connectionpool import HTTPConnectionPool

_current = threading.local()  # the deadline of the request this thread is making, if any
_lock = threading.Lock()  # guards every deadline's watched sockets and each connection's owner


class Deadline:
    """A deadline for the request made by this thread inside ``with`` (on ``time.monotonic``)."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.expired = False
        self._done = False
        self._watched: list[tuple[Any, socket.socket]] = []
        self._previous: Deadline | None = None

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        """The deadline is over (whether or not the watchdog has cut the connection yet)."""
        return self.expired or self.remaining() < 0

    def timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts for requests: no single wait may outlast the deadline."""
        left = max(0.001, self.remaining())
        return left, left

    def __enter__(self) -> "Deadline":
        self._previous = getattr(_current, "deadline", None)
        _current.deadline = self
        _WATCHDOG.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.deadline = self._previous
        with _lock:
            self._done = True
            for connection, twin in self._watched:
                if getattr(connection, "_deadline", None) is self:
                    connection._deadline = None
                twin.close()
            self._watched.clear()

    def watch(self, connection: Any, sock: socket.socket) -> None:
        """Shut ``sock`` down if the deadline passes while ``connection`` serves this request.

        A duplicate descriptor is kept: the connection may replace its socket (TLS wraps it) or
        close it, and the duplicate still reaches the same TCP connection, never a reused number.
        """
        try:
            twin = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except (OSError, ValueError):
            return  # already closed: nothing left to wait on
        with _lock:
            if self._done:
                twin.close()
                return
            connection._deadline = self
            self._watched.append((connection, twin))
            if self.expired:
                _shut(twin)

    def expire(self) -> None:
        """The watchdog's call at the deadline: end every wait on this request's connection."""
        with _lock:
            if self._done:
                return
            self.expired = True
            for connection, twin in self._watched:
                # A connection already handed to another request (pooled, reused) is left alone.
                if getattr(connection, "_deadline", None) is self:
                    _shut(twin)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One daemon thread that expires deadlines as they fall due (one thread for all requests)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._wakeup:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-deadline", daemon=True)
                self._thread.start()
            if self._heap[0][2] is deadline:
                self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wakeup.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, deadline = heapq.heappop(self._heap)
            deadline.expire()


_WATCHDOG = _Watchdog()


class _Watched:
    """Mixed into urllib3's connection classes: hands the connection's socket to the deadline of
    the request using it, both when a socket is set (connecting, TLS) and when a pooled
    connection is reused."""

    _deadline: Deadline | None = None

    @property
    def sock(self) -> socket.socket | None:
        return self.__dict__.get("_watched_sock")

    @sock.setter
    def sock(self, value: socket.socket | None) -> None:
        self.__dict__["_watched_sock"] = value
        deadline = getattr(_current, "deadline", None)
        if value is not None and deadline is not None:
            deadline.watch(self, value)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.watch(self, self.sock)
        return super().request(*args, **kwargs)  # type: ignore[misc]


@cache
def _watched_connection(cls: type) -> type:
    return type(cls.__name__, (_Watched, cls), {"__module__": __name__})


@cache
def _watched_pool(cls: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    connection = cls.ConnectionCls
    if connection is None or connection is DummyConnection:
        return cls
    return type(cls.__name__, (cls,), {"ConnectionCls": _watched_connection(connection), "__module__": __name__})


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections the watchdog can reach. Direct connections only: the
    kiosk never goes through a proxy (``kiosk.http.guard_session``)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        manager = self.poolmanager
        manager.pool_classes_by_scheme = {
            scheme: _watched_pool(pool) for scheme, pool in manager.pool_classes_by_scheme.items()
        }
