"""A batch on a real socket: a consumer that stops stops it, a failing input loses no finished
call, a wrong key stops it early, and 429s narrow it. Sync and async.

The server is :class:`FaultServer` on 127.0.0.1; it records every request it receives, so
"nothing more was sent" is counted on the wire after the consumer stopped.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from dify_oapi import AsyncClient, AuthenticationError, Client

from .faults.server import Exchange, FaultServer, Handler, respond

KEY = "app-batch-control-test"
PATH = "/v1/chat-messages"
CONCURRENCY = 4
SETTLE = 1.0  # long enough for several answers: anything still to be sent would be by then
TIMEOUT = httpx.Timeout(10.0, connect=2.0, pool=5.0)


def answering(delay: float, status: int = 200) -> Handler:
    """Chat answers after ``delay`` seconds: ``answer`` echoes the query."""

    def handler(ex: Exchange) -> None:
        time.sleep(delay)
        if status == 401:
            body: dict[str, Any] = {"code": "unauthorized", "message": "Access token is invalid"}
            respond(401, json={**body, "status": 401})(ex)
            return
        respond(status, json={"event": "message", "answer": ex.request.json()["query"]})(ex)

    return handler


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer()
    try:
        yield srv
    finally:
        srv.close()
    assert srv.errors == [], srv.errors


def items(count: int) -> list[dict[str, Any]]:
    return [{"query": f"q{i}", "user": "u"} for i in range(count)]


def sent(server: FaultServer) -> int:
    return len(server.requests_to(PATH, "POST"))


def queries(server: FaultServer) -> list[str]:
    return [r.json()["query"] for r in server.requests_to(PATH, "POST")]


def client(server: FaultServer, **options: Any) -> Client:
    return Client(api_key=KEY, base_url=server.base_url, timeout=TIMEOUT, **options)


def aclient(server: FaultServer, **options: Any) -> AsyncClient:
    return AsyncClient(api_key=KEY, base_url=server.base_url, timeout=TIMEOUT, **options)


# -- a consumer that stops stops the batch --------------------------------------------------

#: A call begun before the stop reaches the server within this; one begun after it, a whole
#: answer later (the server answers in ANSWER seconds).
GRACE = 0.1
ANSWER = 0.3


def arrivals(server: FaultServer) -> list[float]:
    """When each request reached the server (monotonic clock)."""
    times: list[float] = []
    server.observe = lambda request: times.append(time.monotonic())
    return times


def late(times: list[float], stop: float) -> list[float]:
    """Requests that began after the consumer stopped at ``stop``."""
    time.sleep(SETTLE)
    return [round(t - stop, 3) for t in times if t > stop + GRACE]


def test_breaking_out_starts_nothing_more_even_unclosed(server: FaultServer) -> None:
    server.route("POST", PATH, answering(ANSWER))
    times = arrivals(server)
    with client(server) as c:
        results = c.iter_batch("chat.send", items(40), concurrency=CONCURRENCY)
        for result in results:  # held in a variable: not closed by the break
            assert result.ok
            break
        stop = time.monotonic()
        assert late(times, stop) == []
        assert sent(server) == results.stats.started < 40


def test_an_exception_in_the_consumer_starts_nothing_more(server: FaultServer) -> None:
    server.route("POST", PATH, answering(ANSWER))
    times = arrivals(server)
    with client(server) as c:
        results = c.iter_batch("chat.send", items(40), concurrency=CONCURRENCY)
        with pytest.raises(RuntimeError, match="consumer failed"):
            for done, _ in enumerate(results, 1):
                if done == 3:
                    stop = time.monotonic()
                    raise RuntimeError("consumer failed")
        assert late(times, stop) == []
        assert sent(server) == results.stats.started < 40


def test_an_exception_in_on_result_stops_the_batch(server: FaultServer) -> None:
    server.route("POST", PATH, answering(ANSWER))
    times = arrivals(server)
    stop = 0.0

    def on_result(result: Any, done: int) -> None:
        nonlocal stop
        if done == 2:
            stop = time.monotonic()
            raise ValueError("progress callback failed")

    with client(server) as c, pytest.raises(ValueError, match="progress callback"):
        c.batch("chat.send", items(40), concurrency=CONCURRENCY, on_result=on_result)
    assert late(times, stop) == []


CTRL_C = """
import os, signal, sys, threading, time
from dify_oapi import Client

client = Client(api_key="app-ctrl-c", base_url=sys.argv[1])
results = client.iter_batch(
    "chat.send", [{"query": f"q{i}", "user": "u"} for i in range(40)], concurrency=4
)
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    for result in results:
        assert result.ok
except KeyboardInterrupt:
    print(results.stats.started, flush=True)
    time.sleep(float(sys.argv[2]))  # in flight calls end; nothing new may start
    os._exit(0)
os._exit(1)
"""


def test_ctrl_c_while_waiting_starts_nothing_more(server: FaultServer) -> None:
    server.route("POST", PATH, answering(0.2))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CTRL_C), server.base_url, str(SETTLE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    started = int(done.stdout)
    assert CONCURRENCY <= started < 40
    assert sent(server) == started


async def test_async_breaking_out_starts_nothing_more_even_unclosed(server: FaultServer) -> None:
    server.route("POST", PATH, answering(ANSWER))
    times = arrivals(server)
    async with aclient(server) as c:
        results = c.iter_batch("chat.send", items(40), concurrency=CONCURRENCY)
        async for result in results:  # not closed by the break
            assert result.ok
            break
        stop = time.monotonic()
        await asyncio.sleep(SETTLE)
        assert late(times, stop) == []
        assert sent(server) == results.stats.started < 40
        await results.aclose()


async def test_async_exception_in_the_consumer_starts_nothing_more(server: FaultServer) -> None:
    server.route("POST", PATH, answering(ANSWER))
    times = arrivals(server)
    async with aclient(server) as c:
        results = c.iter_batch("chat.send", items(40), concurrency=CONCURRENCY)
        with pytest.raises(RuntimeError):
            async for result in results:
                if result.index == 2:
                    stop = time.monotonic()
                    raise RuntimeError("consumer failed")
        await asyncio.sleep(SETTLE)
        assert late(times, stop) == []
        assert sent(server) == results.stats.started < 40


# -- a failing input loses no finished call -----------------------------------------------


def failing_input(count: int) -> Iterator[dict[str, Any]]:
    yield from items(count)
    raise ValueError("line 7: not JSON")


async def afailing_input(count: int) -> AsyncIterator[dict[str, Any]]:
    for item in items(count):
        yield item
    raise ValueError("line 7: not JSON")


def test_a_failing_input_gives_out_every_call_that_ran_then_raises(server: FaultServer) -> None:
    server.route("POST", PATH, answering(0.2))
    got = []
    with client(server) as c, pytest.raises(ValueError, match="line 7"):
        for result in c.iter_batch("chat.send", failing_input(6), concurrency=CONCURRENCY):
            got.append(result)
    assert [(r.index, r.value.answer) for r in got] == [(i, f"q{i}") for i in range(6)]
    assert sorted(queries(server)) == [f"q{i}" for i in range(6)]  # each ran once


async def test_async_failing_input_gives_out_every_call_that_ran(server: FaultServer) -> None:
    server.route("POST", PATH, answering(0.2))
    got = []
    async with aclient(server) as c:
        with pytest.raises(ValueError, match="line 7"):
            async for result in c.iter_batch(
                "chat.send", afailing_input(6), concurrency=CONCURRENCY
            ):
                got.append(result)
        with pytest.raises(ValueError, match="line 7"):  # a plain iterable the same way
            await c.batch("chat.send", failing_input(3), concurrency=CONCURRENCY)
    assert [(r.index, r.value.answer) for r in got] == [(i, f"q{i}") for i in range(6)]
    assert all(r.bytes_sent > 0 for r in server.requests_to(PATH))  # none was cut mid-answer
    assert sorted(queries(server)) == sorted([f"q{i}" for i in range(6)] + ["q0", "q1", "q2"])


# -- a wrong key stops the batch ---------------------------------------------------------------


def test_a_batch_whose_first_answers_are_401_stops(server: FaultServer) -> None:
    server.route("POST", PATH, answering(0.05, status=401))
    with client(server) as c, pytest.raises(AuthenticationError, match="Access token is invalid"):
        c.batch("chat.send", items(40), concurrency=CONCURRENCY)
    time.sleep(0.3)
    assert sent(server) == CONCURRENCY  # the first round, not the 40


async def test_async_batch_whose_first_answers_are_401_stops(server: FaultServer) -> None:
    server.route("POST", PATH, answering(0.05, status=401))
    async with aclient(server) as c:
        with pytest.raises(AuthenticationError):
            await c.batch("chat.send", items(40), concurrency=CONCURRENCY)
    assert sent(server) == CONCURRENCY


def test_a_401_among_good_answers_is_just_that_items_result(server: FaultServer) -> None:
    server.route("POST", PATH, answering(0.05, status=401), answering(0.1))
    with client(server, max_retries=0) as c:
        results = c.batch("chat.send", items(10), concurrency=3)
    refused = [r for r in results if not r.ok]  # the first to arrive, whichever it was
    assert len(refused) == 1 and isinstance(refused[0].error, AuthenticationError)
    assert [r.index for r in results] == list(range(10))
    assert sent(server) == 10


def test_items_with_their_own_key_do_not_stop_the_batch(server: FaultServer) -> None:
    server.route("POST", PATH, answering(0.02, status=401))
    own = [{**item, "api_key": "app-someone-else"} for item in items(6)]
    with client(server) as c:
        results = c.batch("chat.send", own, concurrency=2)
    assert [isinstance(r.error, AuthenticationError) for r in results] == [True] * 6
    assert sent(server) == 6


# -- narrowing under the app's concurrency cap -----------------------------------------------


class Capped:
    """Answers 429 ``too_many_requests`` beyond ``cap`` requests at once, like Dify's
    per-app ``max_active_requests``; counts the requests it let through at once."""

    def __init__(self, cap: int, delay: float) -> None:
        self.cap = cap
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.refused = 0
        self.answered: list[str] = []

    def __call__(self, ex: Exchange) -> None:
        with self.lock:
            admitted = self.active < self.cap
            if admitted:
                self.active += 1
                self.peak = max(self.peak, self.active)
            else:
                self.refused += 1
        if not admitted:
            body = {"code": "too_many_requests", "message": "Too many requests.", "status": 429}
            respond(429, json=body)(ex)
            return
        try:
            time.sleep(self.delay)
            query = ex.request.json()["query"]
            with self.lock:
                self.answered.append(query)
        finally:
            with self.lock:
                self.active -= 1
        respond(200, json={"event": "message", "answer": query})(ex)


@pytest.mark.parametrize("retries", [0, 2], ids=["no-client-retries", "client-retries"])
def test_the_width_settles_under_the_apps_cap_with_no_failed_item(
    server: FaultServer, retries: int
) -> None:
    capped = Capped(cap=3, delay=0.02)
    server.route("POST", PATH, capped)
    with client(server, max_retries=retries) as c:
        results = c.batch("chat.send", items(200), concurrency=12)
    assert [r.error for r in results if not r.ok] == []
    assert [r.value.answer for r in results] == [f"q{i}" for i in range(200)]
    assert sorted(capped.answered) == sorted(f"q{i}" for i in range(200))  # each once
    stats = results.stats
    assert capped.refused > 0 and stats.throttled > 0
    assert 1 <= stats.width <= capped.cap < stats.concurrency
    assert stats.started == 200 + stats.throttled
    # Narrowed: far fewer refusals than the 9 of every 12 a fixed width would draw.
    assert capped.refused < 100


async def test_async_width_settles_under_the_apps_cap(server: FaultServer) -> None:
    capped = Capped(cap=3, delay=0.02)
    server.route("POST", PATH, capped)
    async with aclient(server, max_retries=0) as c:
        results = await c.batch("chat.send", items(200), concurrency=12)
    assert all(r.ok for r in results)
    assert sorted(capped.answered) == sorted(f"q{i}" for i in range(200))
    assert 1 <= results.stats.width <= capped.cap
    assert results.stats.throttled == capped.refused > 0


def test_a_quota_429_is_the_items_result_not_narrowed(server: FaultServer) -> None:
    body = {"code": "rate_limit_error", "message": "Quota.", "status": 429}
    server.route("POST", PATH, respond(429, json=body), answering(0.01))
    with client(server) as c:
        results = c.batch("chat.send", items(4), concurrency=1)
    assert [r.ok for r in results] == [False, True, True, True]
    assert results.stats.throttled == 0 and results.stats.width == 1
    assert json.loads(server.requests_to(PATH)[0].body or b"{}")["query"] == "q0"


def collected(count: int) -> list[dict[str, Any]]:
    return [{**item, "collect": True} for item in items(count)]


def _replies(seen: list[str]) -> Any:
    def reply(query: str, inputs: dict[str, Any]) -> str:
        seen.append(query)
        return query + " is answered word by word"

    return reply


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_width_settles_under_the_emulators_cap(kind: str) -> None:
    """The same against the emulator's own cap (Dify's max_active_requests), over loopback:
    collected streams hold the app's slot while their words arrive."""
    from dify_oapi.emulator import AppDefinition, Emulator

    seen: list[str] = []
    app = AppDefinition(mode="chat", replies=_replies(seen))
    emulator = Emulator(app=app, max_concurrent_requests=3, stream_delay=0.003)
    with emulator.serve() as running:
        options: dict[str, Any] = {"api_key": "app-capped", "base_url": running.url}
        if kind == "sync":
            with Client(**options, max_retries=0) as c:
                results = c.batch("chat.send", collected(120), concurrency=12)
        else:

            async def run() -> Any:
                async with AsyncClient(**options, max_retries=0) as c:
                    return await c.batch("chat.send", collected(120), concurrency=12)

            results = asyncio.run(run())
    assert [r.error for r in results if not r.ok] == []
    assert [r.value.answer for r in results] == [
        f"q{i} is answered word by word" for i in range(120)
    ]
    assert sorted(seen) == sorted(f"q{i}" for i in range(120))  # each generated once
    assert results.stats.throttled > 0
    assert 1 <= results.stats.width <= 3 < results.stats.concurrency
