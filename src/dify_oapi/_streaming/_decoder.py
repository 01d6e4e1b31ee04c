"""Turning SSE frames into typed events, and a finished stream into the blocking answer.

Each ``data:`` payload is decoded into the row's tagged union of event structs on the JSON
``event`` field; a type this SDK does not know arrives as ``UnknownEvent``. Events flagged
``raises`` become typed errors carrying the stream's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from httpx_sse import ServerSentEvent

from .._codecs import json_decoder
from .._exceptions import (
    APIError,
    APIStatusError,
    APITimeoutError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamInterruptedError,
    status_error_class,
)
from .._secret import Secret, mask
from ..types.events import UnknownEvent
from ._state import StreamState, _path, plan_of, replay_key

if TYPE_CHECKING:
    from .._hooks import Hooks
    from .._table import Endpoint

__all__ = ["Decoder", "assemble"]

_tag_decoder = msgspec.json.Decoder(dict[str, Any])


@cache
def _union(union: Any) -> tuple[msgspec.json.Decoder[Any], frozenset[str], frozenset[type]]:
    members = getattr(union, "__args__", None) or (union,)
    tags = frozenset(m.__struct_config__.tag for m in members)
    # The bulk of a stream: events that only add text, never end it and never fail.
    plain = frozenset(
        m for m in members if m.delta and not (m.final or m.raises is not None or m.replay)
    )
    return json_decoder(union), tags, plain


class Decoder:
    """Frames in, events out; keeps the stream's :class:`StreamState`."""

    __slots__ = (
        "decode",
        "endpoint",
        "hooks",
        "known",
        "max_event_bytes",
        "op",
        "origin",
        "plain",
        "secret",
        "seen",
        "state",
        "stopped",
    )

    def __init__(
        self,
        ep: Endpoint,
        max_event_bytes: int,
        secret: Secret | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        decoder, self.known, self.plain = _union(ep.stream)
        self.decode = decoder.decode
        self.endpoint = ep
        # The row of the original call: collect() builds its blocking shape, and its links
        # (resume, stop) still apply after a re-attach.
        self.origin = ep
        self.op = ep.qualname
        self.state = StreamState(resumable=ep.resume is not None, in_run=ep.in_run)
        self.max_event_bytes = max_event_bytes
        self.secret = secret
        self.hooks = hooks.handlers("on-event", ep.qualname) if hooks else ()
        # Keys of events already delivered before a resume; None on a fresh stream.
        self.seen: set[tuple[Any, ...]] | None = None
        # Ids of runs the client asked to stop (shared with it): a failure that ends one
        # of them is a stop.
        self.stopped: Mapping[str, Any] | None = None

    def feed(self, frame: bytes | ServerSentEvent) -> Any:
        """The decoded event, or ``None`` for frames to skip (pings, comments)."""
        data: bytes | str
        data = frame if type(frame) is bytes else frame.data  # type: ignore[union-attr]
        if not data:
            return None
        try:
            event = self.decode(data)
        except msgspec.ValidationError as exc:
            event = self._fallback(data, exc)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
            if isinstance(data, bytes) and _not_utf8(data):
                # Bytes that are not UTF-8 become U+FFFD, as a text decoder would make them.
                return self.feed(ServerSentEvent(data=data.decode("utf-8", "replace")))
            raise self._malformed(data, exc) from None
        kind = type(event)
        state = self.state
        if kind in self.plain:
            state.update(event)
        else:
            plan = plan_of(kind)
            if kind.skip:  # type: ignore[attr-defined]
                return None
            if self.seen is not None and plan.replay is not None:
                key = replay_key(event)
                if key and key in self.seen:
                    return None  # a re-attached stream replays events already delivered
            if (kind.raises or kind.failure) and self._echoes_key(data):  # type: ignore[attr-defined]
                # A failure the server reported with the key in it is kept (in the state an
                # error carries) and raised with the key masked.
                event = msgspec.convert(mask(msgspec.to_builtins(event), self.secret), kind)
            state.update(event)
            if state.failed and kind.failure is not None:  # type: ignore[attr-defined]
                self._mark_stop(event)
            if kind.raises is not None:  # type: ignore[attr-defined]
                raise self._reported(event, kind.raises)  # type: ignore[attr-defined]
        for hook in self.hooks:
            hook(self.endpoint, event, state)
        return event

    def _mark_stop(self, event: Any) -> None:
        """A failed run this client asked to stop was stopped: say so in state and event."""
        state = self.state
        link = self.origin.stop
        if not state.stop_requested and link is not None and self.stopped:
            ids = state.ids
            state.stop_requested = any(ids.get(n) in self.stopped for n in link.from_state)
        where = type(event).stopped
        if state.stop_requested and where is not None:
            path, value = where
            parent, _, name = path.rpartition(".")
            holder = _path(parent)(event) if parent else event
            if holder is not None:
                setattr(holder, name, value)

    def _echoes_key(self, data: bytes | str) -> bool:
        secret = self.secret
        if secret is None:
            return False
        if isinstance(data, bytes):
            return secret.reveal().encode() in data
        return secret.reveal() in data

    def _reported(self, event: Any, paths: tuple[str, str, str]) -> APIStatusError:
        status_at, code_at, message_at = (_path(p) for p in paths)
        status = status_at(event)
        status = status if isinstance(status, int) and 400 <= status < 600 else 500
        code = code_at(event)
        message = message_at(event)
        tag = type(event).__struct_config__.tag
        return status_error_class(status)(
            mask(message, self.secret) or f"{tag} event in stream",
            operation=self.op,
            status_code=status,
            code=code if isinstance(code, str) and code else tag,
            body=mask(event.to_dict(), self.secret),
            partial=self.state,
        )

    def _malformed(self, data: bytes | str, exc: BaseException) -> ResponseDecodeError:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return ResponseDecodeError(
            f"malformed stream event: {reason}",
            operation=self.op,
            body=mask(_head(data), self.secret),
            partial=self.state,
        )

    def _fallback(self, data: bytes | str, exc: msgspec.ValidationError) -> Any:
        try:
            raw = _tag_decoder.decode(data)
        except (msgspec.DecodeError, RecursionError) as error:  # valid JSON, not an object
            raise self._malformed(data, error) from None
        tag = raw.get("event")
        if isinstance(tag, str) and tag not in self.known:
            return UnknownEvent(event=tag, raw=raw)
        if tag is None:
            return UnknownEvent(event="", raw=raw)
        raise ResponseDecodeError(
            f"stream event {tag!r} does not match its schema: {mask(str(exc), self.secret)}",
            operation=self.op,
            body=mask(_head(data), self.secret),
            partial=self.state,
        ) from None

    def too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"a stream event exceeded {self.max_event_bytes} bytes",
            operation=self.op,
            partial=self.state,
        )

    def interrupted(self, exc: BaseException | None, why: str = "") -> APIError:
        if why:
            return APITimeoutError(why, operation=self.op, partial=self.state)
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"stream stalled: {type(exc).__name__}", operation=self.op, partial=self.state
            )
        if exc is None:
            return StreamInterruptedError(
                "stream ended before its final event", operation=self.op, partial=self.state
            )
        return StreamInterruptedError(
            f"stream ended: {type(exc).__name__}: {mask(str(exc), self.secret)}",
            operation=self.op,
            partial=self.state,
        )


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def assemble(state: StreamState, ep: Endpoint) -> Any:
    """The blocking answer built from a finished stream, as the row's ``collect`` says.

    Ids and the answer text come from the state, fields from the events that declare
    ``collect``, constants from the row and from events that declare ``sets``. A run that
    reported failure raises as the blocking call would, where the row says so.
    """
    collect = ep.collect
    fields: dict[str, Any] = dict(collect.set) if collect is not None else {}
    fields.update(state.sets)
    fields.update(state.ids)
    if collect is not None and collect.text:
        fields[collect.text] = state.answer
    for event in state.finals:
        for name in type(event).collect:
            value = getattr(event, name, None)
            if value is not None:
                fields[name] = value
    if state.stopped and collect is not None:
        fields.update(collect.stopped)
    if state.failed and not state.stopped and collect is not None and collect.failure:
        failure = collect.failure
        status = int(failure.get("status", 400))
        message = str(failure.get("message", "{error}")).format(error=state.error or "")
        raise status_error_class(status)(
            message,
            operation=ep.qualname,
            status_code=status,
            code=failure.get("code"),
            body={"code": failure.get("code"), "message": message, "status": status},
            partial=state,
        )
    tp = ep.response
    json_decoder(tp)  # ready the type's tables under the lock first
    return msgspec.convert(fields, tp)


def _head(data: bytes | str) -> bytes:
    return (data if type(data) is bytes else data.encode())[:4096]  # type: ignore[union-attr]
