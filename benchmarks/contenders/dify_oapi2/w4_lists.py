"""W4: ``knowledge.v1.document.list`` and ``chat.v1.message.history``, decoded by pydantic."""

from __future__ import annotations

from typing import Any

import payloads as p
import pydantic
from dify_oapi.api.chat.v1.model.message_history_request import GetMessageHistoryRequest
from dify_oapi.api.knowledge.v1.model.list_documents_request import ListDocumentsRequest
from harness import NotAvailable, check_list, per_call_us

from contenders import _mock_httpx as mock

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    sizes = p.Sizes.from_dict(params["sizes"])
    n = sizes.list_items
    recorder = mock.Recorder()
    option = c.option()
    if params["case"] == "documents":
        client = c.client(mock.json_transport(p.documents_list(sizes), recorder))
        documents = client.knowledge.v1.document

        def call() -> Any:
            request = (
                ListDocumentsRequest.builder().dataset_id(p.DATASET_ID).page(1).limit(n).build()
            )
            return documents.list(request, option)

        path = f"/v1/datasets/{p.DATASET_ID}/documents"
        query: dict[str, Any] = {"page": 1, "limit": n}
    else:
        client = c.client(mock.json_transport(p.messages_list(sizes), recorder))
        messages = client.chat.v1.message

        def call() -> Any:
            request = (
                GetMessageHistoryRequest.builder()
                .conversation_id(p.CONVERSATION_ID)
                .user(p.USER)
                .limit(n)
                .build()
            )
            return messages.history(request, option)

        path = "/v1/messages"
        query = {"conversation_id": p.CONVERSATION_ID, "user": p.USER, "limit": n}
    try:
        first = call()
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(x) for x in error["loc"] if not isinstance(x, int))
        raise NotAvailable(f"fails on the spec's payload: {where}: {error['msg']}") from None
    check_list(first, n, params["case"])
    recorder.verify("GET", path, params=query)
    return per_call_us(call, params["calls"], params["warmup"])
