"""Raw httpx with dict bodies (``json=``), ``response.json()``, and ``iter_lines`` + json.loads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .floor import Floor, check_status, save


def _stream_request(case: str, user: str) -> tuple[str, dict[str, Any]]:
    import payloads as p

    if case == "chat":
        return "/chat-messages", p.chat_request_obj(streaming=True, user=user)
    return "/workflows/run", {
        "inputs": {"query": p.QUERY},
        "user": user,
        "response_mode": "streaming",
    }


class HttpxJson(Floor):
    """The floor's client (same options, same pool); dicts and the json module instead."""

    def w1(self) -> Any:
        import httpx

        return httpx.Client(
            base_url="https://api.dify.ai/v1", headers={"Authorization": "Bearer app-KEY"}
        )

    def chat(self, client: Any, user: str) -> Callable[[], Any]:
        import payloads as p

        body = p.chat_request_obj(user=user)

        def call() -> Any:
            response = client.post("/chat-messages", json=body)
            check_status(response)
            return response.json()

        return call

    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        import json

        path, body = _stream_request(case, user)
        with client.stream("POST", path, json=body) as response:
            check_status(response)
            for line in response.iter_lines():
                if line.startswith("data:"):
                    yield json.loads(line[5:])

    def lists(self, client: Any, kind: str, n: int) -> Callable[[], Any]:
        import payloads as p

        if kind == "documents":
            path, query = f"/datasets/{p.DATASET_ID}/documents", {"page": 1, "limit": n}
        else:
            path = "/messages"
            query = {"conversation_id": p.CONVERSATION_ID, "user": p.USER, "limit": n}

        def call() -> Any:
            response = client.get(path, params=query)
            check_status(response)
            return response.json()

        return call

    def download(self, client: Any, user: str, path: str) -> int:
        import payloads as p

        body = {"text": p.QUERY, "user": user}
        with client.stream("POST", "/text-to-audio", json=body) as response:
            return save(response, path)

    def achat(self, client: Any, user: str) -> Callable[[], Any]:
        import payloads as p

        body = p.chat_request_obj(user=user)

        async def call() -> Any:
            response = await client.post("/chat-messages", json=body)
            check_status(response)
            return response.json()

        return call

    async def astream(self, client: Any, case: str, user: str) -> AsyncIterator[Any]:
        import json

        path, body = _stream_request(case, user)
        async with client.stream("POST", path, json=body) as response:
            check_status(response)
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    yield json.loads(line[5:])


ADAPTER = HttpxJson
