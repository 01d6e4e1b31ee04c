"""W5 async: one aiohttp ``ClientSession`` (connector sized for the concurrency), msgspec decode."""

from __future__ import annotations

from typing import Any

from harness import NotAvailable, drive_async


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "async":
        raise NotAvailable("aiohttp is async only")
    try:
        import aiohttp
    except ImportError:
        raise NotAvailable("aiohttp not installed (pip install -e '.[bench]')") from None
    import msgspec

    from contenders.floor import _common as c
    from contenders.floor.structs import ChatAnswer

    decode = msgspec.json.Decoder(ChatAnswer).decode
    body = c.chat_body()
    url = params["base_url"] + "/chat-messages"
    headers = {**c.AUTH, **c.JSON}

    async def setup() -> Any:
        connector = aiohttp.TCPConnector(limit=params["concurrency"])
        session = aiohttp.ClientSession(connector=connector)

        async def call() -> ChatAnswer:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                return decode(await response.read())

        return call, session.close

    return drive_async(setup, params["calls"], params["concurrency"], params["warmup"])
