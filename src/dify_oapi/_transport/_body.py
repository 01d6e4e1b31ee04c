"""Reading an answer's body: decoded with a bound, and its connection released exactly once.

Every object that holds a connection (a blocking read, an event stream, a binary download)
holds it through one :class:`Lease`: consumed, left early, closed, never iterated, closed
from another thread, or garbage-collected, the lease closes the response and gives the
concurrency slot back, once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from .._exceptions import ResponseDecodeError, ResponseTooLargeError

__all__ = ["ACCEPT_ENCODING", "Lease", "aread_body", "read_body"]

#: The codings the SDK asks for: the ones it can inflate with a bound on the output.
ACCEPT_ENCODING = "gzip, deflate"
# Upper bound on the bytes one inflate step may produce, whatever the input.
_INFLATE_STEP = 256 * 1024
#: How long a finished stream waits for the rest of its body before closing instead.
DRAIN_GRACE = 0.05
_DRAIN_READS = 8


class _Inflater:
    """gzip or deflate inflated step by step, each step at most ``_INFLATE_STEP`` bytes, so a
    tiny body that expands to gigabytes meets the size cap before it fills memory."""

    __slots__ = ("_obj", "_raw")

    def __init__(self, coding: str) -> None:
        self._raw = coding == "deflate"
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | (16 if coding == "gzip" else 0))

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            if self._raw:
                # "deflate" is zlib-wrapped by the standard, raw by some servers.
                self._raw = False
                if data and (data[0] & 0x0F) != 8:
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._obj.decompress(data, _INFLATE_STEP)
            while out:
                yield out
                tail = self._obj.unconsumed_tail
                if not tail:
                    return
                out = self._obj.decompress(tail, _INFLATE_STEP)
        except zlib.error as exc:
            raise httpx.DecodingError(f"invalid compressed body: {exc}") from None


def _decoder(response: httpx.Response, op: str) -> _Inflater | None:
    coding = response.headers.get("content-encoding", "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if coding == "deflate" else "gzip")
    if "," in coding:
        # Stacked codings multiply: "gzip, gzip" turns 2 KB into a gigabyte.
        raise ResponseTooLargeError(
            "refusing an answer with more than one content coding (a decompression bomb)",
            operation=op,
        )
    # Codings the SDK did not ask for (br, zstd) cannot be inflated with a bound.
    raise ResponseDecodeError(
        f"refusing an answer in content coding {coding!r} (the SDK asks for {ACCEPT_ENCODING})",
        operation=op,
        status_code=response.status_code,
    )


class Lease:
    """One answer's body and everything it holds: the response, its connection and its
    concurrency slot.

    ``release`` gives the slot back; ``close`` (``aclose``) also closes the response, and is
    safe to call twice, from any thread. ``interrupt`` ends a read blocked in another
    thread at once (it shuts the socket down). An owner that is garbage-collected without
    closing its lease has it closed by a finalizer.
    """

    __slots__ = (
        "__weakref__",
        "_done",
        "_lock",
        "_slot",
        "complete",
        "interrupted",
        "loop",
        "op",
        "response",
    )

    def __init__(
        self,
        response: httpx.Response,
        slot: Callable[[], None] | None,
        op: str,
        loop: Any = None,
    ) -> None:
        self.response = response
        self.op = op
        self._slot = slot
        self.loop = loop
        self._lock = threading.Lock()
        self._done = False
        #: The whole body was read: the connection may go back to the pool.
        self.complete = False
        #: Why a read was cut from outside: "" (it was not), "stream" or "client".
        self.interrupted = ""

    def watch(self, owner: object) -> None:
        """Close this lease when ``owner`` is garbage-collected without closing it."""
        # The finalizer holds the lease itself: an owner freed in a reference cycle takes its
        # lease into the same collection, where a weak reference would already be cleared.
        weakref.finalize(owner, _finalize, self)

    # -- reading ---------------------------------------------------------------------------

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive, decoded (sync responses)."""
        inflate = _decoder(self.response, self.op)
        for raw in self.response.stream:  # type: ignore[union-attr]
            if inflate is None:
                yield raw
            else:
                yield from inflate.feed(raw)
        self.complete = True

    def achunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, decoded (async responses)."""
        inflate = _decoder(self.response, self.op)
        stream: Any = self.response.stream
        if inflate is None and hasattr(stream, "ended"):
            body: AsyncIterator[bytes] = stream  # its own iterator, and says when it ended
            return body
        return self._achunks(inflate)

    async def _achunks(self, inflate: _Inflater | None) -> AsyncIterator[bytes]:
        async for raw in self.response.stream:  # type: ignore[union-attr]
            if inflate is None:
                yield raw
            else:
                for out in inflate.feed(raw):
                    yield out
        self.complete = True

    # -- after the last event --------------------------------------------------------------

    def drain(self, chunks: Iterator[bytes], grace: float = DRAIN_GRACE) -> None:
        """Read the rest of a body that is already on its way, without waiting for more.

        A stream that has its final event needs nothing else, but reading the body's end
        lets the connection go back to the pool. Each read of httpcore's connection waits
        at most ``grace`` seconds, so a stalled or broken connection is left to be closed
        (bytes already buffered do not tell: a chunk's closing CRLF alone cannot be parsed
        on). Another transport (the emulator's, a caller's) reads as it reads.
        """
        stream: Any = self.response.extensions.get("network_stream")
        bounded = _bound_reads(stream, grace)
        try:
            for _ in range(_DRAIN_READS):
                try:
                    if next(chunks, None) is None:
                        return
                except httpx.HTTPError:
                    return
        finally:
            if bounded:
                del stream.read  # the class's own method, with the call's timeout, again

    async def adrain(self, chunks: AsyncIterator[bytes], grace: float = DRAIN_GRACE) -> None:
        """Async twin of :meth:`drain`."""
        import asyncio

        for _ in range(_DRAIN_READS):
            step = asyncio.ensure_future(chunks.__anext__())
            done, _ = await asyncio.wait((step,), timeout=grace)
            if not done:
                step.cancel()
                return
            if step.cancelled() or step.exception() is not None:
                return

    def _socket(self) -> Any:
        """The connection's socket: a ``socket.socket``, or asyncio's view of one (which
        may be shut down, not closed, from another thread); ``None`` if not known."""
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is None:  # a backend's body that knows its connection (aiohttp)
            find = getattr(self.response.stream, "socket", None)
            sock = find() if find is not None else None
        return sock if callable(getattr(sock, "shutdown", None)) else None

    # -- giving back -----------------------------------------------------------------------

    def _take(self) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
        return True

    def release(self) -> None:
        """Give the concurrency slot back (once)."""
        slot, self._slot = self._slot, None
        if slot is not None:
            slot()

    def close(self) -> None:
        if not self._take():
            return
        try:
            _discard_if_poisoned(self.response, self.complete)
            self.response.close()
        finally:
            self.release()

    async def aclose(self) -> None:
        if not self._take():
            return
        complete = self.complete or getattr(self.response.stream, "ended", False)
        try:
            _discard_if_poisoned(self.response, complete)
            await self.response.aclose()
            if not complete:
                # The connection is being closed: asyncio closes its socket on the next turn
                # of the loop. Give the slot back after that, so the pool never holds more
                # sockets than slots.
                import asyncio

                await asyncio.sleep(0)
        finally:
            self.release()

    def interrupt(self, closing: bool = False) -> None:
        """Wake a read blocked in another thread: shut the connection's socket down.

        ``closing``: the client is closing (the reader raises ClientClosedError); otherwise
        the stream's owner closed it (the reader ends quietly).
        """
        self.interrupted = "client" if closing else "stream"
        sock = self._socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        wake = getattr(self.response.stream, "wake", None)
        if wake is not None and self.loop is not None:
            # aiohttp may see the shut-down socket only as a half-close it keeps waiting on:
            # its reader is woken on its own loop.
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self.loop.call_soon_threadsafe(wake)

    @property
    def closed(self) -> bool:
        return self._done


def _finalize(lease: Lease) -> None:
    if lease.closed:
        return
    response = lease.response
    if isinstance(response.stream, httpx.SyncByteStream):
        lease.close()
        return
    # An async body cannot be awaited from a finalizer: close it on its loop (which gives
    # the slot back once the connection is closed), or, with the loop gone, give it back now.
    loop = lease.loop
    if loop is not None and not loop.is_closed():
        try:
            loop.call_soon_threadsafe(_close_later, lease)
            return
        except RuntimeError:
            pass  # the loop closed just now
    abandon = getattr(response.stream, "abandon", None)
    if abandon is not None:
        abandon()  # a backend's body that must not touch its closed loop when collected
    lease.release()


_CLOSING: set[Any] = set()  # tasks closing dropped bodies, kept until they finish


def _close_later(lease: Lease) -> None:
    import asyncio

    close_now = getattr(lease.response.stream, "close_now", None)
    if close_now is not None:
        # A body that closes without awaiting: done now, so no task is left for a loop
        # about to close (asyncio.run ends right after the coroutine that dropped it).
        if lease._take():
            try:
                close_now()
            finally:
                lease.release()
        return
    task = asyncio.ensure_future(lease.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


def _discard_if_poisoned(response: httpx.Response, complete: bool) -> None:
    """Never return a connection to the pool with bytes it read beyond the answer.

    A server that sends more than its ``Content-Length`` leaves the rest in the connection's
    buffer, where the next request would read it as its own answer. httpcore does not check
    for this, so look at h11's leftover data and mark the connection failed: httpcore then
    closes it instead of pooling it.
    """
    if not complete:
        return  # a body not read to its end closes its connection anyway
    h11_state = _h11_state(response)
    trailing = getattr(h11_state, "trailing_data", None)
    if trailing is not None and trailing[0]:
        h11_state.send_failed()


def _h11_state(response: httpx.Response) -> Any:
    """The h11 connection under an httpx response on httpcore's HTTP/1.1, if that is what
    carries it (a private path, checked by the fault tests on every release)."""
    stream: Any = response.stream
    stream = getattr(stream, "_stream", stream)  # httpx's BoundSyncStream / BoundAsyncStream
    stream = getattr(getattr(stream, "_httpcore_stream", None), "_stream", None)
    return getattr(getattr(stream, "_connection", None), "_h11_state", None)


def _bound_reads(stream: Any, grace: float) -> bool:
    """Make each read of httpcore's network ``stream`` wait at most ``grace`` seconds (until
    the instance attribute is deleted); False if ``stream`` is not one."""
    read = getattr(stream, "read", None)
    if read is None or "read" in getattr(stream, "__dict__", {"read": None}):
        return False

    def bounded(max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = read(max_bytes, grace if timeout is None else min(timeout, grace))
        return data

    stream.read = bounded
    return True


def read_body(lease: Lease, cap: int, truncate: bool, deadline: float | None) -> bytes:
    """The whole body (sync); refused past ``cap`` bytes, or cut there when ``truncate``."""
    body = _Capped(lease, cap, truncate)
    try:
        for chunk in lease.chunks():
            if body.add(chunk, deadline):
                break
    finally:
        lease.close()
    return b"".join(body.chunks)


async def aread_body(lease: Lease, cap: int, truncate: bool, deadline: float | None) -> bytes:
    """Async twin of :func:`read_body`."""
    body = _Capped(lease, cap, truncate)
    try:
        async for chunk in lease.achunks():
            if body.add(chunk, deadline):
                break
    finally:
        await lease.aclose()
    return b"".join(body.chunks)


class _Capped:
    __slots__ = ("cap", "chunks", "op", "size", "truncate")

    def __init__(self, lease: Lease, cap: int, truncate: bool) -> None:
        declared = lease.response.headers.get("content-length")
        if not truncate and declared and declared.isdigit() and int(declared) > cap:
            lease.close()
            raise ResponseTooLargeError(
                f"answer of {declared} bytes exceeds {cap}", operation=lease.op
            )
        self.cap, self.op, self.truncate = cap, lease.op, truncate
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes, deadline: float | None) -> bool:
        """Keep ``chunk``; True once a truncated body is full."""
        if deadline is not None and time.monotonic() > deadline:
            raise httpx.ReadTimeout("the call's deadline passed while the answer arrived")
        if self.truncate:
            chunk = chunk[: self.cap - self.size]
        self.size += len(chunk)
        if self.size > self.cap:
            raise ResponseTooLargeError(f"answer exceeds {self.cap} bytes", operation=self.op)
        self.chunks.append(chunk)
        return self.truncate and self.size >= self.cap
