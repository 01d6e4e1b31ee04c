"""W6: 50 MB event stream via ``iter_lines`` + ``json.loads``; 50 MB binary via ``iter_bytes``."""

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
            body = p.chat_request_obj(streaming=True, user=user)
            with client.stream("POST", "/chat-messages", json=body) as response:
                c.check_status(response)
                for _ in c.events(response):
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
        written = 0
        with client.stream("POST", "/text-to-audio", json={"text": p.QUERY, "user": user}) as r:
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
