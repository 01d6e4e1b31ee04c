"""client.batch: input order, errors as values, bounded concurrency, progress, async twin."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from dify_oapi import (
    AsyncClient,
    BadRequestError,
    BatchResult,
    Client,
    InvalidArgumentsError,
)
from dify_oapi.types import ChatRequest

from .conftest import BASE, KEY


class Server:
    """An in-process fake that answers chat calls slowly and tracks concurrency."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.bodies: list[bytes] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.bodies.append(request.content)
        try:
            # Later inputs finish first, so ordering is really exercised.
            time.sleep(self.delay * (1 + (10 - int(body["query"])) % 4))
            if body["query"] == "3":
                return httpx.Response(400, json={"code": "invalid_param", "message": "bad 3"})
            return httpx.Response(200, json={"answer": "echo " + body["query"]})
        finally:
            with self.lock:
                self.active -= 1

    async def aanswer(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        return await asyncio.to_thread(self.answer, request)


def test_results_in_input_order_with_errors_as_values() -> None:
    server = Server()
    client = Client(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(server.answer))
    seen: list[tuple[int, int]] = []
    items: list[Any] = [{"query": str(i), "user": "u"} for i in range(10)]
    items[5] = ChatRequest(query="5", user="u")
    results = client.batch(
        "chat.send", items, concurrency=3, on_result=lambda r, done: seen.append((r.index, done))
    )
    assert [r.index for r in results] == list(range(10))
    assert [r.value.answer for r in results if r.ok] == [f"echo {i}" for i in range(10) if i != 3]
    failed = results[3]
    assert not failed.ok and isinstance(failed.error, BadRequestError)
    assert failed.input == {"query": "3", "user": "u"} and "bad 3" in str(failed.error)
    assert results[5].input == items[5]
    assert seen == [(i, i + 1) for i in range(10)]
    assert 1 < server.peak <= 3
    assert len(server.bodies) == 10


def test_options_apply_to_every_call_and_unknown_operation_fails_first() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"name": "x"})

    client = Client(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(handler))
    results = client.batch("dify.get_info", [{}, {}], api_key="app-other", concurrency=1)
    assert all(r.ok for r in results)
    assert {r.headers["authorization"] for r in requests} == {"Bearer app-other"}
    with pytest.raises(InvalidArgumentsError, match="unknown operation"):
        client.batch("chat.nope", [{}])
    with pytest.raises(InvalidArgumentsError, match="concurrency"):
        client.batch("chat.send", [{}], concurrency=0)
    assert len(requests) == 2


def test_iter_batch_streams_a_long_input_lazily() -> None:
    server = Server(delay=0)
    client = Client(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(server.answer))
    pulled = 0

    def items() -> Any:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield {"query": str(i % 10 if i % 10 != 3 else 4), "user": "u"}

    iterator = client.iter_batch("chat.send", items(), concurrency=4)
    first = next(iterator)
    assert first.index == 0 and first.ok
    assert pulled <= 4 * 2 + 1  # only a bounded window is read ahead
    iterator.close()


def test_repr() -> None:
    assert repr(BatchResult(2, {}, "v")) == "<BatchResult #2 ok>"


async def test_async_batch_order_errors_and_bound() -> None:
    server = Server()
    client = AsyncClient(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(server.aanswer))
    items = [{"query": str(i), "user": "u"} for i in range(10)]
    results = await client.batch("chat.send", items, concurrency=2)
    assert [r.index for r in results] == list(range(10))
    assert [r.ok for r in results] == [i != 3 for i in range(10)]
    assert isinstance(results[3].error, BadRequestError)
    assert 1 <= server.peak <= 2
    await client.aclose()
