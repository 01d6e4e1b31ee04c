"""W1: import + client: httpx, msgspec and the hand-written Structs."""

from typing import Any


def run(params: dict[str, Any]) -> Any:
    import httpx
    import msgspec

    from contenders.floor import structs

    client = httpx.Client(
        base_url="https://api.dify.ai/v1", headers={"Authorization": "Bearer app-KEY"}
    )
    return client, msgspec.json.Decoder(structs.ChatAnswer)
