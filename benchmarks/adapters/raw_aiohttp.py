"""Raw aiohttp + msgspec Structs, SSE frames split by hand: the async floor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from .base import Adapter, Wire, unavailable
from .floor import JSON, _chat, _request


async def _check(response: Any) -> None:
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")


class RawAiohttp(Adapter):
    no_sync = "aiohttp is async only"

    def w1(self) -> Any:
        import aiohttp
        import msgspec

        from . import structs

        return aiohttp.ClientSession, msgspec.json.Decoder(structs.ChatAnswer)

    async def aclient(self, wire: Wire) -> Any:
        try:
            import aiohttp
        except ImportError:
            raise unavailable("aiohttp not installed (pip install -e '.[bench]')") from None
        import payloads as p

        if wire.inproc:
            raise unavailable("async contenders run over the loopback socket only")
        connector = aiohttp.TCPConnector(limit=wire.connections or 100)
        headers = {"Authorization": f"Bearer {p.API_KEY}", **JSON}
        session = aiohttp.ClientSession(wire.url + "/", connector=connector, headers=headers)
        return session

    def achat(self, client: Any, user: str) -> Callable[[], Any]:
        body, decode = _chat(user)

        async def call() -> Any:
            async with client.post("chat-messages", data=body()) as response:
                await _check(response)
                return decode(await response.read())

        return call

    async def astream(self, client: Any, case: str, user: str) -> AsyncIterator[Any]:
        from . import sse

        path, body, decode = _request(case, user)
        async with client.post(path.lstrip("/"), data=body) as response:
            await _check(response)
            async for event in sse.aevents(response.content.iter_any(), decode):
                yield event

    async def aclose(self, client: Any) -> None:
        await client.close()


ADAPTER = RawAiohttp
