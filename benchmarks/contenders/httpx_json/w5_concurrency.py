"""W5: raw httpx with ``json=`` / ``response.json()``, async and threads, over loopback."""

from __future__ import annotations

from typing import Any

import httpx
import payloads as p
from harness import drive_async, drive_threads

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    url = params["base_url"] + "/chat-messages"
    body = p.chat_request_obj()
    if params["case"] == "async":
        n = params["concurrency"]
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)

        async def setup() -> Any:
            client = httpx.AsyncClient(headers=c.AUTH, limits=limits)

            async def call() -> Any:
                response = await client.post(url, json=body)
                c.check_status(response)
                return response.json()

            return call, client.aclose

        return drive_async(setup, params["calls"], n, params["warmup"])
    client = httpx.Client(headers=c.AUTH)

    def call() -> Any:
        response = client.post(url, json=body)
        c.check_status(response)
        return response.json()

    try:
        return drive_threads(call, params["calls"], params["threads"], params["warmup"])
    finally:
        client.close()
