"""W5: blocking chat from threads (a new requests session per call); no async API."""

from __future__ import annotations

from typing import Any

import payloads as p
from harness import NotAvailable, drive_threads

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "sync":
        raise NotAvailable("dify-client 0.1.10 has no async API")
    client = c.client(params["base_url"])

    def call() -> Any:
        return c.parse(client.create_chat_message({}, p.QUERY, p.USER, response_mode="blocking"))

    return drive_threads(call, params["calls"], params["threads"], params["warmup"])
