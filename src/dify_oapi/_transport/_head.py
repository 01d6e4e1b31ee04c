"""A deadline for the answer's head on the sync transports.

Each read is bounded by the read timeout, but a server that trickles the head a byte at a
time never lets one expire. While a sync call with a deadline sends its request and waits
for the head (:func:`head_by`), httpx's pool cuts each read and write to what the deadline
leaves, and the urllib3 transport shuts the socket down when the deadline passes. The
async clients bound the head with the event loop instead (``_send._within_deadline``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

__all__ = ["SlowHeadTimer", "head_by", "left", "watch_httpcore"]

# Per thread: a call's deadline is seen only by the reads of that call.
_DEADLINE: ContextVar[float | None] = ContextVar("dify_oapi_head_deadline", default=None)
PASSED = "the call's deadline passed before the answer's head"


class _By:
    __slots__ = ("_deadline", "_token")

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def __enter__(self) -> None:
        self._token = _DEADLINE.set(self._deadline)

    def __exit__(self, *exc: object) -> None:
        _DEADLINE.reset(self._token)


_NO_DEADLINE = contextlib.nullcontext()  # stateless: one serves every call without a deadline


def head_by(deadline: float | None) -> contextlib.AbstractContextManager[None]:
    """Within the block, this thread's reads and writes end by ``deadline`` (monotonic)."""
    return _NO_DEADLINE if deadline is None else _By(deadline)


def left() -> float | None:
    """Seconds this thread's head deadline leaves (``None``: no deadline)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def _cut(timeout: float | None, error: type[Exception]) -> float | None:
    remaining = left()
    if remaining is None:
        return timeout
    if remaining <= 0:
        raise error(PASSED)
    return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    # Every read of a sync httpx stream passes here: without a deadline, one lookup.
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if _DEADLINE.get() is not None:
            timeout = _cut(timeout, httpcore.ReadTimeout)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if _DEADLINE.get() is not None:
            timeout = _cut(timeout, httpcore.WriteTimeout)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner.get_extra_info(*args, **kwargs)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def watch_httpcore(client: httpx.Client) -> None:
    """Give the httpcore pools of the SDK's own ``client`` (direct and proxied) the deadline.

    httpx takes no network backend of its own, so it is set on the pools it built; where
    they are not where this looks (another httpx), heads stay bounded per read only, which
    ``tests/runtimes/test_deadline.py`` would report.
    """
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if (
            isinstance(pool, httpcore.ConnectionPool)
            and isinstance(backend, httpcore.NetworkBackend)
            and not isinstance(backend, _Backend)
        ):
            pool._network_backend = _Backend(backend)


class SlowHeadTimer:
    """Shuts ``sock`` down when this thread's head deadline passes (blocking sockets that
    cannot have their reads cut, as http.client's); :attr:`fired` says whether it did."""

    __slots__ = ("_timer", "fired")

    def __init__(self, sock: socket.socket | None) -> None:
        self.fired = False
        self._timer: threading.Timer | None = None
        remaining = left()
        if remaining is not None and sock is not None:
            self._timer = threading.Timer(max(remaining, 0.0), self._fire, (sock,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
