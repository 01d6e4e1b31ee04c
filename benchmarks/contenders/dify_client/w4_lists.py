"""W4: ``get_conversation_messages(...).json()``; dify-client has no knowledge-base API."""

from __future__ import annotations

from typing import Any

import payloads as p
from harness import NotAvailable, Recorded, check_list, per_call_us

from contenders import _mock_requests

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "messages":
        raise NotAvailable("dify-client 0.1.10 has no knowledge-base API")
    sizes = p.Sizes.from_dict(params["sizes"])
    n = sizes.list_items
    recorder = Recorded()
    _mock_requests.install(body=p.messages_list(sizes), recorder=recorder)
    client = c.client()

    def call() -> Any:
        return c.parse(
            client.get_conversation_messages(p.USER, conversation_id=p.CONVERSATION_ID, limit=n)
        )

    check_list(call(), n, "messages")
    query = {"conversation_id": p.CONVERSATION_ID, "user": p.USER, "limit": n}
    recorder.verify("GET", "/v1/messages", params=query)
    return per_call_us(call, params["calls"], params["warmup"])
