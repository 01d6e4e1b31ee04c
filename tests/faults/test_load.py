"""Load against the local server: every call succeeds with its own answer, the pool never
opens more connections than its limit (counted as sockets the server accepted), and after
``close`` no connection and no file descriptor remains.

``DIFY_FAULTS_LOAD`` scales the counts (1.0, the default, is the issue's numbers).
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from dify_oapi import (
    AsyncClient,
    Client,
    ClientClosedError,
    DifyError,
)

from .conftest import (
    IDS,
    LOAD,
    client_options,
    client_sockets,
    client_sockets_to,
    eventually,
    open_fds,
    pool_idle,
    pool_of,
)
from .server import FaultServer, Received, dynamic, frames, respond, sse

pytestmark = pytest.mark.faults

CHAT = "/v1/chat-messages"
INFO = "/v1/info"


def echo(request: Received) -> tuple[int, Any]:
    query = request.json()["query"]
    return 200, {"event": "message", **IDS, "mode": "chat", "answer": f"echo {query}"}


def limits(n: int) -> httpx.Limits:
    # Keep-alive longer than any test: every extra accepted socket is then a real excess.
    return httpx.Limits(max_connections=n, max_keepalive_connections=n, keepalive_expiry=300)


#: Load tests wait for the pool as long as the SDK does by default.
LOAD_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def assert_nothing_left(server: FaultServer, fds_before: int) -> None:
    assert eventually(lambda: client_sockets_to(server) == 0), client_sockets_to(server)
    assert server.wait_idle(), server.open_connections
    gc.collect()
    assert eventually(lambda: open_fds() <= fds_before), (open_fds(), fds_before)


async def test_ten_thousand_async_calls_sixty_four_in_flight(server: FaultServer) -> None:
    total, in_flight, limit = int(10_000 * LOAD), 64, 16
    server.route("POST", CHAT, dynamic(echo))
    fds_before = open_fds()
    client = AsyncClient(**client_options(server, limits=limits(limit), timeout=LOAD_TIMEOUT))
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> str:
        async with gate:
            answer: str = (await client.chat.send(query=f"q{i}", user="u")).answer
            return answer

    answers = await asyncio.gather(*(one(i) for i in range(total)))
    assert answers == [f"echo q{i}" for i in range(total)]
    assert len(server.requests_to(CHAT)) == total
    assert server.stats.max_open <= limit and server.accepted <= limit
    assert server.stats.max_in_flight <= limit
    assert pool_idle(client)
    await client.close()
    await client.close()  # closing twice is harmless
    assert_nothing_left(server, fds_before)


def test_ten_thousand_sync_calls_from_sixteen_threads(server: FaultServer) -> None:
    total, threads, limit = int(10_000 * LOAD), 16, 8
    server.route("POST", CHAT, dynamic(echo))
    fds_before = open_fds()
    client = Client(**client_options(server, limits=limits(limit), timeout=LOAD_TIMEOUT))

    def one(i: int) -> str:
        answer: str = client.chat.send(query=f"q{i}", user="u").answer
        return answer

    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(one, range(total)))
    assert answers == [f"echo q{i}" for i in range(total)]
    assert len(server.requests_to(CHAT)) == total
    assert server.stats.max_open <= limit and server.accepted <= limit
    assert pool_idle(client)
    client.close()
    client.close()
    assert_nothing_left(server, fds_before)


STREAM = [{"event": "message", **IDS, "answer": str(i)} for i in range(10)]


def test_thousand_streams_abandoned_half_way(server: FaultServer) -> None:
    total, limit = int(1_000 * LOAD), 8
    # Ten events, then the server holds the stream open until the client lets go.
    server.route("POST", CHAT, sse(frames(STREAM), end="stall"))
    fds_before = open_fds()
    client = Client(**client_options(server, limits=limits(limit)))

    def abandon(i: int) -> str:
        with client.chat.send(query=f"q{i}", user="u", stream=True) as stream:
            for n, _event in enumerate(stream):
                if n == 4:
                    break
        return stream.answer

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(abandon, range(total)))
    assert answers == ["01234"] * total
    assert len(server.requests_to(CHAT)) == total
    assert server.stats.max_open <= limit
    assert pool_idle(client)
    client.close()
    assert_nothing_left(server, fds_before)


def test_thousand_streams_dropped_half_way(server: FaultServer) -> None:
    total, limit = int(1_000 * LOAD), 8
    server.route("POST", CHAT, sse(frames(STREAM), end="stall"))
    fds_before = open_fds()
    quick_pool = httpx.Timeout(3.0, connect=1.0, pool=0.5)
    client = Client(
        **client_options(server, limits=limits(limit), timeout=quick_pool, max_retries=0)
    )

    def drop(i: int) -> str:
        stream = client.chat.send(query=f"q{i}", user="u", stream=True)
        for n, _event in enumerate(stream):
            if n == 4:
                break
        return stream.answer  # the last reference goes away on return

    # Without the cycle collector: dropping the last reference must be enough.
    gc.disable()
    try:
        answers = [drop(i) for i in range(total)]
    finally:
        gc.enable()
    assert answers == ["01234"] * total
    assert server.stats.max_open <= limit
    assert pool_idle(client)
    client.close()
    assert_nothing_left(server, fds_before)


async def test_thousand_async_streams_abandoned_half_way(server: FaultServer) -> None:
    total, limit = int(1_000 * LOAD), 8
    stream = sse(frames(STREAM), end="stall")
    held: list[int] = []
    over: list[list[tuple[int, str]]] = []

    def counted(ex: Any) -> None:
        # The client's own sockets when each request arrives: the server notices closes a
        # moment late (its threads), so its count of open connections can run ahead.
        sockets = client_sockets(server)
        held.append(len(sockets))
        if len(sockets) > limit:
            over.append(sockets)
        stream(ex)

    server.route("POST", CHAT, counted)
    fds_before = open_fds()
    client = AsyncClient(**client_options(server, limits=limits(limit)))
    gate = asyncio.Semaphore(16)

    async def abandon(i: int) -> str:
        async with gate:
            async with await client.chat.send(query=f"q{i}", user="u", stream=True) as stream:
                n = 0
                async for _event in stream:
                    n += 1
                    if n == 5:
                        break
            return stream.answer

    answers = await asyncio.gather(*(abandon(i) for i in range(total)))
    assert answers == ["01234"] * total
    assert max(held) <= limit, over  # (client port, TCP state) of each socket, when over
    assert pool_idle(client)
    await client.close()
    assert_nothing_left(server, fds_before)


# -- the wait queue is bounded by the SDK, not left to httpcore -------------------------------


class QueueProbe:
    """Samples the client pool's wait queue each time the server receives a request."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.max_queue = 0
        self.lock = threading.Lock()

    def __call__(self, _request: Received) -> None:
        with self.lock:
            self.max_queue = max(self.max_queue, len(self.pool._requests))


async def test_async_queue_is_bounded_to_the_pool(server: FaultServer) -> None:
    # httpcore's queue costs time quadratic in its length (2,000 queued POSTs: 49 s without
    # an SDK-side bound, 12 s with one); the SDK keeps its own queue, sized to the pool.
    queued, limit = int(500 * max(LOAD, 0.2)), 4
    server.route("POST", CHAT, dynamic(echo))

    # Bare httpx with the same limits: the probe sees the queue grow (so it can see it).
    async with httpx.AsyncClient(limits=limits(limit)) as bare:
        probe = QueueProbe(bare._transport._pool)  # type: ignore[attr-defined]
        server.observe = probe

        async def raw(i: int) -> None:
            body = json.dumps({"query": f"q{i}", "user": "u"})
            response = await bare.post(server.base_url + "/chat-messages", content=body)
            assert response.status_code == 200

        await asyncio.gather(*(raw(i) for i in range(queued)))
    assert probe.max_queue > limit  # without a bound in front, httpcore queues everything

    async with AsyncClient(**client_options(server, limits=limits(limit))) as client:
        probe = QueueProbe(pool_of(client))
        server.observe = probe
        before = server.stats.max_in_flight
        answers = await asyncio.gather(
            *(client.chat.send(query=f"q{i}", user="u") for i in range(queued))
        )
    assert [a.answer for a in answers] == [f"echo q{i}" for i in range(queued)]
    assert probe.max_queue <= limit, probe.max_queue
    assert max(before, server.stats.max_in_flight) <= limit


def test_sync_queue_is_bounded_to_the_pool(server: FaultServer) -> None:
    threads, limit = 16, 4
    server.route("POST", CHAT, dynamic(echo))
    with Client(**client_options(server, limits=limits(limit))) as client:
        probe = QueueProbe(pool_of(client))
        server.observe = probe
        with ThreadPoolExecutor(threads) as pool:
            answers = list(
                pool.map(lambda i: client.chat.send(query=f"q{i}", user="u"), range(400))
            )
    assert len(answers) == 400
    assert probe.max_queue <= limit, probe.max_queue
    assert server.stats.max_in_flight <= limit


def test_sync_slots_are_first_come_first_served(server: FaultServer) -> None:
    server.route("GET", INFO, respond(json={"name": "app"}))
    server.route("GET", "/v1/site", respond(json={"title": "victim"}))
    hog_calls = 600
    with Client(**client_options(server, limits=limits(1), timeout=LOAD_TIMEOUT)) as client:
        started = threading.Event()

        def hog() -> None:
            for i in range(hog_calls):
                client.dify.get_info()
                if i == 20:
                    started.set()

        thread = threading.Thread(target=hog)
        thread.start()
        assert started.wait(30)
        assert client.dify.get_site().title == "victim"  # waits for the single slot
        thread.join(60)
    paths = [r.path for r in server.requests]
    position = paths.index("/v1/site")
    # First come, first served: the victim goes within a few hog calls of asking,
    # not after the hog has finished all of its calls.
    assert position < 60, (position, len(paths))


async def test_async_slots_are_first_come_first_served(server: FaultServer) -> None:
    server.route("GET", INFO, respond(json={"name": "app"}))
    server.route("GET", "/v1/site", respond(json={"title": "victim"}))
    async with AsyncClient(
        **client_options(server, limits=limits(1), timeout=LOAD_TIMEOUT)
    ) as client:
        started = asyncio.Event()

        async def hog() -> None:
            for i in range(300):
                await client.dify.get_info()
                if i == 20:
                    started.set()

        task = asyncio.create_task(hog())
        await asyncio.wait_for(started.wait(), 30)
        assert (await client.dify.get_site()).title == "victim"
        await task
    position = [r.path for r in server.requests].index("/v1/site")
    assert position < 60, position


# -- closed clients -----------------------------------------------------------------------------


def test_use_after_close_is_a_clear_error(server: FaultServer) -> None:
    server.route("GET", INFO, respond(json={"name": "app"}))
    client = Client(**client_options(server))
    assert client.dify.get_info().name == "app"
    client.close()
    client.close()
    with pytest.raises(ClientClosedError) as info:
        client.dify.get_info()
    assert "dify.get_info" in str(info.value) and "closed" in str(info.value)
    with pytest.raises(ClientClosedError):
        client.call("chat.send", query="q", user="u")
    assert len(server.requests) == 1


async def test_async_use_after_close_is_a_clear_error(server: FaultServer) -> None:
    server.route("GET", INFO, respond(json={"name": "app"}))
    client = AsyncClient(**client_options(server))
    await client.dify.get_info()
    await client.close()
    await client.aclose()
    with pytest.raises(ClientClosedError) as info:
        await client.dify.get_info()
    assert "dify.get_info" in str(info.value)
    assert len(server.requests) == 1


def test_copies_and_the_closed_pool(server: FaultServer) -> None:
    server.route("GET", INFO, respond(json={"name": "app"}))
    client = Client(**client_options(server))
    copy = client.with_options(max_retries=0)
    copy.close()  # closing a copy leaves the shared pool open
    with pytest.raises(ClientClosedError):
        copy.dify.get_info()
    assert client.dify.get_info().name == "app"
    other = client.with_options(timeout=5.0)
    client.close()  # closing the original closes the pool under every copy
    with pytest.raises(ClientClosedError) as info:
        other.dify.get_info()
    assert "dify.get_info" in str(info.value)
    other.close()
    assert len(server.requests) == 1


def test_stream_outliving_its_client_ends_in_a_typed_error(server: FaultServer) -> None:
    server.route("POST", CHAT, sse(frames(STREAM[:3]), end="stall"))
    client = Client(**client_options(server))
    stream = client.chat.send(query="q", user="u", stream=True)
    events = iter(stream)  # held: dropping a loop's iterator would close the stream itself
    next(events)
    client.close()
    with pytest.raises(DifyError):
        for _ in events:
            pass
    assert stream.response.is_closed
    assert server.wait_idle()
