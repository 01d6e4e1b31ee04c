"""Server-sent event streams and binary downloads.

Frames are cut from the body's bytes at blank lines. A frame that is one ``data:`` line (all
Dify sends, apart from pings) goes straight to msgspec; any other frame is parsed by
httpx-sse, and so is the whole rest of a stream once it shows a carriage return. Each
``data:`` payload is decoded into the row's tagged union of event structs on the JSON
``event`` field. What the stream has produced so far is kept in a :class:`StreamState` that
travels with any error raised mid-stream.
"""

from __future__ import annotations

import codecs
import os
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from functools import cache
from typing import Any, Generic, TypeVar

import httpx
import msgspec
from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder, SSELineDecoder  # private: pinned in pyproject

from ._codecs import json_decoder
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    DifyError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamInterruptedError,
    status_error_class,
)
from ._table import Endpoint
from .types import events as ev

__all__ = ["AsyncBinaryStream", "AsyncStream", "BinaryStream", "Stream", "StreamState"]

E = TypeVar("E")

_tag_decoder = msgspec.json.Decoder(dict[str, Any])
_MESSAGE, _AGENT_MESSAGE, _TEXT_CHUNK = ev.MessageEvent, ev.AgentMessageEvent, ev.TextChunkEvent
_DELTAS = frozenset((_MESSAGE, _AGENT_MESSAGE, _TEXT_CHUNK))


class StreamState:
    """What a stream has produced so far: ids, answer text, recent events.

    Carried by every error raised mid-stream as ``error.partial``, so a caller can stop the
    task (``task_id``), continue the conversation (``conversation_id``, ``message_id``) or
    re-attach to a workflow run (``workflow_run_id``). The answer text is kept whole;
    ``events`` holds the last :attr:`MAX_EVENTS` events, so a long stream's memory stays flat.
    """

    MAX_EVENTS = 256

    __slots__ = (
        "_chunks",
        "_finals",
        "_keys",
        "_recent",
        "_replaced",
        "conversation_id",
        "count",
        "finished",
        "message_id",
        "task_id",
        "workflow_run_id",
    )

    def __init__(self, resumable: bool = False) -> None:
        self.task_id: str | None = None
        self.message_id: str | None = None
        self.conversation_id: str | None = None
        self.workflow_run_id: str | None = None
        self.finished = False
        self.count = 0
        self._recent: deque[Any] = deque(maxlen=self.MAX_EVENTS)
        self._finals: list[Any] = []  # message_end, workflow_finished, workflow_paused
        # Replay keys of workflow and node events, for dropping what a resumed run repeats.
        self._keys: set[tuple[Any, ...]] | None = set() if resumable else None
        self._chunks: list[str] = []
        self._replaced = False

    @property
    def events(self) -> list[Any]:
        """The last :attr:`MAX_EVENTS` events, oldest first (``count`` says how many came)."""
        return list(self._recent)

    @property
    def answer(self) -> str:
        """The answer text received so far (message, agent_message or text_chunk deltas)."""
        if len(self._chunks) > 1:
            self._chunks[:] = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def _update(self, event: Any) -> None:
        self.count += 1
        self._recent.append(event)
        kind = type(event)
        # Deltas repeat their ids; read them only until they are known.
        if kind is _MESSAGE:
            if self.message_id is None:
                self._ids(event)
            if self._replaced:
                # New Agent apps close with one `message` holding the whole answer.
                self._chunks[:] = [event.answer]
            else:
                self._chunks.append(event.answer)
            return
        if kind is _TEXT_CHUNK:
            if self.workflow_run_id is None:
                self._ids(event)
            if event.data is not None:
                self._chunks.append(event.data.text)
            return
        if kind is _AGENT_MESSAGE:
            if self.message_id is None:
                self._ids(event)
            self._replaced = True
            self._chunks.append(event.answer)
            return
        self._ids(event)
        if kind is ev.MessageReplaceEvent:
            self._chunks[:] = [event.answer]
        elif self._keys is not None and (replay := _replay_key(event)) is not None:
            self._keys.add(replay)
        if kind.final:
            self.finished = True
            self._finals.append(event)

    def _ids(self, event: Any) -> None:
        if type(event) is ev.UnknownEvent:
            raw = event.raw
            for key in ("task_id", "message_id", "conversation_id", "workflow_run_id"):
                value = raw.get(key)
                if isinstance(value, str) and value:
                    setattr(self, key, value)
            return
        if event.task_id:
            self.task_id = event.task_id
        if event.message_id:
            self.message_id = event.message_id
        if event.conversation_id:
            self.conversation_id = event.conversation_id
        if event.workflow_run_id:
            self.workflow_run_id = event.workflow_run_id

    def __repr__(self) -> str:
        return (
            f"<StreamState task_id={self.task_id!r} message_id={self.message_id!r} "
            f"conversation_id={self.conversation_id!r} workflow_run_id={self.workflow_run_id!r} "
            f"events={self.count} answer_chars={len(self.answer)}>"
        )


@cache
def _union_decoder(union: Any) -> tuple[msgspec.json.Decoder[Any], frozenset[str]]:
    members = getattr(union, "__args__", None) or (union,)
    tags = frozenset(m.__struct_config__.tag for m in members)
    return json_decoder(union), tags


class _Decoder:
    """Turns SSE frames into events and keeps the stream's state."""

    __slots__ = (
        "decode",
        "known",
        "max_event_bytes",
        "op",
        "response_type",
        "seen",
        "state",
    )

    def __init__(self, ep: Endpoint, max_event_bytes: int) -> None:
        decoder, self.known = _union_decoder(ep.stream)
        self.decode = decoder.decode
        # The blocking shape collect() builds; a resumed stream keeps the original call's.
        self.response_type = ep.response
        self.op = ep.qualname
        self.state = StreamState(resumable=bool(ep.resume))
        self.max_event_bytes = max_event_bytes
        # Keys of events already delivered before a resume; None on a fresh stream.
        self.seen: set[tuple[Any, ...]] | None = None

    def feed(self, frame: bytes | ServerSentEvent) -> Any:
        """The decoded event, or ``None`` for frames to skip (pings, comments)."""
        data: bytes | str
        if isinstance(frame, bytes):
            data = frame
        elif frame.event == "ping":
            return None
        else:
            data = frame.data
        if not data:
            return None
        try:
            event = self.decode(data)
        except msgspec.ValidationError as exc:
            event = self._fallback(data, exc)
        except UnicodeDecodeError:  # bytes that are not UTF-8: U+FFFD, as httpx-sse would
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            return self.feed(ServerSentEvent(data=text))
        except (msgspec.DecodeError, RecursionError) as exc:
            raise self._malformed(data, exc) from None
        kind = type(event)
        if kind in _DELTAS:  # the bulk of a stream: never replayed, never a failure
            self.state._update(event)
            return event
        if kind is ev.PingEvent:
            return None
        if self.seen is not None and _replay_key(event) in self.seen:
            return None  # a re-attached stream replays node events already delivered
        if kind.raises:
            self.state._update(event)
            status = getattr(event, "status", None) or 500
            message = getattr(event, "message", None) or getattr(event, "error", None)
            raise status_error_class(status)(
                message or f"{kind.__struct_config__.tag} event in stream",
                operation=self.op,
                status_code=status,
                code=getattr(event, "code", None) or kind.__struct_config__.tag,
                body=event.to_dict(),
                partial=self.state,
            )
        self.state._update(event)
        return event

    def _malformed(self, data: bytes | str, exc: BaseException) -> ResponseDecodeError:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return ResponseDecodeError(
            f"malformed stream event: {reason}",
            operation=self.op,
            body=_head(data),
            partial=self.state,
        )

    def _fallback(self, data: bytes | str, exc: msgspec.ValidationError) -> Any:
        try:
            raw = _tag_decoder.decode(data)
        except (msgspec.DecodeError, RecursionError) as error:  # valid JSON, not an object
            raise self._malformed(data, error) from None
        tag = raw.get("event")
        if isinstance(tag, str) and tag not in self.known:
            return ev.UnknownEvent(event=tag, raw=raw)
        if tag is None:
            return ev.UnknownEvent(event="", raw=raw)
        raise ResponseDecodeError(
            f"stream event {tag!r} does not match its schema: {exc}",
            operation=self.op,
            body=_head(data),
            partial=self.state,
        ) from None

    def too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"a stream event exceeded {self.max_event_bytes} bytes",
            operation=self.op,
            partial=self.state,
        )

    def interrupted(self, exc: BaseException | None) -> APIError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"stream stalled: {type(exc).__name__}", operation=self.op, partial=self.state
            )
        reason = f": {type(exc).__name__}: {exc}" if exc else " before its final event"
        return StreamInterruptedError(
            f"stream ended{reason}", operation=self.op, partial=self.state
        )


def _replay_key(event: Any) -> tuple[Any, ...] | None:
    """Identity of a workflow or node event, for dropping replays after a resume."""
    data = getattr(event, "data", None)
    ident = getattr(data, "id", None)
    if ident is None:
        return None
    return (type(event), ident, getattr(data, "index", None), getattr(data, "retry_index", None))


def assemble(state: StreamState, response_type: Any) -> Any:
    """The blocking-mode answer built from a finished stream's state and final events."""
    fields: dict[str, Any] = {
        "answer": state.answer,
        "task_id": state.task_id,
        "message_id": state.message_id,
        "id": state.message_id,
        "conversation_id": state.conversation_id,
        "workflow_run_id": state.workflow_run_id,
        "event": "message",
    }
    for event in state._finals:
        kind = type(event)
        if kind is ev.MessageEndEvent:
            fields["metadata"] = event.metadata
            fields["created_at"] = event.created_at
        elif kind is ev.WorkflowFinishedEvent or kind is ev.WorkflowPausedEvent:
            fields["data"] = event.data
    json_decoder(response_type)  # ready the type's tables under the lock first
    return msgspec.convert({k: v for k, v in fields.items() if v is not None}, response_type)


def _head(data: bytes | str) -> bytes:
    return (data if type(data) is bytes else data.encode())[:4096]  # type: ignore[union-attr]


class _EventTooLarge(Exception):
    """Raised by the framer; the stream turns it into ResponseTooLargeError."""


class _Framer:
    """Cuts SSE frames from body chunks; refuses an event that grows past ``cap`` bytes.

    A frame that is a single ``data:`` line comes out as its payload bytes, ready for
    msgspec. Any other frame (pings, comments, several fields) is parsed by httpx-sse's
    decoder and comes out as its ``ServerSentEvent``. Line ends other than ``\n`` are rare
    enough that, from the first carriage return on, the stream is handed to httpx-sse whole.
    Without the cap a server that never ends an event would exhaust memory; it counts bytes
    after decompression, so a small compressed body cannot hide a huge event.
    """

    __slots__ = ("_buffer", "_cap", "_lines", "_run", "_sse", "_tail", "_text")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._buffer = b""
        self._sse = SSEDecoder()
        self._lines: SSELineDecoder | None = None
        self._text: Any = None
        self._run, self._tail = 0, b""

    def feed(self, chunk: bytes) -> list[bytes | ServerSentEvent]:
        # Byte values, not one-byte strings: `13 in chunk` is a memchr, while `b"\r" in chunk`
        # first tries the argument as an int and pays for the TypeError (10x slower).
        if (
            chunk[:5] == b"data:"  # the usual chunk: exactly one single-line event
            and chunk[-1] == 10 == chunk[-2]
            and not self._buffer
            and self._lines is None
            and chunk.find(b"\n") == len(chunk) - 2
            and 13 not in chunk
        ):
            return [chunk[6:-2] if chunk[5] == 32 else chunk[5:-2]]
        if self._lines is not None or 13 in chunk:
            return self._general(chunk)
        buffer = self._buffer + chunk if self._buffer else chunk
        frames: list[bytes | ServerSentEvent] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            frame = buffer[start:end]
            start = end + 2
            if frame[:5] == b"data:" and 10 not in frame:
                frames.append(frame[6:] if frame[5:6] == b" " else frame[5:])
            elif frame:
                frames.extend(self._parse(frame))
        self._buffer = buffer[start:] if start else buffer
        if len(self._buffer) > self._cap:
            raise _EventTooLarge
        return frames

    def _parse(self, frame: bytes) -> list[bytes | ServerSentEvent]:
        decode = self._sse.decode
        for line in frame.decode("utf-8", "replace").split("\n"):
            decode(line)
        event = decode("")
        return [] if event is None else [event]

    def _general(self, chunk: bytes) -> list[bytes | ServerSentEvent]:
        if self._lines is None:
            self._lines = SSELineDecoder()
            self._text = codecs.getincrementaldecoder("utf-8")("replace")
            chunk, self._buffer = self._buffer + chunk, b""
        self._measure(chunk)
        decode = self._sse.decode
        return [
            sse
            for line in self._lines.decode(self._text.decode(chunk))
            if (sse := decode(line)) is not None
        ]

    def close(self) -> list[bytes | ServerSentEvent]:
        """Frames completed by the end of the body (a final ``\\r`` ends a line only there)."""
        if self._lines is None:
            return []  # an unterminated last event is dropped, as the SSE spec says
        rest = self._text.decode(b"", final=True)
        lines = [*(self._lines.decode(rest) if rest else ()), *self._lines.flush()]
        decode = self._sse.decode
        return [sse for line in lines if (sse := decode(line)) is not None]

    def _measure(self, chunk: bytes) -> None:
        """Bytes since the last blank line (two line ends in a row), checked against the cap."""
        joined = self._tail + chunk
        end = max(joined.rfind(b"\n\n"), joined.rfind(b"\r\r"), joined.rfind(b"\n\r"))
        if end >= 0:
            end += 2
            if joined[end - 1 : end] == b"\r" and joined[end : end + 1] == b"\n":
                end += 1  # the blank line was a CRLF
            self._run = len(joined) - end
        else:
            self._run += len(chunk)
        self._tail = joined[-2:]
        if self._run > self._cap:
            raise _EventTooLarge


class _StreamBase:
    __slots__ = ("_decoder", "_iterator", "_resumer", "response")

    def __init__(
        self,
        response: httpx.Response,
        ep: Endpoint,
        max_event_bytes: int,
        resumer: Callable[[StreamState], Any] | None = None,
    ) -> None:
        self.response = response
        self._decoder = _Decoder(ep, max_event_bytes)
        self._resumer = resumer
        # Module-level generators hold the response and decoder, not the stream itself, so
        # dropping the stream frees it (and its connection) at once, without a GC cycle.
        self._iterator: Any = (_aevents if self._is_async else _events)(response, self._decoder)

    _is_async = False

    @property
    def state(self) -> StreamState:
        """Ids, answer text and recent events received so far."""
        return self._decoder.state

    @property
    def answer(self) -> str:
        return self._decoder.state.answer

    @property
    def task_id(self) -> str | None:
        return self._decoder.state.task_id

    @property
    def conversation_id(self) -> str | None:
        return self._decoder.state.conversation_id

    @property
    def message_id(self) -> str | None:
        return self._decoder.state.message_id

    @property
    def workflow_run_id(self) -> str | None:
        return self._decoder.state.workflow_run_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._decoder.op} {self._decoder.state!r}>"

    def _check_resumable(self) -> Callable[[StreamState], Any]:
        if self._resumer is None:
            raise DifyError(f"{self._decoder.op} streams cannot be resumed")
        if not self._decoder.state.workflow_run_id:
            raise DifyError(f"{self._decoder.op}: no workflow_run_id received; cannot resume")
        return self._resumer

    def _adopt(self, previous: _StreamBase) -> None:
        """Continue ``previous``: same state, and drop events it already delivered."""
        decoder = self._decoder
        decoder.state = previous._decoder.state
        decoder.response_type = previous._decoder.response_type
        decoder.seen = set(decoder.state._keys or ())
        self._resumer = previous._resumer


class Stream(_StreamBase, Generic[E]):
    """Iterate to receive events; leaving the loop early closes the connection.

    Use it as a context manager, or call :meth:`close`, when you may stop before the end.
    """

    __slots__ = ()
    _iterator: Generator[Any, None, None]

    def collect(self) -> Any:
        """Read the whole stream and return the operation's blocking-mode answer."""
        if self._decoder.response_type is None:
            raise DifyError(f"{self._decoder.op} has no blocking form to collect into")
        for _ in self._iterator:
            pass
        return assemble(self._decoder.state, self._decoder.response_type)

    def resume(self) -> Stream[E]:
        """Re-attach to the workflow run and continue where this stream stopped.

        The new stream carries this one's state; node events it replays are dropped.
        """
        resumer = self._check_resumable()
        self.close()
        stream: Stream[E] = resumer(self._decoder.state)
        stream._adopt(self)
        return stream

    def follow(self, max_resumes: int = 3) -> Iterator[E | ev.UnknownEvent]:
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
                if resumes >= max_resumes or stream._resumer is None:
                    raise
                resumes += 1
                stream = stream.resume()

    def __iter__(self) -> Iterator[E | ev.UnknownEvent]:
        # Each loop gets its own generator: breaking out of the loop drops it, and that
        # closes the connection.
        try:
            yield from self._iterator
        finally:
            self._iterator.close()

    def __next__(self) -> E | ev.UnknownEvent:
        result: E | ev.UnknownEvent = next(self._iterator)
        return result

    def close(self) -> None:
        self._iterator.close()
        self.response.close()

    def __del__(self) -> None:
        # A stream dropped before its first event never ran its generator's cleanup.
        response = getattr(self, "response", None)
        if response is not None and not response.is_closed:
            response.close()

    def __enter__(self) -> Stream[E]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(_StreamBase, Generic[E]):
    """Async twin of :class:`Stream`: ``async for event in stream``."""

    __slots__ = ()
    _iterator: AsyncGenerator[Any, None]
    _is_async = True

    async def collect(self) -> Any:
        """Read the whole stream and return the operation's blocking-mode answer."""
        if self._decoder.response_type is None:
            raise DifyError(f"{self._decoder.op} has no blocking form to collect into")
        async for _ in self._iterator:
            pass
        return assemble(self._decoder.state, self._decoder.response_type)

    async def resume(self) -> AsyncStream[E]:
        """Re-attach to the workflow run and continue where this stream stopped."""
        resumer = self._check_resumable()
        await self.close()
        stream: AsyncStream[E] = await resumer(self._decoder.state)
        stream._adopt(self)
        return stream

    async def follow(self, max_resumes: int = 3) -> AsyncIterator[E | ev.UnknownEvent]:
        """Async twin of :meth:`Stream.follow`."""
        stream: AsyncStream[E] = self
        resumes = 0
        while True:
            try:
                async for event in stream:
                    yield event
                return
            except APIConnectionError:
                if resumes >= max_resumes or stream._resumer is None:
                    raise
                resumes += 1
                stream = await stream.resume()

    async def __aiter__(self) -> AsyncIterator[E | ev.UnknownEvent]:
        try:
            async for event in self._iterator:
                yield event
        finally:
            await self._iterator.aclose()

    async def __anext__(self) -> E | ev.UnknownEvent:
        result: E | ev.UnknownEvent = await self._iterator.__anext__()
        return result

    async def close(self) -> None:
        await self._iterator.aclose()
        await self.response.aclose()

    async def __aenter__(self) -> AsyncStream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _events(response: httpx.Response, decoder: _Decoder) -> Generator[Any, None, None]:
    feed = decoder.feed
    framer = _Framer(decoder.max_event_bytes)
    try:
        for chunk in response.iter_bytes():
            for frame in framer.feed(chunk):
                event = feed(frame)
                if event is not None:
                    yield event
        for frame in framer.close():
            event = feed(frame)
            if event is not None:
                yield event
    except httpx.TransportError as exc:
        raise decoder.interrupted(exc) from exc
    except _EventTooLarge:
        raise decoder.too_large() from None
    finally:
        response.close()
    if not decoder.state.finished:
        raise decoder.interrupted(None)


async def _aevents(response: httpx.Response, decoder: _Decoder) -> AsyncGenerator[Any, None]:
    feed = decoder.feed
    framer = _Framer(decoder.max_event_bytes)
    try:
        async for chunk in response.aiter_bytes():
            for frame in framer.feed(chunk):
                event = feed(frame)
                if event is not None:
                    yield event
        for frame in framer.close():
            event = feed(frame)
            if event is not None:
                yield event
    except httpx.TransportError as exc:
        raise decoder.interrupted(exc) from exc
    except _EventTooLarge:
        raise decoder.too_large() from None
    finally:
        await response.aclose()
    if not decoder.state.finished:
        raise decoder.interrupted(None)


class BinaryStream:
    """A binary answer read in chunks, never held whole in memory."""

    __slots__ = ("operation", "response")

    def __init__(self, response: httpx.Response, operation: str) -> None:
        self.response = response
        self.operation = operation

    @property
    def content_type(self) -> str | None:
        content_type: str | None = self.response.headers.get("content-type")
        return content_type

    def iter_bytes(self, chunk_size: int = 65536) -> Iterator[bytes]:
        try:
            yield from self.response.iter_bytes(chunk_size)
        except httpx.TransportError as exc:
            raise APIConnectionError(
                f"download interrupted: {type(exc).__name__}", operation=self.operation
            ) from exc
        finally:
            self.response.close()

    def write_to(self, path: str | os.PathLike[str], chunk_size: int = 65536) -> int:
        """Write the body to ``path`` chunk by chunk; returns the number of bytes."""
        written = 0
        with open(path, "wb") as f:
            for chunk in self.iter_bytes(chunk_size):
                f.write(chunk)
                written += len(chunk)
        return written

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> BinaryStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncBinaryStream:
    """Async twin of :class:`BinaryStream`."""

    __slots__ = ("operation", "response")

    def __init__(self, response: httpx.Response, operation: str) -> None:
        self.response = response
        self.operation = operation

    @property
    def content_type(self) -> str | None:
        content_type: str | None = self.response.headers.get("content-type")
        return content_type

    async def iter_bytes(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.TransportError as exc:
            raise APIConnectionError(
                f"download interrupted: {type(exc).__name__}", operation=self.operation
            ) from exc
        finally:
            await self.response.aclose()

    async def write_to(self, path: str | os.PathLike[str], chunk_size: int = 65536) -> int:
        """Write the body to ``path`` chunk by chunk; returns the number of bytes."""
        written = 0
        with open(path, "wb") as f:
            async for chunk in self.iter_bytes(chunk_size):
                f.write(chunk)
                written += len(chunk)
        return written

    async def close(self) -> None:
        await self.response.aclose()

    async def __aenter__(self) -> AsyncBinaryStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
