"""In-process answers for httpx-based contenders (``httpx.MockTransport``), with a request check."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from .base import Wire

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


class FrameStream(httpx.SyncByteStream):
    """A response body sent one SSE frame per chunk, as Dify sends events."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.frames)


def record(wire: Wire, request: httpx.Request) -> None:
    """Keep the first request so a contender can prove it sent the same call as the others."""
    if wire.recorder.first is None:
        body = request.read()
        wire.recorder.first = (
            request.method,
            request.url.path,
            dict(request.url.params),
            json.loads(body) if body else None,
        )


def transport(wire: Wire) -> httpx.MockTransport | None:
    """The wire's in-process answer as a transport; None for a loopback wire."""
    if not wire.inproc:
        return None
    frames, body = wire.frames, wire.body or b""

    def handler(request: httpx.Request) -> httpx.Response:
        record(wire, request)
        if frames is not None:
            return httpx.Response(200, headers=SSE_HEADERS, stream=FrameStream(frames))
        return httpx.Response(200, headers=JSON_HEADERS, content=body)

    return httpx.MockTransport(handler)
