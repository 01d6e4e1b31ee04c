"""W4: ``client.get`` + ``response.json()`` for the documents and message-history lists."""

from __future__ import annotations

from typing import Any

import payloads as p
from harness import check_list, per_call_us

from contenders import _mock_httpx as mock

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    sizes = p.Sizes.from_dict(params["sizes"])
    n = sizes.list_items
    recorder = mock.Recorder()
    if params["case"] == "documents":
        body = p.documents_list(sizes)
        path = f"/datasets/{p.DATASET_ID}/documents"
        query: dict[str, Any] = {"page": 1, "limit": n}
    else:
        body = p.messages_list(sizes)
        path = "/messages"
        query = {"conversation_id": p.CONVERSATION_ID, "user": p.USER, "limit": n}
    client = c.client(mock.json_transport(body, recorder))

    def call() -> Any:
        response = client.get(path, params=query)
        c.check_status(response)
        return response.json()

    check_list(call(), n, params["case"])
    recorder.verify("GET", "/v1" + path, params=query)
    return per_call_us(call, params["calls"], params["warmup"])
