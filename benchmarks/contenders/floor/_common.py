"""The floor's client, request bodies and hand-written SSE framing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import msgspec
import payloads as p

from .structs import ChatRequest

IN_PROCESS = "http://dify.bench/v1"
AUTH = {"Authorization": f"Bearer {p.API_KEY}"}
JSON = {"Content-Type": "application/json"}
encode = msgspec.json.Encoder().encode


class WorkflowRequest(msgspec.Struct):
    inputs: dict[str, Any]
    user: str
    response_mode: str


class TextToAudioRequest(msgspec.Struct):
    text: str
    user: str


def client(
    transport: httpx.BaseTransport | None = None, base_url: str = IN_PROCESS, **kw: Any
) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=AUTH, transport=transport, **kw)


def chat_body(streaming: bool = False, user: str = p.USER) -> bytes:
    mode = "streaming" if streaming else "blocking"
    return encode(ChatRequest(query=p.QUERY, user=user, inputs={}, response_mode=mode))


def workflow_body() -> bytes:
    return encode(
        WorkflowRequest(inputs={"query": p.QUERY}, user=p.USER, response_mode="streaming")
    )


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


def check_status(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
