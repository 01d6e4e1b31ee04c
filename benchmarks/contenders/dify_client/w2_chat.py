"""W2: ``create_chat_message(..., "blocking").json()``; requests answered in memory."""

from __future__ import annotations

from typing import Any

import payloads as p
from harness import Recorded, check_answer, per_call_us

from contenders import _mock_requests

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    recorder = Recorded()
    _mock_requests.install(body=p.chat_answer(), recorder=recorder)
    client = c.client()

    def call() -> Any:
        return c.parse(client.create_chat_message({}, p.QUERY, p.USER, response_mode="blocking"))

    check_answer(call())
    recorder.verify("POST", "/v1/chat-messages", body=p.chat_request_obj())
    return per_call_us(call, params["calls"], params["warmup"])
