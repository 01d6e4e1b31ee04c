"""W2: ``client.post(json=...)`` and ``response.json()`` through httpx.MockTransport."""

from __future__ import annotations

from typing import Any

import payloads as p
from harness import check_answer, per_call_us

from contenders import _mock_httpx as mock

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    recorder = mock.Recorder()
    client = c.client(mock.json_transport(p.chat_answer(), recorder))

    def call() -> Any:
        response = client.post(
            "/chat-messages",
            json={"query": p.QUERY, "user": p.USER, "inputs": {}, "response_mode": "blocking"},
        )
        c.check_status(response)
        return response.json()

    check_answer(call())
    recorder.verify("POST", "/v1/chat-messages", body=p.chat_request_obj())
    return per_call_us(call, params["calls"], params["warmup"])
