"""One ``AsyncClient``, many event loops: a later loop rebuilds what a closed one owned; a
loop that still runs is named in a clear error; closing works from any loop (issue 12,
item 4). Real sockets, both async backends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dify_oapi import AsyncClient, ClientClosedError, DifyError, LoopMismatchError

from ..faults.conftest import IDS, client_options
from ..faults.kit import ASYNC_KINDS
from ..faults.server import FaultServer, frames, respond, sse

INFO = "/v1/info"
CHAT = "/v1/chat-messages"


def _client(server: FaultServer, kind: str, **options: Any) -> AsyncClient:
    extra = {"backend": "aiohttp"} if kind == "aiohttp" else {}
    return AsyncClient(**client_options(server, **extra, **options))


@pytest.fixture
def info(server: FaultServer) -> FaultServer:
    server.route("GET", INFO, respond(json={"name": "n"}))
    return server


class LoopThread:
    """An event loop running on a thread of its own, as a GUI or server would have it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    running = LoopThread()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_a_second_asyncio_run_rebuilds_the_pool(info: FaultServer, kind: str) -> None:
    client = _client(info, kind)
    for _ in range(3):  # notebooks and test suites: one asyncio.run per job
        assert asyncio.run(client.dify.get_info()).name == "n"
    asyncio.run(client.close())
    # each closed loop's connection was left; each run opened its own
    assert len({r.conn_id for r in info.requests_to(INFO)}) == 3


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_a_stream_left_open_in_a_closed_loop_is_no_false_closed_error(
    server: FaultServer, kind: str
) -> None:
    events = [{"event": "message", **IDS, "answer": "a"}]
    server.route("POST", CHAT, sse(frames(events), end="stall"))
    server.route("GET", INFO, respond(json={"name": "n"}))
    client = _client(server, kind, limits=httpx.Limits(max_connections=1))

    async def leave_open() -> Any:
        stream = await client.chat.send(query="q", user="u", stream=True)
        return await stream.__anext__()

    assert asyncio.run(leave_open()).answer == "a"
    # the slot and the socket belonged to the closed loop: "Event loop is closed" must not
    # surface as ClientClosedError, nor the old loop's slot be waited for
    assert asyncio.run(client.dify.get_info()).name == "n"
    asyncio.run(client.close())


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_a_loop_that_still_runs_is_named_in_a_clear_error(
    info: FaultServer, loop_thread: LoopThread, kind: str
) -> None:
    client = _client(info, kind)
    assert loop_thread.run(client.dify.get_info()).name == "n"
    with pytest.raises(LoopMismatchError) as error:
        asyncio.run(client.dify.get_info())
    assert isinstance(error.value, DifyError) and not isinstance(error.value, ClientClosedError)
    assert "event loop" in str(error.value)
    assert loop_thread.run(client.dify.get_info()).name == "n"  # its own loop still works
    asyncio.run(client.close())  # closing from another loop: no error
    with pytest.raises(ClientClosedError):
        loop_thread.run(client.dify.get_info())
    assert info.wait_idle(5)  # the pool was closed on its own loop: the socket is gone


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_close_after_the_loop_closed_does_not_raise(info: FaultServer, kind: str) -> None:
    client = _client(info, kind)
    assert asyncio.run(client.dify.get_info()).name == "n"
    asyncio.run(client.close())
    asyncio.run(client.close())  # twice, each in a loop of its own
    with pytest.raises(ClientClosedError):
        asyncio.run(client.dify.get_info())


def test_a_callers_http_client_of_a_closed_loop_is_a_clear_error(info: FaultServer) -> None:
    http = httpx.AsyncClient()
    client = AsyncClient(**client_options(info, http_client=http))
    assert asyncio.run(client.dify.get_info()).name == "n"
    with pytest.raises(LoopMismatchError, match="http_client"):
        asyncio.run(client.dify.get_info())


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_close_from_another_loop_returns_when_the_clients_loop_has_stopped(
    info: FaultServer, kind: str
) -> None:
    # The client's loop is not closed, only stopped (its run_until_complete returned), as
    # when a reader thread's stream ends just as another thread closes the client.
    loop = asyncio.new_event_loop()
    client = _client(info, kind)
    try:
        assert loop.run_until_complete(client.dify.get_info()).name == "n"
        closer = threading.Thread(target=lambda: asyncio.run(client.close()), daemon=True)
        closer.start()
        closer.join(timeout=5)
        assert not closer.is_alive(), "close() waits on a loop that no longer runs"
        with pytest.raises(ClientClosedError):
            loop.run_until_complete(client.dify.get_info())
        loop.run_until_complete(asyncio.sleep(0.05))  # the queued close runs on this turn
        assert info.wait_idle(5)
    finally:
        loop.close()
