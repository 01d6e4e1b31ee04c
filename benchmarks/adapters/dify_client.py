"""The published dify-client on PyPI (requests, dicts), in its own virtual environment.

``ChatClient(api_key)`` has no base-URL argument: the attribute is set after construction.
Each call goes through ``requests.request``, which opens a new session (and connection)
every time. Streams are read as its README shows: ``iter_lines`` and json.loads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .base import Adapter, Wire, unavailable

NAME = "dify-client 0.1.10"


def _parse(response: Any) -> Any:
    response.raise_for_status()
    return response.json()


class DifyClient(Adapter):
    no_async = f"{NAME} has no async API"

    def w1(self) -> Any:
        from dify_client import ChatClient

        client = ChatClient("app-KEY")
        client.base_url = "https://api.dify.ai/v1"
        return client

    def client(self, wire: Wire) -> Any:
        import payloads as p
        from dify_client import ChatClient

        from . import mock_requests

        mock_requests.install(wire)
        chat = ChatClient(p.API_KEY)
        chat.base_url = wire.url
        return chat

    def close(self, client: Any) -> None:
        pass

    def chat(self, client: Any, user: str) -> Callable[[], Any]:
        import payloads as p

        return lambda: _parse(
            client.create_chat_message({}, p.QUERY, user, response_mode="blocking")
        )

    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        import json

        import payloads as p

        if case != "chat":
            raise unavailable(f"{NAME} has no workflow API")
        response = client.create_chat_message({}, p.QUERY, user, response_mode="streaming")
        with response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith(b"data:"):
                    yield json.loads(line[5:])

    def lists(self, client: Any, kind: str, n: int) -> Callable[[], Any]:
        import payloads as p

        if kind != "messages":
            raise unavailable(f"{NAME} has no knowledge-base API")
        get = client.get_conversation_messages
        return lambda: _parse(get(p.USER, conversation_id=p.CONVERSATION_ID, limit=n))

    def download(self, client: Any, user: str, path: str) -> int:
        raise unavailable(f"{NAME} has no text-to-audio or file-preview API")


ADAPTER = DifyClient
