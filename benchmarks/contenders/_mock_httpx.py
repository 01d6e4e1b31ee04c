"""In-process answers for httpx-based contenders (``httpx.MockTransport``), with a request check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from harness import Recorded

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


class AsyncFrameStream(httpx.AsyncByteStream):
    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    async def __aiter__(self) -> Any:
        for f in self.frames:
            yield f


class Recorder(Recorded):
    """Keeps the first request so a contender can prove it sent the same call as the others."""

    def record(self, request: httpx.Request) -> None:
        if self.first is None:
            body = request.read()
            self.first = (
                request.method,
                request.url.path,
                dict(request.url.params),
                json.loads(body) if body else None,
            )


def json_transport(body: bytes, recorder: Recorder | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if recorder is not None:
            recorder.record(request)
        return httpx.Response(200, headers=JSON_HEADERS, content=body)

    return httpx.MockTransport(handler)


def stream_transport(frames: list[bytes], recorder: Recorder | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if recorder is not None:
            recorder.record(request)
        return httpx.Response(200, headers=SSE_HEADERS, stream=FrameStream(frames))

    return httpx.MockTransport(handler)
