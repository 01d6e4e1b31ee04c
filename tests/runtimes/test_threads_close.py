"""Closing from another thread means closed, even when the server is silent (issue 12,
item 5): the reader blocked in a read is woken at once (a 30 s read timeout is never what
ends it) and the concurrency slot comes back. Real sockets, every client kind."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from dify_oapi import ClientClosedError

from ..faults.conftest import IDS
from ..faults.kit import Kit, kinds
from ..faults.server import FaultServer, frame, respond, stall

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
#: Headers, one event, then nothing at all: the reader sits in a read.
SILENT = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n%s\r\n" % (len(f := frame({"event": "message", **IDS, "answer": "a"})), f)
)
LONG_READ = httpx.Timeout(30.0, connect=1.0, pool=0.5)
SOON = 1.0  # how long a woken reader may take to notice


class Reader:
    """Reads a stream to its end on a thread of its own (the kit's loop, for async kinds)."""

    def __init__(self, kit: Kit, stream: Any) -> None:
        self.kit, self.stream = kit, stream
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.ended_at = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            if self.kit.is_async:
                self.kit.run(self._aread())
            else:
                for event in self.stream:
                    self.events.append(event)
        except BaseException as exc:
            self.error = exc
        self.ended_at = time.monotonic()

    async def _aread(self) -> None:
        async for event in self.stream:
            self.events.append(event)

    def wait_for_first(self) -> None:
        deadline = time.monotonic() + 3
        while not self.events and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.events, "the first event never came"
        time.sleep(0.1)  # now blocked in the read for the next one

    def join(self) -> float:
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "the reader is still blocked"
        return self.ended_at


def _open(server: FaultServer, kind: str) -> tuple[Kit, Any]:
    server.route("POST", CHAT, stall(10.0, head=SILENT))
    server.route("GET", INFO, respond(json={"name": "n"}))
    kit = Kit(kind, server, timeout=LONG_READ, limits=httpx.Limits(max_connections=1))
    return kit, kit.run(kit.client.chat.send(query="q", user="u", stream=True))


def _from_other_thread(kit: Kit, coro_or_none: Any) -> None:
    """Run a close from this (the test's) thread: sync as is, async on a loop of its own."""
    if kit.is_async:
        asyncio.run(coro_or_none())
    else:
        coro_or_none()


@pytest.mark.parametrize("kind", kinds())
def test_stream_close_from_another_thread_ends_the_read_and_frees_the_slot(
    server: FaultServer, kind: str
) -> None:
    kit, stream = _open(server, kind)
    try:
        reader = Reader(kit, stream)
        reader.wait_for_first()
        asked = time.monotonic()
        _from_other_thread(kit, stream.close)
        assert reader.join() - asked < SOON
        assert reader.error is None and [e.answer for e in reader.events] == ["a"]
        assert stream.closed
        # the one slot is free again: a call within the 0.5 s pool timeout gets it
        assert kit.call("dify.get_info").name == "n"
    finally:
        kit.close()


@pytest.mark.parametrize("kind", kinds())
def test_client_close_ends_every_open_stream_even_when_the_server_is_silent(
    server: FaultServer, kind: str
) -> None:
    kit, stream = _open(server, kind)
    try:
        reader = Reader(kit, stream)
        reader.wait_for_first()
        asked = time.monotonic()
        _from_other_thread(kit, kit.client.close)
        assert reader.join() - asked < SOON
        assert isinstance(reader.error, ClientClosedError)
        assert server.wait_idle(SOON)  # the connection is closed, not parked
    finally:
        kit.close()
