"""Raw httpx, request bodies as dicts (``json=``), answers via ``response.json()``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import payloads as p

IN_PROCESS = "http://dify.bench/v1"
AUTH = {"Authorization": f"Bearer {p.API_KEY}"}


def client(
    transport: httpx.BaseTransport | None = None, base_url: str = IN_PROCESS, **kw: Any
) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=AUTH, transport=transport, **kw)


def check_status(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")


def events(response: httpx.Response) -> Iterator[Any]:
    """``data:`` lines of an event stream, each parsed with json.loads."""
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield json.loads(line[5:])
