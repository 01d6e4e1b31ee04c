"""Mistakes a user makes: each line whose comment says expect-error must be flagged by both checkers,
and no other line (tests/typing/test_typing.py)."""

from __future__ import annotations

from dify_oapi import AsyncClient, Client
from dify_oapi.types import ChatResponse


def options() -> None:
    Client(api_kye="app-123")  # expect-error
    Client(timeout="5")  # expect-error
    Client(max_retries=2.5)  # expect-error
    Client(backend="aiohttp")  # expect-error
    AsyncClient(backend="curl")  # expect-error
    client = Client(api_key="app-123")
    client.with_options(max_retires=1)  # expect-error
    client.with_options(limits=None)  # expect-error
    client.with_options(default_headers={"X": 1})  # expect-error


def attributes(client: Client) -> None:
    client.chta.send(query="hi", user="u")  # expect-error
    client.chat.sned(query="hi", user="u")  # expect-error
    client.knowledge.document.lst(dataset_id="d")  # expect-error


def calls(client: Client, flag: bool) -> None:
    client.chat.send(query="hi")  # expect-error
    client.chat.send(query=1, user="u")  # expect-error
    client.chat.send(query="hi", user="u", timeot=1.0)  # expect-error
    answer: ChatResponse = client.chat.send(query="hi", user="u", stream=flag)  # expect-error
    print(answer)
