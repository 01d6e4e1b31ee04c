"""Correct user code: both checkers must accept it with no error (tests/typing/test_typing.py)."""

from __future__ import annotations

import httpx
from typing_extensions import assert_type

from dify_oapi import AsyncClient, AsyncStream, Client, RawResponse, Stream
from dify_oapi.types import ChatEvent, ChatResponse, UnknownEvent


def construct() -> Client:
    client = Client(
        api_key="app-123",
        base_url="http://127.0.0.1:5001",
        timeout=httpx.Timeout(10.0),
        max_retries=3,
        default_headers={"X-Trace": "1"},
        deadline=30.0,
        follow_redirects=False,
    )
    copy = client.with_options(timeout=2.5, max_retries=0, idle_timeout=5.0)
    assert_type(copy, Client)
    return copy


async def construct_async() -> AsyncClient:
    client = AsyncClient(api_key="app-123", backend="aiohttp", timeout=5.0)
    return client.with_options(base_url="http://localhost/v1")


def answer(client: Client, flag: bool) -> str:
    result = client.chat.send(query="hi", user="u", stream=flag)
    assert_type(result, ChatResponse | Stream[ChatEvent])
    if isinstance(result, Stream):
        return "".join(type(event).__name__ for event in result)
    return result.answer


def narrow(client: Client) -> None:
    assert_type(client.chat.send(query="hi", user="u"), ChatResponse)
    assert_type(client.chat.send(query="hi", user="u", stream=True), Stream[ChatEvent])
    assert_type(client.chat.send(query="hi", user="u", raw=True), RawResponse[ChatResponse])
    assert_type(client.chat.send(query="hi", user="u", timeout=1.0, max_retries=1), ChatResponse)
    for event in client.chat.send(query="hi", user="u", stream=True):
        assert_type(event, ChatEvent | UnknownEvent)


async def narrow_async(client: AsyncClient, flag: bool) -> None:
    result = await client.chat.send(query="hi", user="u", stream=flag)
    assert_type(result, ChatResponse | AsyncStream[ChatEvent])


def by_name(client: Client) -> None:
    # The dynamic door stays open: any operation by its name, untyped.
    client.call("chat.send", query="hi", user="u")
