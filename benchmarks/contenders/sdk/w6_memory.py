"""W6: a 50 MB chat stream (``stream=True``) and a 50 MB text-to-audio answer via ``write_to``."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import payloads as p
from harness import measure_memory

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    sizes = p.Sizes.from_dict(params["sizes"])
    client = c.client(base_url=params["base_url"], timeout=60.0)
    if params["case"] == "sse":

        def consume(user: str) -> int:
            n = 0
            with client.chat.send(query=p.QUERY, user=user, stream=True) as stream:
                for _ in stream:
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
        written: int = client.dify.text_to_audio(text=p.QUERY, user=user, stream=True).write_to(
            path
        )
        return written

    try:
        return measure_memory(
            lambda: download(p.USER), lambda: download(p.BIG_USER), sizes.binary_bytes
        )
    finally:
        os.unlink(path)
