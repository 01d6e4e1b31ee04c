"""Raw requests + msgspec Structs, SSE frames split by hand: the sync floor on requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .base import Adapter, Wire
from .floor import JSON, _chat, _request


def _check(response: Any) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.content[:200]!r}")


class RawRequests(Adapter):
    no_async = "requests has no async API"

    def w1(self) -> Any:
        import msgspec
        import requests

        from . import structs

        session = requests.Session()
        session.headers["Authorization"] = "Bearer app-KEY"
        return session, msgspec.json.Decoder(structs.ChatAnswer)

    def client(self, wire: Wire) -> Any:
        import payloads as p
        import requests

        from . import mock_requests

        mock_requests.install(wire)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {p.API_KEY}"
        if n := wire.connections:
            adapter = requests.adapters.HTTPAdapter(pool_connections=n, pool_maxsize=n)
            session.mount("http://", adapter)
        session.base = wire.url  # type: ignore[attr-defined]
        session.timeout = wire.timeout  # type: ignore[attr-defined]
        return session

    def chat(self, client: Any, user: str) -> Callable[[], Any]:
        body, decode = _chat(user)
        url, timeout = client.base + "/chat-messages", client.timeout

        def call() -> Any:
            response = client.post(url, data=body(), headers=JSON, timeout=timeout)
            _check(response)
            return decode(response.content)

        return call

    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        from . import sse

        path, body, decode = _request(case, user)
        url = client.base + path
        with client.post(url, data=body, headers=JSON, stream=True, timeout=client.timeout) as r:
            _check(r)
            yield from sse.events(r.iter_content(chunk_size=None), decode)


ADAPTER = RawRequests
