"""SSE framing written by hand on bytes, as the raw floors and a peer's user do it."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any


def frames(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """SSE frames (separated by a blank line) from chunks cut anywhere."""
    buf = b""
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            yield buf[start:end]
            start = end + 2
        buf = buf[start:]


def events(chunks: Iterable[bytes], decode: Callable[[bytes], Any]) -> Iterator[Any]:
    """Decoded ``data:`` frames; data-less frames (``event: ping``) are skipped."""
    for f in frames(chunks):
        if f.startswith(b"data: "):
            yield decode(f[6:])


async def aevents(
    chunks: AsyncIterable[bytes], decode: Callable[[bytes], Any]
) -> AsyncIterator[Any]:
    """:func:`events` for an async body."""
    rest = b""
    async for chunk in chunks:
        *done, rest = (rest + chunk if rest else chunk).split(b"\n\n")
        for f in done:
            if f.startswith(b"data: "):
                yield decode(f[6:])
