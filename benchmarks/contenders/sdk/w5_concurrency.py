"""W5: ``AsyncClient`` with N in flight, and one ``Client`` shared by threads, over loopback.

The pool is sized for the concurrency (``limits=``), as for every contender; ``sdk_defaults``
runs the same code with the SDK's default limits.
"""

from __future__ import annotations

from typing import Any

import httpx
import payloads as p
from harness import drive_async, drive_threads

from dify_oapi import AsyncClient, Client


def run(
    params: dict[str, Any], default_limits: bool = False, transport: Any = None
) -> dict[str, Any]:
    n = params["concurrency"] if params["case"] == "async" else params["threads"]
    options: dict[str, Any] = {"api_key": p.API_KEY, "base_url": params["base_url"]}
    if not default_limits:
        options["limits"] = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    if params["case"] == "async":

        async def setup() -> Any:
            client = AsyncClient(**options, transport=transport() if transport else None)
            send = client.chat.send

            async def call() -> Any:
                return await send(query=p.QUERY, user=p.USER)

            return call, client.close

        return drive_async(setup, params["calls"], params["concurrency"], params["warmup"])
    client = Client(**options)
    send = client.chat.send

    def call() -> Any:
        return send(query=p.QUERY, user=p.USER)

    try:
        return drive_threads(call, params["calls"], params["threads"], params["warmup"])
    finally:
        client.close()
