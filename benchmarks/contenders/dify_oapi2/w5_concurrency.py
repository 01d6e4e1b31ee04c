"""W5: ``achat`` with N in flight and ``chat`` from threads, pool sized by the builder."""

from __future__ import annotations

from typing import Any

import payloads as p
from dify_oapi.api.chat.v1.model.chat_request import ChatRequest
from dify_oapi.api.chat.v1.model.chat_request_body import ChatRequestBody
from harness import drive_async, drive_threads

from . import _common as c


def request() -> ChatRequest:
    body = (
        ChatRequestBody.builder()
        .query(p.QUERY)
        .user(p.USER)
        .inputs({})
        .response_mode("blocking")
        .build()
    )
    return ChatRequest.builder().request_body(body).build()


def run(params: dict[str, Any]) -> dict[str, Any]:
    n = params["concurrency"] if params["case"] == "async" else params["threads"]
    client = c.client(domain=c.domain_of(params["base_url"]), connections=n)
    option = c.option()
    chat = client.chat.v1.chat
    if params["case"] == "async":

        async def setup() -> Any:
            async def call() -> Any:
                return await chat.achat(request=request(), request_option=option)

            return call, client.aclose

        return drive_async(setup, params["calls"], n, params["warmup"])

    def call() -> Any:
        return chat.chat(request=request(), request_option=option)

    try:
        return drive_threads(call, params["calls"], n, params["warmup"])
    finally:
        client.close()
