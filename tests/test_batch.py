"""client.batch: input order, errors as values, bounded concurrency, progress, async twin."""

from __future__ import annotations

import ast
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import dify_oapi.batch
from dify_oapi import (
    AsyncClient,
    BadRequestError,
    BatchResult,
    Client,
    ConfigurationError,
    DifyError,
    InvalidArgumentsError,
)
from dify_oapi.batch import BatchResults
from dify_oapi.types import ChatRequest, ChatResponse

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


# -- crossing processes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        None,
        ValueError("plain"),
        DifyError("an SDK error"),
        InvalidArgumentsError("chat.send() got an unexpected keyword argument 'x'"),
        ConfigurationError("base_url must be an absolute http(s) URL"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_batch_result_pickles_with_its_class_and_fields(error: Exception | None) -> None:
    value = None if error else ChatResponse(answer="hi", conversation_id="c-1")
    result: BatchResult[Any] = BatchResult(7, {"query": "q", "user": "u"}, value, error)
    back = pickle.loads(pickle.dumps(result))
    assert type(back) is BatchResult
    assert (back.index, back.input, back.value, back.ok) == (7, result.input, value, error is None)
    if error is not None:
        assert type(back.error) is type(error) and back.error.args == error.args


def test_a_key_an_item_carried_stays_behind(tmp_path: Any) -> None:
    secret = "app-ITEMSECRET0123456789"
    result: BatchResult[Any] = BatchResult(0, {"query": "q", "api_key": secret}, None, None)
    data = pickle.dumps(result)
    assert secret.encode() not in data and secret not in repr(result)
    assert pickle.loads(data).input == {"query": "q", "api_key": "***"}
    assert result.input["api_key"] == secret  # the caller's own object is left as it was


def test_batch_results_and_stats_pickle() -> None:
    server = Server(delay=0)
    client = Client(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(server.answer))
    results = client.batch("chat.send", [{"query": "1", "user": "u"}], concurrency=2)
    back = pickle.loads(pickle.dumps(results))
    assert type(back) is BatchResults and back[0].value.answer == "echo 1"
    assert repr(back.stats) == repr(results.stats)
    assert repr(results.stats) == "<BatchStats concurrency=2 peak=1 started=1 throttled=0 width=2>"


def test_the_batch_runner_imports_no_client() -> None:
    """The batch package depends on a small protocol, not on the client module."""
    package = Path(dify_oapi.batch.__file__).parent
    for module in package.glob("*.py"):
        named: set[str] = set()
        for node in ast.walk(ast.parse(module.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                named |= {node.module or "", *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                named |= {a.name for a in node.names}
        assert not [n for n in named if "_client" in n.split(".")], module.name
