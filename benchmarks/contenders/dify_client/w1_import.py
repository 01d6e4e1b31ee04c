"""W1: import + client."""

from typing import Any


def run(params: dict[str, Any]) -> Any:
    from dify_client import ChatClient

    client = ChatClient("app-KEY")
    client.base_url = "https://api.dify.ai/v1"
    return client
