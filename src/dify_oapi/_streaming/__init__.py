"""Streamed answers: SSE framing, event decoding and state, the stream classes.

- :mod:`._sse`: the SSE framer (bytes in, frames out).
- :mod:`._state`: what a stream produced so far, kept by each event class's facts.
- :mod:`._decoder`: frames to typed events; a finished stream to the blocking answer.
- :mod:`._stream`: :class:`Stream` and :class:`AsyncStream`.
- :mod:`._binary`: :class:`BinaryStream` and :class:`AsyncBinaryStream`.

Names load on first use, so a blocking call imports none of this.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._binary import AsyncBinaryStream, BinaryStream
    from ._state import StreamState
    from ._stream import AsyncStream, Stream

__all__ = ["AsyncBinaryStream", "AsyncStream", "BinaryStream", "Stream", "StreamState"]

_WHERE = {
    "AsyncBinaryStream": "._binary",
    "BinaryStream": "._binary",
    "AsyncStream": "._stream",
    "Stream": "._stream",
    "StreamState": "._state",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
