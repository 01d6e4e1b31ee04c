"""W2: ``client.chat.v1.chat.chat(request=..., request_option=...)`` through MockTransport."""

from __future__ import annotations

from typing import Any

import payloads as p
from dify_oapi.api.chat.v1.model.chat_request import ChatRequest
from dify_oapi.api.chat.v1.model.chat_request_body import ChatRequestBody
from harness import check_answer, per_call_us

from contenders import _mock_httpx as mock

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    recorder = mock.Recorder()
    client = c.client(mock.json_transport(p.chat_answer(), recorder))
    option = c.option()
    chat = client.chat.v1.chat

    def call() -> Any:
        body = (
            ChatRequestBody.builder()
            .query(p.QUERY)
            .user(p.USER)
            .inputs({})
            .response_mode("blocking")
            .build()
        )
        request = ChatRequest.builder().request_body(body).build()
        return chat.chat(request=request, request_option=option)

    check_answer(call())
    recorder.verify("POST", "/v1/chat-messages", body=p.chat_request_obj())
    return per_call_us(call, params["calls"], params["warmup"])
