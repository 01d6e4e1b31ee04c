"""The floor: raw httpx + msgspec Structs written for exactly these payloads (``structs.py``).

SSE frames are split by hand on bytes. ``transport=`` puts it on another httpx transport
(``floor_aiohttp``, ``floor_curl``...), so the share of a transport shows apart from the SDK's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .base import Adapter, Wire, unavailable

JSON = {"Content-Type": "application/json"}


def _limits(wire: Wire) -> Any:
    import httpx

    n = wire.connections
    return httpx.Limits(max_connections=n, max_keepalive_connections=n) if n else None


def _request(case: str, user: str) -> tuple[str, bytes, Any]:
    """Path, encoded body and the decoder of one stream's events."""
    import msgspec
    import payloads as p

    from . import structs as s

    if case == "chat":
        body = s.ChatRequest(query=p.QUERY, user=user, inputs={}, response_mode="streaming")
        return "/chat-messages", s.encode(body), msgspec.json.Decoder(s.ChatEvent).decode
    body = s.WorkflowRequest(inputs={"query": p.QUERY}, user=user, response_mode="streaming")
    return "/workflows/run", s.encode(body), msgspec.json.Decoder(s.WorkflowEvent).decode


def _chat(user: str) -> tuple[Callable[[], bytes], Callable[[bytes], Any]]:
    """A blocking chat's body (encoded per call, as a user's code does) and answer decoder."""
    import msgspec
    import payloads as p

    from . import structs as s

    def body() -> bytes:
        return s.encode(
            s.ChatRequest(query=p.QUERY, user=user, inputs={}, response_mode="blocking")
        )

    return body, msgspec.json.Decoder(s.ChatAnswer).decode


def check_status(response: Any) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")


def save(response: Any, path: str) -> int:
    """Write a binary answer to ``path`` as it arrives; the bytes written."""
    check_status(response)
    written = 0
    with open(path, "wb") as f:
        for chunk in response.iter_bytes(65536):
            f.write(chunk)
            written += len(chunk)
    return written


class Floor(Adapter):
    def w1(self) -> Any:
        import httpx
        import msgspec

        from . import structs

        client = httpx.Client(
            base_url="https://api.dify.ai/v1", headers={"Authorization": "Bearer app-KEY"}
        )
        return client, msgspec.json.Decoder(structs.ChatAnswer)

    def _options(self, wire: Wire) -> dict[str, Any]:
        import payloads as p

        options: dict[str, Any] = {
            "base_url": wire.url,
            "headers": {"Authorization": f"Bearer {p.API_KEY}"},
        }
        if wire.timeout is not None:
            options["timeout"] = wire.timeout
        if limits := _limits(wire):
            options["limits"] = limits
        return options

    def client(self, wire: Wire) -> Any:
        import httpx

        from . import backends, mock_httpx

        transport = mock_httpx.transport(wire) or backends.transport(
            self.options.get("transport", "httpx"), _limits(wire), is_async=False
        )
        return httpx.Client(transport=transport, **self._options(wire))

    def chat(self, client: Any, user: str) -> Callable[[], Any]:
        body, decode = _chat(user)

        def call() -> Any:
            response = client.post("/chat-messages", content=body(), headers=JSON)
            check_status(response)
            return decode(response.content)

        return call

    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        from . import sse

        path, body, decode = _request(case, user)
        with client.stream("POST", path, content=body, headers=JSON) as response:
            check_status(response)
            yield from sse.events(response.iter_bytes(), decode)

    def lists(self, client: Any, kind: str, n: int) -> Callable[[], Any]:
        import msgspec
        import payloads as p

        from . import structs as s

        if kind == "documents":
            path, query = f"/datasets/{p.DATASET_ID}/documents", {"page": 1, "limit": n}
            decode = msgspec.json.Decoder(s.DocumentList).decode
        else:
            path = "/messages"
            query = {"conversation_id": p.CONVERSATION_ID, "user": p.USER, "limit": n}
            decode = msgspec.json.Decoder(s.MessageList).decode

        def call() -> Any:
            response = client.get(path, params=query)
            check_status(response)
            return decode(response.content)

        return call

    def download(self, client: Any, user: str, path: str) -> int:
        import payloads as p

        from . import structs as s

        body = s.encode(s.TextToAudioRequest(text=p.QUERY, user=user))
        with client.stream("POST", "/text-to-audio", content=body, headers=JSON) as response:
            return save(response, path)

    async def aclient(self, wire: Wire) -> Any:
        import httpx

        from . import backends

        if wire.inproc:
            raise unavailable("async contenders run over the loopback socket only")
        name = self.options.get("transport", "httpx")
        transport = backends.transport(name, _limits(wire), is_async=True)
        return httpx.AsyncClient(transport=transport, **self._options(wire))

    def achat(self, client: Any, user: str) -> Callable[[], Any]:
        body, decode = _chat(user)

        async def call() -> Any:
            response = await client.post("/chat-messages", content=body(), headers=JSON)
            check_status(response)
            return decode(response.content)

        return call

    async def astream(self, client: Any, case: str, user: str) -> AsyncIterator[Any]:
        from . import sse

        path, body, decode = _request(case, user)
        async with client.stream("POST", path, content=body, headers=JSON) as response:
            check_status(response)
            async for event in sse.aevents(response.aiter_bytes(), decode):
                yield event


ADAPTER = Floor
