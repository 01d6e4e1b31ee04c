"""W1: import + client, ready to call ``client.chat.send``."""

from typing import Any


def run(params: dict[str, Any]) -> Any:
    from dify_oapi import Client

    client = Client(api_key="app-KEY", base_url="https://api.dify.ai/v1")
    return client, client.chat.send
