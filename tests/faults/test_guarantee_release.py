"""Every object that holds a connection gives it back, however its life ends; cancellation is
never swallowed (issue 11, items 4 and 6). Real sockets, a pool of two."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import dify_oapi._client as client_module
from dify_oapi import AsyncClient

from .conftest import IDS, client_options
from .kit import Kit, kinds
from .server import FaultServer, frames, respond, sse, stall, stream_bytes

CHAT = "/v1/chat-messages"
AUDIO = "/v1/text-to-audio"
INFO = "/v1/info"
ASK: dict[str, Any] = {"query": "q", "user": "u"}
SAY: dict[str, Any] = {"text": "hi", "user": "u"}
EVENTS = [{"event": "message", **IDS, "answer": str(i)} for i in range(5)]
DONE = [*EVENTS, {"event": "message_end", **IDS, "id": "m-1"}]
#: A pool of two, and a short wait for a slot: a slot that is not given back fails fast.
POOL2: dict[str, Any] = {
    "limits": httpx.Limits(max_connections=2),
    "timeout": httpx.Timeout(3.0, connect=1.0, pool=0.5),
    "max_retries": 0,
}
_REAL_ASYNC_SLEEP = client_module._async_sleep


def _gc_off(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with the cycle collector off: reference counting alone must do."""
    gc.disable()
    try:
        return fn()
    finally:
        gc.enable()


def _in_a_cycle(*objects: Any) -> None:
    """Put ``objects`` into a reference cycle, so only the cycle collector can free them."""
    ring: list[Any] = list(objects)
    ring.append(ring)


# Each ending takes the kit and a fresh holder (event stream or binary download) and ends its
# life one way; the last reference to the holder goes away when the ending returns. All but
# `collected` run with the cycle collector off.


def consumed(kit: Kit, holder: Any, binary: bool) -> None:
    if binary:
        assert len(kit.all_bytes(holder)) == 256 * 1024
    else:
        assert len(kit.all_events(holder)) == len(DONE)


def left_early(kit: Kit, holder: Any, binary: bool) -> None:
    first = kit.first_chunk_then_leave(holder) if binary else kit.first_then_leave(holder)
    assert first


def closed(kit: Kit, holder: Any, binary: bool) -> None:
    if binary:
        kit.next_chunk(kit.byte_chunks(holder))
    else:
        kit.next_event(holder)
    kit.run(holder.close())


def closed_unread(kit: Kit, holder: Any, binary: bool) -> None:
    kit.run(holder.close())


def never_iterated(kit: Kit, holder: Any, binary: bool) -> None:
    pass  # the last reference goes away on return


def dropped(kit: Kit, holder: Any, binary: bool) -> None:
    if binary:
        chunks = kit.byte_chunks(holder)
        kit.next_chunk(chunks)
    else:
        kit.next_event(holder)


def collected(kit: Kit, holder: Any, binary: bool) -> None:
    if binary:
        chunks = kit.byte_chunks(holder)
        kit.next_chunk(chunks)
        _in_a_cycle(holder, chunks)
    else:
        kit.next_event(holder)
        _in_a_cycle(holder)


ENDINGS = {
    f.__name__: f
    for f in (consumed, left_early, closed, closed_unread, never_iterated, dropped, collected)
}


def _route(server: FaultServer, ending: str) -> None:
    if ending == "consumed":
        server.route("POST", CHAT, sse(frames(DONE)))
        server.route("POST", AUDIO, stream_bytes(256 * 1024, content_type="audio/mpeg"))
    else:  # the server holds the body open until the client lets go
        server.route("POST", CHAT, sse(frames(EVENTS), end="stall"))
        server.route("POST", AUDIO, stream_bytes(64 << 20, content_type="audio/mpeg"))
    server.route("GET", INFO, respond(json={"name": "free"}))


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("holder", ["events", "binary"])
@pytest.mark.parametrize("kind", kinds())
def test_every_holder_gives_its_slot_back_however_it_ends(
    server: FaultServer, make_kit: Any, kind: str, holder: str, ending: str
) -> None:
    _route(server, ending)
    kit: Kit = make_kit(kind, **POOL2)
    binary = holder == "binary"

    def open_one() -> Any:
        if binary:
            return kit.call("dify.text_to_audio", **SAY, stream=True)
        return kit.call("chat.send", **ASK, stream=True)

    end = ENDINGS[ending]
    for _ in range(3):  # one more than the pool holds: a slot kept is a PoolTimeout here
        if ending == "collected":
            end(kit, open_one(), binary)
            gc.collect()
        else:
            _gc_off(lambda: end(kit, open_one(), binary))
    # Both slots are free: two holders at once, then a plain call.
    first, second = open_one(), open_one()
    kit.run(first.close())
    kit.run(second.close())
    assert kit.call("dify.get_info").name == "free"
    path = AUDIO if binary else CHAT
    assert len(server.requests_to(path)) == 5


async def test_a_thousand_abandoned_async_streams_log_no_error(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Left in the middle: half inside `async with`, half without it or close(), so that only
    # the garbage collector and the event loop end them.
    server.route("POST", CHAT, sse(frames(EVENTS), end="stall"))
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    caplog.set_level(logging.DEBUG, logger="asyncio")
    options = client_options(server, limits=httpx.Limits(max_connections=8))
    options["timeout"] = httpx.Timeout(3.0, connect=1.0, pool=3.0)
    gate = asyncio.Semaphore(16)

    async def leave(stream: Any) -> None:
        n = 0
        async for _event in stream:
            n += 1
            if n == 3:
                break

    async def abandon(i: int) -> str:
        async with gate:
            stream = await client.chat.send(query=f"q{i}", user="u", stream=True)
            if i % 2:
                await leave(stream)  # then dropped, never closed
            else:
                async with stream:
                    await leave(stream)
            return stream.answer

    async with AsyncClient(**options) as client:
        answers = await asyncio.gather(*(abandon(i) for i in range(1000)))
        gc.collect()
        for _ in range(50):
            await asyncio.sleep(0.01)
    assert answers == ["012"] * 1000
    assert reported == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert server.wait_idle(10.0)


# -- item 6: cancellation is never swallowed -------------------------------------------------


async def _cancelled(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` ended by raising CancelledError (bounded wait)."""
    done, _ = await asyncio.wait((task,), timeout=5.0)
    assert done, "the task went on after it was cancelled"
    return task.cancelled()


async def test_cancelled_while_waiting_for_a_slot(server: FaultServer) -> None:
    server.route("POST", CHAT, sse(frames(EVENTS), end="stall"))
    server.route("GET", INFO, respond(json={"name": "free"}))
    options = client_options(server, limits=httpx.Limits(max_connections=1), max_retries=0)
    async with AsyncClient(**options) as client:
        holder = await client.chat.send(**ASK, stream=True)
        waiting = asyncio.ensure_future(client.dify.get_info())
        await asyncio.sleep(0.1)  # it is queued for the one slot
        waiting.cancel()
        assert await _cancelled(waiting)
        await holder.close()
        assert (await client.dify.get_info()).name == "free"  # the slot was not lost


async def test_cancelled_just_as_a_slot_is_handed_over(server: FaultServer) -> None:
    # The slot's grant and the cancellation land in the same loop step: asyncio.wait_for on
    # Python 3.10 and 3.11 returns the grant and drops the cancellation.
    server.route("POST", CHAT, sse(frames(EVENTS), end="stall"))
    server.route("GET", INFO, respond(json={"name": "free"}))
    options = client_options(server, limits=httpx.Limits(max_connections=1), max_retries=0)
    async with AsyncClient(**options) as client:
        for _ in range(3):
            holder = await client.chat.send(**ASK, stream=True)
            waiting = asyncio.ensure_future(client.dify.get_info())
            await asyncio.sleep(0.05)
            await holder.close()  # hands the slot to the waiting task ...
            waiting.cancel()  # ... which is cancelled before it runs again
            assert await _cancelled(waiting)
        assert (await client.dify.get_info()).name == "free"
    assert len(server.requests_to(INFO)) == 1


async def test_cancelled_in_a_retry_sleep(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "_async_sleep", _REAL_ASYNC_SLEEP)  # a real wait
    busy = {"status": 503, "code": "busy", "message": "later"}
    server.route("GET", INFO, respond(503, json=busy, headers={"Retry-After": "30"}))
    async with AsyncClient(**client_options(server, max_retries=2)) as client:
        task = asyncio.ensure_future(client.dify.get_info())
        deadline = time.monotonic() + 5
        while not server.requests_to(INFO) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # now in the 30 s wait before the retry
        start = time.monotonic()
        task.cancel()
        assert await _cancelled(task)
        assert time.monotonic() - start < 1.0
    assert len(server.requests_to(INFO)) == 1


async def test_cancelled_in_a_stream_read(server: FaultServer) -> None:
    server.route("POST", CHAT, sse(frames(EVENTS[:1]), end="stall"))
    server.route("GET", INFO, respond(json={"name": "free"}))
    options = client_options(server, limits=httpx.Limits(max_connections=1), max_retries=0)
    async with AsyncClient(**options) as client:
        stream = await client.chat.send(**ASK, stream=True)
        assert (await stream.__anext__()).answer == "0"

        async def read_on(events: Any) -> list[Any]:
            return [event async for event in events]

        task = asyncio.ensure_future(read_on(stream))
        await asyncio.sleep(0.1)  # blocked reading the stalled body
        task.cancel()
        assert await _cancelled(task)
        assert stream.closed
        del stream
        # The cancelled read gave its connection and its slot back.
        assert (await client.dify.get_info(timeout=2.0)).name == "free"


async def test_cancelled_while_the_answer_is_awaited(server: FaultServer) -> None:
    server.route("GET", INFO, stall(5.0))
    async with AsyncClient(**client_options(server, max_retries=2)) as client:
        task = asyncio.ensure_future(client.dify.get_info())
        await asyncio.sleep(0.2)
        task.cancel()
        assert await _cancelled(task)
    assert len(server.requests_to(INFO)) == 1  # and nothing was retried
