"""W3: chat stream via ``iter_lines`` + json.loads; dify-client has no workflow API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import payloads as p
from harness import NotAvailable, Recorded, final_ok, stream_runs, time_stream

from contenders import _mock_requests

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "chat":
        raise NotAvailable("dify-client 0.1.10 has no workflow API")
    sizes = p.Sizes.from_dict(params["sizes"])
    frames = p.chat_stream(sizes)
    recorder = Recorded()
    if params["mode"] == "inproc":
        _mock_requests.install(frames=frames, recorder=recorder)
        client = c.client()
    else:
        client = c.client(params["base_url"])

    def events() -> Iterator[Any]:
        response = client.create_chat_message({}, p.QUERY, p.USER, response_mode="streaming")
        with response:
            yield from c.events(response)

    result = stream_runs(
        lambda: time_stream(events, final_ok("chat")),
        params["runs"],
        p.stream_event_count(frames),
        params["mode"] == "inproc",
    )
    if params["mode"] == "inproc":
        recorder.verify(
            "POST", "/v1/chat-messages", body={"user": p.USER, "response_mode": "streaming"}
        )
    return result
