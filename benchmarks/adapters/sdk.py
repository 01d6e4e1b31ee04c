"""This SDK (``dify_oapi`` from this repository), through its public API.

Options: ``backend`` (see :mod:`adapters.backends`; ``aiohttp`` and ``urllib3`` are the SDK's
own ``AsyncClient(backend="aiohttp")`` and ``Client(backend="urllib3")``, the others go in as
``transport=``) and
``default_limits`` (no ``limits=``: the SDK's defaults; every other contender's pool is
sized to the workload's concurrency).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .base import Adapter, Wire, unavailable


class SDK(Adapter):
    def w1(self) -> Any:
        from dify_oapi import Client

        client = Client(api_key="app-KEY", base_url="https://api.dify.ai/v1")
        return client, client.chat.send

    @property
    def backend(self) -> str:
        return str(self.options.get("backend", "httpx"))

    def _options(self, wire: Wire) -> dict[str, Any]:
        import httpx
        import payloads as p

        options: dict[str, Any] = {"api_key": p.API_KEY, "base_url": wire.url, **wire.options}
        n = wire.connections
        if n and not self.options.get("default_limits"):
            options["limits"] = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        if wire.timeout is not None:
            options["timeout"] = wire.timeout
        return options

    def _on_wire(self, wire: Wire) -> None:
        if wire.inproc and self.backend != "httpx":
            raise unavailable("a transport is measured over the loopback socket only")

    def client(self, wire: Wire) -> Any:
        from dify_oapi import Client

        from . import backends, mock_httpx

        self._on_wire(wire)
        options = self._options(wire)
        mock = mock_httpx.transport(wire)
        if mock is None and self.backend == "urllib3":
            return Client(backend="urllib3", **options)
        transport = mock or backends.transport(self.backend, options.get("limits"), is_async=False)
        return Client(transport=transport, **options)

    def chat(self, client: Any, user: str) -> Callable[[], Any]:
        import payloads as p

        send = client.chat.send
        return lambda: send(query=p.QUERY, user=user)

    def _open(self, client: Any, case: str, user: str) -> Any:
        import payloads as p

        if case == "chat":
            return client.chat.send(query=p.QUERY, user=user, stream=True)
        return client.workflow.run(inputs={"query": p.QUERY}, user=user, stream=True)

    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        with self._open(client, case, user) as stream:
            yield from stream

    def lists(self, client: Any, kind: str, n: int) -> Callable[[], Any]:
        import payloads as p

        if kind == "documents":
            list_documents = client.knowledge.list_documents
            return lambda: list_documents(dataset_id=p.DATASET_ID, page=1, limit=n)
        list_messages = client.chat.list_messages
        return lambda: list_messages(conversation_id=p.CONVERSATION_ID, user=p.USER, limit=n)

    def download(self, client: Any, user: str, path: str) -> int:
        import payloads as p

        written: int = client.dify.text_to_audio(text=p.QUERY, user=user, stream=True).write_to(
            path
        )
        return written

    async def aclient(self, wire: Wire) -> Any:
        from dify_oapi import AsyncClient

        from . import backends

        self._on_wire(wire)
        if wire.inproc:
            raise unavailable("async contenders run over the loopback socket only")
        options = self._options(wire)
        if self.backend == "aiohttp":
            return AsyncClient(backend="aiohttp", **options)
        transport = backends.transport(self.backend, options.get("limits"), is_async=True)
        return AsyncClient(transport=transport, **options)

    def achat(self, client: Any, user: str) -> Callable[[], Any]:
        import payloads as p

        send = client.chat.send

        async def call() -> Any:
            return await send(query=p.QUERY, user=user)

        return call

    async def astream(self, client: Any, case: str, user: str) -> AsyncIterator[Any]:
        async with await self._open(client, case, user) as stream:
            async for event in stream:
                yield event

    async def aclose(self, client: Any) -> None:
        await client.close()


ADAPTER = SDK
