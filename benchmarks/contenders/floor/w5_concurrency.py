"""W5: blocking chat calls over loopback; async (httpx.AsyncClient) and threads (httpx.Client)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from harness import drive_async, drive_threads

from . import _common as c
from .structs import ChatAnswer


def run(params: dict[str, Any]) -> dict[str, Any]:
    decode = msgspec.json.Decoder(ChatAnswer).decode
    body = c.chat_body()
    url = params["base_url"] + "/chat-messages"
    headers = {**c.AUTH, **c.JSON}
    if params["case"] == "async":
        limits = httpx.Limits(
            max_connections=params["concurrency"], max_keepalive_connections=params["concurrency"]
        )

        async def setup() -> Any:
            client = httpx.AsyncClient(limits=limits)

            async def call() -> ChatAnswer:
                response = await client.post(url, content=body, headers=headers)
                c.check_status(response)
                return decode(response.content)

            return call, client.aclose

        return drive_async(setup, params["calls"], params["concurrency"], params["warmup"])
    client = httpx.Client()

    def call() -> ChatAnswer:
        response = client.post(url, content=body, headers=headers)
        c.check_status(response)
        return decode(response.content)

    try:
        return drive_threads(call, params["calls"], params["threads"], params["warmup"])
    finally:
        client.close()
