"""W3: ``stream=True`` chat and workflow runs; typed events."""

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

    def events() -> Iterator[Any]:
        if case == "chat":
            stream = client.chat.send(query=p.QUERY, user=p.USER, stream=True)
        else:
            stream = client.workflow.run(inputs={"query": p.QUERY}, user=p.USER, stream=True)
        with stream:
            yield from stream

    result = stream_runs(
        lambda: time_stream(events, final_ok(case)),
        params["runs"],
        p.stream_event_count(frames),
        params["mode"] == "inproc",
    )
    if params["mode"] == "inproc":
        path = "/v1/chat-messages" if case == "chat" else "/v1/workflows/run"
        recorder.verify("POST", path, body={"user": p.USER, "response_mode": "streaming"})
    return result
