"""This SDK's clients as a user builds them."""

from __future__ import annotations

from typing import Any

import httpx
import payloads as p

from dify_oapi import Client

IN_PROCESS = "http://dify.bench/v1"


def client(
    transport: httpx.BaseTransport | None = None, base_url: str = IN_PROCESS, **kw: Any
) -> Client:
    return Client(api_key=p.API_KEY, base_url=base_url, transport=transport, **kw)
