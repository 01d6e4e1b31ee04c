"""W2: blocking chat through httpx.MockTransport; encode, send, decode into Structs."""

from __future__ import annotations

from typing import Any

import msgspec
import payloads as p
from harness import check_answer, per_call_us

from contenders import _mock_httpx as mock

from . import _common as c
from .structs import ChatAnswer, ChatRequest


def run(params: dict[str, Any]) -> dict[str, Any]:
    recorder = mock.Recorder()
    client = c.client(mock.json_transport(p.chat_answer(), recorder))
    encode = msgspec.json.Encoder().encode
    decode = msgspec.json.Decoder(ChatAnswer).decode

    def call() -> ChatAnswer:
        body = encode(ChatRequest(query=p.QUERY, user=p.USER, inputs={}, response_mode="blocking"))
        response = client.post("/chat-messages", content=body, headers=c.JSON)
        c.check_status(response)
        return decode(response.content)

    check_answer(call())
    recorder.verify("POST", "/v1/chat-messages", body=p.chat_request_obj())
    return per_call_us(call, params["calls"], params["warmup"])
