"""Server-sent event bodies: frames produced one by one as the client reads them.

A :class:`Feed` pulls the next event of a task only when the client asks for the next
frame, so a ``stop`` sent mid-stream (or a cut injected by a test) takes effect at the
next event, exactly where the client is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import msgspec

from ._state import Record, Task

__all__ = ["PING", "Cut", "Feed", "frame"]

PING = b"event: ping\n\n"
_encode = msgspec.json.encode


def frame(event: Record) -> bytes:
    return b"data: " + _encode(event) + b"\n\n"


class Cut(Exception):
    """The stream is cut here (``Emulator.cut_stream_after``): no closing chunk is sent."""


class Feed:
    """The frames of one event stream: a ping, then fixed events, then a task's events."""

    def __init__(
        self,
        lock: threading.RLock,
        task: Task | None,
        prefix: list[Record] | None = None,
        *,
        cut_after: int | None = None,
        delay: float = 0.0,
        ping: bool = True,
    ) -> None:
        self._lock = lock
        self._task = task
        self._prefix = list(prefix or ())
        self._cut_after = cut_after
        self.delay = delay
        self._pinged = not ping
        self.on_close: Callable[[], None] | None = None  # frees the app's request slot
        self.sent = 0  # data events sent

    def next_frame(self) -> bytes | None:
        """The next frame, ``None`` at the end; raises :class:`Cut` where a cut was injected."""
        with self._lock:
            if not self._pinged:
                self._pinged = True
                return PING
            if self._cut_after is not None and self.sent >= self._cut_after:
                raise Cut
            if self._prefix:
                event: Record | None = self._prefix.pop(0)
            else:
                event = self._task.next() if self._task is not None else None
            if event is None:
                return None
            self.sent += 1
            return frame(event)

    def close(self) -> None:
        """The stream ended or its reader left (once)."""
        release, self.on_close = self.on_close, None
        if release is not None:
            release()

    def _pull(self) -> bytes | None:
        try:
            chunk = self.next_frame()
        except Cut:
            self.close()
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ) from None
        if chunk is None:
            self.close()
        return chunk

    # The delay comes before an event is taken, so a stop sent meanwhile applies to it.

    def iter_frames(self) -> Iterator[bytes]:
        while True:
            if self.delay and self._pinged:
                time.sleep(self.delay)
            chunk = self._pull()
            if chunk is None:
                return
            yield chunk

    async def aiter_frames(self) -> AsyncIterator[bytes]:
        while True:
            if self.delay and self._pinged:
                await asyncio.sleep(self.delay)
            chunk = self._pull()
            if chunk is None:
                return
            yield chunk


class SyncBody(httpx.SyncByteStream):
    def __init__(self, feed: Feed) -> None:
        self._feed = feed

    def __iter__(self) -> Iterator[bytes]:
        return self._feed.iter_frames()

    def close(self) -> None:
        self._feed.close()


class AsyncBody(httpx.AsyncByteStream):
    def __init__(self, feed: Feed) -> None:
        self._feed = feed

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._feed.aiter_frames()

    async def aclose(self) -> None:
        self._feed.close()
