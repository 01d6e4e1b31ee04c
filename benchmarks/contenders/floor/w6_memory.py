"""W6: a 50 MB SSE stream and a 50 MB binary download to a file, over loopback."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import msgspec
import payloads as p
from harness import measure_memory

from . import _common as c
from .structs import ChatEvent


def run(params: dict[str, Any]) -> dict[str, Any]:
    sizes = p.Sizes.from_dict(params["sizes"])
    client = c.client(base_url=params["base_url"], timeout=60.0)
    decode = msgspec.json.Decoder(ChatEvent).decode
    if params["case"] == "sse":

        def consume(user: str) -> int:
            n = 0
            body = c.chat_body(streaming=True, user=user)
            with client.stream("POST", "/chat-messages", content=body, headers=c.JSON) as r:
                c.check_status(r)
                for _ in c.events(r.iter_bytes(), decode):
                    n += 1
            return n

        return measure_memory(
            lambda: consume(p.USER),
            lambda: consume(p.BIG_USER),
            p.big_stream_events(sizes.big_stream_bytes),
        )

    fd, path = tempfile.mkstemp(suffix=".mp3")
    os.close(fd)

    def download(user: str) -> int:
        body = msgspec.json.encode(c.TextToAudioRequest(text=p.QUERY, user=user))
        written = 0
        with client.stream("POST", "/text-to-audio", content=body, headers=c.JSON) as r:
            c.check_status(r)
            with open(path, "wb") as f:
                for chunk in r.iter_bytes(65536):
                    f.write(chunk)
                    written += len(chunk)
        return written

    try:
        return measure_memory(
            lambda: download(p.USER), lambda: download(p.BIG_USER), sizes.binary_bytes
        )
    finally:
        os.unlink(path)
