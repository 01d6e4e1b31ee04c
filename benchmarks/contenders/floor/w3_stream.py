"""W3: chat and workflow streams; hand-written frame splitting, msgspec tagged unions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import payloads as p
from harness import final_ok, stream_runs, time_stream

from contenders import _mock_httpx as mock

from . import _common as c
from .structs import ChatEvent, WorkflowEvent


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
        path, body = "/chat-messages", c.chat_body(streaming=True)
        decode = msgspec.json.Decoder(ChatEvent).decode
    else:
        path, body = "/workflows/run", c.workflow_body()
        decode = msgspec.json.Decoder(WorkflowEvent).decode

    def events() -> Iterator[Any]:
        with client.stream("POST", path, content=body, headers=c.JSON) as response:
            c.check_status(response)
            yield from c.events(response.iter_bytes(), decode)

    result = stream_runs(
        lambda: time_stream(events, final_ok(case)),
        params["runs"],
        p.stream_event_count(frames),
        params["mode"] == "inproc",
    )
    if params["mode"] == "inproc":
        recorder.verify("POST", "/v1" + path, body={"user": p.USER, "response_mode": "streaming"})
    return result
