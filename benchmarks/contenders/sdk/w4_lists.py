"""W4: ``client.knowledge.list_documents`` and ``client.chat.list_messages``."""

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
        client = c.client(mock.json_transport(p.documents_list(sizes), recorder))
        list_documents = client.knowledge.list_documents

        def call() -> Any:
            return list_documents(dataset_id=p.DATASET_ID, page=1, limit=n)

        path = f"/v1/datasets/{p.DATASET_ID}/documents"
        query: dict[str, Any] = {"page": 1, "limit": n}
    else:
        client = c.client(mock.json_transport(p.messages_list(sizes), recorder))
        list_messages = client.chat.list_messages

        def call() -> Any:
            return list_messages(conversation_id=p.CONVERSATION_ID, user=p.USER, limit=n)

        path = "/v1/messages"
        query = {"conversation_id": p.CONVERSATION_ID, "user": p.USER, "limit": n}
    check_list(call(), n, params["case"])
    recorder.verify("GET", path, params=query)
    return per_call_us(call, params["calls"], params["warmup"])
