"""W3: ``client.stream`` + ``iter_lines`` + ``json.loads`` per ``data:`` line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import payloads as p
from harness import final_ok, stream_runs, time_stream

from contenders import _mock_httpx as mock

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    sizes = p.Sizes.from_dict(params["sizes"])
    case = params["case"]
    frames = p.chat_stream(sizes) if case == "chat" else p.workflow_stream(sizes)
    recorder = mock.Recorder()
    if params["mode"] == "inproc":
        client = c.client(mock.stream_transport(frames, recorder))
    else:
        client = c.client(base_url=params["base_url"])
    if case == "chat":
        path, body = "/chat-messages", p.chat_request_obj(streaming=True)
    else:
        path = "/workflows/run"
        body = {"inputs": {"query": p.QUERY}, "user": p.USER, "response_mode": "streaming"}

    def events() -> Iterator[Any]:
        with client.stream("POST", path, json=body) as response:
            c.check_status(response)
            yield from c.events(response)

    result = stream_runs(
        lambda: time_stream(events, final_ok(case)),
        params["runs"],
        p.stream_event_count(frames),
        params["mode"] == "inproc",
    )
    if params["mode"] == "inproc":
        recorder.verify("POST", "/v1" + path, body={"user": p.USER, "response_mode": "streaming"})
    return result
