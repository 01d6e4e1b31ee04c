"""W5 async: ``httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport(...))`` + msgspec.

The ceiling for this SDK on the same transport: the difference to raw aiohttp is httpx's
request and response models, not the SDK.
"""

from __future__ import annotations

from typing import Any

from harness import NotAvailable


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "async":
        raise NotAvailable("aiohttp is async only")
    try:
        import httpx_aiohttp
    except ImportError:
        raise NotAvailable("httpx-aiohttp not installed (pip install -e '.[bench]')") from None
    import httpx
    import msgspec
    from harness import drive_async

    from contenders.floor import _common as c
    from contenders.floor.structs import ChatAnswer

    decode = msgspec.json.Decoder(ChatAnswer).decode
    body = c.chat_body()
    url = params["base_url"] + "/chat-messages"
    headers = {**c.AUTH, **c.JSON}
    n = params["concurrency"]
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)

    async def setup() -> Any:
        client = httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport(limits=limits))

        async def call() -> ChatAnswer:
            response = await client.post(url, content=body, headers=headers)
            c.check_status(response)
            return decode(response.content)

        return call, client.aclose

    return drive_async(setup, params["calls"], n, params["warmup"])
