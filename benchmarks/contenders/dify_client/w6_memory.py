"""W6: the 50 MB chat stream via ``iter_lines``; no text-to-audio or file-preview API."""

from __future__ import annotations

from typing import Any

import payloads as p
from harness import NotAvailable, measure_memory

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "sse":
        raise NotAvailable("dify-client 0.1.10 has no text-to-audio or file-preview API")
    sizes = p.Sizes.from_dict(params["sizes"])
    client = c.client(params["base_url"])

    def consume(user: str) -> int:
        n = 0
        response = client.create_chat_message({}, p.QUERY, user, response_mode="streaming")
        with response:
            for _ in c.events(response):
                n += 1
        return n

    return measure_memory(
        lambda: consume(p.USER),
        lambda: consume(p.BIG_USER),
        p.big_stream_events(sizes.big_stream_bytes),
    )
