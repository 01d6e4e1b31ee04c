"""dify-client (PyPI): ``ChatClient(api_key)``, answers are ``requests.Response`` objects.

It has no base-URL argument: the attribute is set after construction. Each call goes through
``requests.request``, which opens a new session (and connection) every time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import payloads as p
import requests
from dify_client import ChatClient

IN_PROCESS = "http://dify.bench/v1"


def client(base_url: str = IN_PROCESS) -> ChatClient:
    chat = ChatClient(p.API_KEY)
    chat.base_url = base_url
    return chat


def parse(response: requests.Response) -> Any:
    response.raise_for_status()
    return response.json()


def events(response: requests.Response) -> Iterator[Any]:
    """What a dify-client user writes: ``iter_lines`` and json.loads of ``data:`` lines."""
    response.raise_for_status()
    for line in response.iter_lines():
        if line.startswith(b"data:"):
            yield json.loads(line[5:])
