"""W1: import + client: httpx (json is in the standard library)."""

from typing import Any


def run(params: dict[str, Any]) -> Any:
    import json

    import httpx

    client = httpx.Client(
        base_url="https://api.dify.ai/v1", headers={"Authorization": "Bearer app-KEY"}
    )
    return client, json.loads
