"""The public event streams: iterate to receive typed events as they arrive.

A stream reads its body through a :class:`~dify_oapi._transport.Lease`, so however it ends
— consumed, left early, closed (also from another thread), never iterated, dropped — its
connection and concurrency slot come back. Once the stream's final event has arrived it
reads no further: an unclean close or a stall after it cannot turn a finished answer into
an error. The iterators are plain objects, not generators, so ``close()`` from another
thread is safe and the garbage collector never has to finish one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from .._exceptions import APIConnectionError, ClientClosedError, DifyError
from .._hooks import in_scope
from ..types.events import RunIds, UnknownEvent
from ._decoder import Decoder, assemble
from ._sse import EventTooLarge, Framer
from ._state import StreamState

if TYPE_CHECKING:
    from .._hooks import Hooks
    from .._secret import Secret
    from .._table import Endpoint
    from .._transport import Lease

__all__ = ["AsyncStream", "Stream"]

E = TypeVar("E")


class _StreamBase(RunIds):
    __slots__ = (
        "__weakref__",
        "_chunks",
        "_deadline",
        "_decoder",
        "_ended",
        "_error",
        "_follow",
        "_framer",
        "_idle",
        "_last_event",
        "_lease",
        "_lock",
        "_on_end",
        "_pending",
        "_reading",
        "response",
    )

    def __init__(
        self,
        lease: Lease,
        ep: Endpoint,
        max_event_bytes: int,
        *,
        secret: Secret | None = None,
        hooks: Hooks | None = None,
        deadline: float | None = None,
        idle_timeout: float | None = None,
        follow: Callable[[str, StreamState], Any] | None = None,
        stopped: Mapping[str, Any] | None = None,
    ) -> None:
        self._lease = lease
        self.response: httpx.Response = lease.response
        self._decoder = Decoder(ep, max_event_bytes, secret, hooks)
        self._decoder.stopped = stopped
        self._framer = Framer(max_event_bytes)
        self._follow = follow
        self._deadline = deadline
        self._idle = idle_timeout
        self._last_event = time.monotonic()
        self._chunks: Any = None
        self._pending: deque[Any] = deque()
        self._error: BaseException | None = None
        self._ended = False
        self._reading = False
        self._lock = threading.Lock()
        self._on_end: tuple[Any, ...] | None = None
        lease.watch(self)

    # -- the call's end (hook point on-end) --------------------------------------------------

    def _end_with(self, ep: Endpoint, handlers: tuple[Any, ...], data: dict[Any, Any]) -> None:
        """Run ``handlers`` once, when this stream ends, fails or is closed."""
        self._on_end = (ep, handlers, data)

    def _over(self, error: BaseException | None) -> None:
        with self._lock:
            ending, self._on_end = self._on_end, None
        if ending is not None:
            ep, handlers, data = ending
            with in_scope(data):  # the handlers see the dict of the call that made the stream
                for handler in handlers:
                    handler(ep, self, error)

    # -- what arrived ----------------------------------------------------------------------

    def _id(self, name: str) -> str | None:
        return self._decoder.state.ids.get(name)

    @property
    def state(self) -> StreamState:
        """Ids, answer text and recent events received so far."""
        return self._decoder.state

    @property
    def answer(self) -> str:
        return self._decoder.state.answer

    @property
    def closed(self) -> bool:
        return self._ended

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._decoder.op} {self._decoder.state!r}>"

    # -- turning chunks into events (shared by both iterators) -------------------------------

    def _take(self, chunk: bytes | None) -> bool:
        """Frame and decode one chunk (``None``: the body ended) into the pending events;
        True once the stream is over (its final event came, or it failed, or it ended)."""
        decoder = self._decoder
        pending = self._pending
        try:
            frames = self._framer.feed(chunk) if chunk is not None else self._framer.close()
            state = decoder.state
            for frame in frames:
                if state.finished:
                    break  # nothing after the final event belongs to the stream
                event = decoder.feed(frame)
                if event is not None:
                    pending.append(event)
        except EventTooLarge:
            self._error = decoder.too_large()
        except DifyError as exc:  # an error event, a malformed event: deliver what came first
            # Raised again later without the frames that held the raw bytes, so a traceback
            # that shows locals never shows a key the server echoed.
            self._error = exc.with_traceback(None)
        idle, deadline = self._idle, self._deadline
        if idle is not None or deadline is not None:
            now = time.monotonic()
            if pending:
                self._last_event = now
            elif idle is not None and now - self._last_event > idle and not self._error:
                self._error = decoder.interrupted(
                    None, f"no event for {idle:g}s (idle_timeout); keep-alives do not count"
                )
            if deadline is not None and now > deadline and not self._error:
                self._error = decoder.interrupted(None, "the call's deadline passed mid-stream")
        finished = decoder.state.finished
        if self._error is None and chunk is None and not finished:
            self._error = decoder.interrupted(None)
        return self._error is not None or finished or chunk is None

    def _failure(self, exc: httpx.TransportError) -> BaseException | None:
        """What a transport failure means here; ``None``: the stream ends quietly."""
        why = self._lease.interrupted
        if why == "stream" or self._decoder.state.finished:
            return None  # closed by its owner, or after the final event: nothing is lost
        if why == "client":
            return ClientClosedError(f"{self._decoder.op}: the client closed this stream")
        if isinstance(exc, httpx.TimeoutException) and self._idle is not None:
            return self._decoder.interrupted(None, f"no event for {self._idle:g}s (idle_timeout)")
        return self._decoder.interrupted(exc)

    def _close_request(self) -> bool:
        """Mark closed; True when a reader is mid-read (it closes the lease itself).

        No lock: the reader stores ``_reading = False`` and then loads ``_ended``; this
        stores ``_ended`` and then loads ``_reading``. In either order one side sees the
        other's store, so the lease is closed at least once (closing is idempotent), and a
        read still in progress is interrupted.
        """
        self._ended = True
        reading = self._reading
        if reading:
            self._lease.interrupt()
        return reading

    def _check_link(self, what: str) -> Callable[[str, StreamState], Any]:
        op = self._decoder.op
        link = getattr(self._decoder.origin, what)
        if self._follow is None or link is None:
            raise DifyError(f"{op} streams cannot {what}")
        missing = [n for n in link.from_state if not self._decoder.state.ids.get(n)]
        if missing:
            raise DifyError(f"{op}: no {', '.join(missing)} received yet; cannot {what}")
        return self._follow

    def _adopt(self, previous: _StreamBase) -> None:
        """Continue ``previous``: same state, and drop events it already delivered."""
        decoder = self._decoder
        decoder.state = previous._decoder.state
        decoder.origin = previous._decoder.origin
        decoder.seen = decoder.state.replay_keys()
        decoder.stopped = previous._decoder.stopped
        decoder.state.finished = False
        self._follow = previous._follow


class Stream(_StreamBase, Generic[E]):
    """Iterate to receive events; leaving the loop early closes the connection.

    Use it as a context manager, or call :meth:`close`, when you may stop before the end.
    """

    __slots__ = ()

    def __iter__(self) -> Iterator[E | UnknownEvent]:
        # Each loop gets its own generator: breaking out of the loop drops it, and that
        # closes the connection. close() from another thread never touches the generator.
        pending = self._pending
        try:
            while True:
                while pending:  # the hot path: events framed from one chunk, no call per event
                    yield pending.popleft()
                if self._ended:
                    error, self._error = self._error, None
                    if error is not None:
                        raise error
                    return
                self._read()
        finally:
            if not self._ended:
                self.close()

    def __next__(self) -> E | UnknownEvent:
        pending = self._pending
        while not pending:
            if self._ended:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopIteration
            self._read()
        event: E | UnknownEvent = pending.popleft()
        return event

    def _read(self) -> None:
        """Read until an event is pending or the stream is over."""
        lease = self._lease
        # One store needs no lock: a close() that comes before it is answered by the lease
        # it closed; one after it sees True and interrupts the read (see _close_request).
        self._reading = True
        try:
            chunks = self._chunks
            if chunks is None:
                chunks = self._chunks = lease.chunks()
            while True:
                try:
                    chunk = next(chunks, None)
                except httpx.TransportError as exc:
                    self._error = self._failure(exc)
                    self._ended = True
                    return
                if self._take(chunk):
                    self._ended = True
                    if chunk is not None and self._decoder.state.finished:
                        lease.drain(chunks)
                    return
                if self._pending:
                    return
        except BaseException as exc:
            self._ended = True
            if self._on_end is not None:
                self._over(exc)
            raise
        finally:
            self._reading = False
            if self._ended:  # over, or closed from another thread meanwhile
                lease.close()
            if self._ended and self._on_end is not None:
                self._over(self._error)

    def close(self) -> None:
        """Close the connection; from another thread, the read in progress ends at once."""
        if not self._close_request():
            self._lease.close()
        if self._on_end is not None:
            self._over(None)

    def collect(self) -> Any:
        """Read the whole stream and return the operation's blocking-mode answer."""
        row = self._decoder.origin
        if row.response is None:
            raise DifyError(f"{row.qualname} has no blocking form to collect into")
        for _ in self:
            pass
        return assemble(self._decoder.state, row)

    def resume(self) -> Stream[E]:
        """Re-attach to the run and continue where this stream stopped.

        The new stream carries this one's state; events it replays are dropped.
        """
        follow = self._check_link("resume")
        self.close()
        stream: Stream[E] = follow("resume", self._decoder.state)
        stream._adopt(self)
        return stream

    def stop(self) -> Any:
        """Ask the server to stop this generation; the stream then ends as the server says.

        The stream's state remembers that this client asked (``state.stopped``).
        """
        follow = self._check_link("stop")
        self._decoder.state.stop_requested = True
        return follow("stop", self._decoder.state)

    def follow(self, max_resumes: int = 3) -> Iterator[E | UnknownEvent]:
        """Iterate, re-attaching up to ``max_resumes`` times when the connection breaks.

        Events the server replays after a re-attach are dropped, so the events seen are
        those of one uninterrupted run.
        """
        stream: Stream[E] = self
        resumes = 0
        while True:
            try:
                yield from stream
                return
            except APIConnectionError:
                if resumes >= max_resumes or stream._decoder.origin.resume is None:
                    raise
                resumes += 1
                stream = stream.resume()

    def __enter__(self) -> Stream[E]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(_StreamBase, Generic[E]):
    """Async twin of :class:`Stream`: ``async for event in stream``."""

    __slots__ = ()

    def __aiter__(self) -> AsyncIterator[E | UnknownEvent]:
        return self

    async def __anext__(self) -> E | UnknownEvent:
        pending = self._pending
        if pending:  # the hot path: events framed from one chunk
            event: E | UnknownEvent = pending.popleft()
            return event
        if not self._ended:
            # The read is here, not in a coroutine of its own: one call fewer per chunk.
            lease = self._lease
            # One store needs no lock: a close() that comes before it is answered by the
            # lease it closed; one after it sees True and interrupts the read (see
            # _close_request).
            self._reading = True
            try:
                chunks = self._chunks
                if chunks is None:
                    chunks = self._chunks = lease.achunks().__aiter__()
                while not pending:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        chunk = None
                    except httpx.TransportError as exc:
                        self._error = self._failure(exc)
                        self._ended = True
                        break
                    if self._take(chunk):
                        self._ended = True
                        if chunk is not None and self._decoder.state.finished:
                            await lease.adrain(chunks)
                        break
            except BaseException as exc:
                self._ended = True  # cancelled or failed mid-read: nothing more will be read
                if self._on_end is not None:
                    self._over(exc)
                raise
            finally:
                self._reading = False
                if self._ended:  # over, or closed meanwhile
                    await lease.aclose()
                if self._ended and self._on_end is not None:
                    self._over(self._error)
            # The raw bytes may hold a key the server echoed; the error raised below keeps
            # this frame, and a traceback printer that shows locals would show them.
            chunk = None
            if pending:
                event = pending.popleft()
                return event
        error, self._error = self._error, None
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def close(self) -> None:
        """Close the connection; from another thread, the read in progress ends at once."""
        if not self._close_request():
            await self._lease.aclose()
        if self._on_end is not None:
            self._over(None)

    async def aclose(self) -> None:
        await self.close()

    async def collect(self) -> Any:
        """Read the whole stream and return the operation's blocking-mode answer."""
        row = self._decoder.origin
        if row.response is None:
            raise DifyError(f"{row.qualname} has no blocking form to collect into")
        async for _ in self:
            pass
        return assemble(self._decoder.state, row)

    async def resume(self) -> AsyncStream[E]:
        """Re-attach to the run and continue where this stream stopped."""
        follow = self._check_link("resume")
        await self.close()
        stream: AsyncStream[E] = await follow("resume", self._decoder.state)
        stream._adopt(self)
        return stream

    async def stop(self) -> Any:
        """Async twin of :meth:`Stream.stop`."""
        follow = self._check_link("stop")
        self._decoder.state.stop_requested = True
        return await follow("stop", self._decoder.state)

    async def follow(self, max_resumes: int = 3) -> AsyncIterator[E | UnknownEvent]:
        """Async twin of :meth:`Stream.follow`."""
        stream: AsyncStream[E] = self
        resumes = 0
        while True:
            try:
                async for event in stream:
                    yield event
                return
            except APIConnectionError:
                if resumes >= max_resumes or stream._decoder.origin.resume is None:
                    raise
                resumes += 1
                stream = await stream.resume()

    async def __aenter__(self) -> AsyncStream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
