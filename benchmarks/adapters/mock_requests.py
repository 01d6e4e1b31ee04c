"""In-process answers for requests-based contenders: ``HTTPAdapter.send`` answers from memory.

The counterpart of ``httpx.MockTransport``: everything above the connection pool runs as in
real use (session, request preparation, hooks, response decoding); no socket is opened.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from .base import Wire


class _Frames(io.RawIOBase):
    """A raw body that yields one SSE frame per read, like a socket receiving events."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = iter(frames)

    def stream(self, amt: int = 0, decode_content: bool = True) -> Iterator[bytes]:
        yield from self.frames

    def readable(self) -> bool:
        return True

    def read(self, amt: int | None = -1) -> bytes:
        return next(self.frames, b"")


def install(wire: Wire) -> None:
    """Answer every request from the wire's body or frames (a loopback wire: no change)."""
    if not wire.inproc:
        return
    frames, body, recorder = wire.frames, wire.body, wire.recorder
    content_type = "application/json" if frames is None else "text/event-stream; charset=utf-8"

    def send(self: Any, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if recorder.first is None:
            path, _, query = (request.path_url or "").partition("?")
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            raw_body = request.body or b""
            recorder.first = (
                request.method or "",
                path,
                params,
                json.loads(raw_body) if raw_body else None,
            )
        response = requests.Response()
        response.status_code = 200
        response.reason = "OK"
        response.headers = CaseInsensitiveDict({"content-type": content_type})
        response.encoding = "utf-8"
        response.raw = _Frames(frames) if frames is not None else io.BytesIO(body or b"")
        response.url = request.url or ""
        response.request = request
        return response

    requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]
