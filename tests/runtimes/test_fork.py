"""A client built before ``os.fork()`` works in the child on sockets of its own, and the
parent's keeps working (issue 12, item 3). Checked on the server side: which connection
served each request of each process, plain and over TLS, for every client kind."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..faults.conftest import client_options
from ..faults.kit import Kit, kinds
from ..faults.server import Exchange, FaultServer, frames, respond, sse

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def _answer(ex: Exchange) -> None:
    respond(json={"name": ex.request.header("x-pid"), "answer": "a", "message_id": "m"})(ex)


@pytest.fixture(params=["plain", "tls"])
def origin(request: pytest.FixtureRequest, tls_files: tuple[str, str]) -> Iterator[FaultServer]:
    srv = FaultServer(tls=tls_files if request.param == "tls" else None)
    srv.route("GET", INFO, _answer)
    srv.route("POST", CHAT, _answer)
    try:
        yield srv
    finally:
        srv.close()
    assert srv.errors == []


def _pid_header() -> dict[str, Any]:
    return {"extra_headers": {"X-Pid": str(os.getpid())}}


def _in_child(kit: Kit) -> int:
    """What the child does with the parent's client: two calls, a GET and a generation."""
    if not kit.is_async:
        info = kit.client.dify.get_info(**_pid_header())
        sent = kit.client.chat.send(query="q", user="u", stream=False, **_pid_header())
        return 0 if info.name == str(os.getpid()) and sent.answer == "a" else 3

    async def run() -> int:  # a loop of the child's own: the parent's is not the child's
        info = await kit.client.dify.get_info(**_pid_header())
        sent = await kit.client.chat.send(query="q", user="u", stream=False, **_pid_header())
        return 0 if info.name == str(os.getpid()) and sent.answer == "a" else 3

    return asyncio.run(run())


def _wait(pid: int, seconds: float = 5.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the child did not finish")


@pytest.mark.parametrize("kind", kinds())
def test_a_forked_child_uses_its_own_connections_and_the_parent_keeps_its_own(
    origin: FaultServer, tls_files: tuple[str, str], kind: str
) -> None:
    verify = tls_files[0] if origin.origin.startswith("https") else True
    kit = Kit(kind, origin, **{**client_options(origin), "verify": verify})
    try:
        kit.run(kit.client.dify.get_info(**_pid_header()))  # the parent holds a pooled socket
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 1
            try:
                code = _in_child(kit)
            finally:
                os._exit(code)
        assert _wait(pid) == 0
        again = kit.run(kit.client.chat.send(query="q", user="u", stream=False, **_pid_header()))
        assert again.answer == "a"
        assert kit.run(kit.client.dify.get_info(**_pid_header())).name == str(parent)
    finally:
        kit.close()
    by_pid: dict[str, set[int]] = {}
    for request in origin.requests:
        by_pid.setdefault(request.header("x-pid") or "", set()).add(request.conn_id)
    assert set(by_pid) == {str(parent), str(pid)}
    assert by_pid[str(parent)].isdisjoint(by_pid[str(pid)])
    assert len(by_pid[str(parent)]) == 1  # its keep-alive socket was never touched by the child
    assert len(origin.requests) == 5 and origin.stats.tls_failures == 0


@pytest.mark.parametrize("kind", kinds())
def test_a_forked_child_gets_free_slots_while_the_parent_holds_its_only_one(
    server: FaultServer, kind: str
) -> None:
    server.route("GET", INFO, _answer)
    first = {"event": "message", "task_id": "t", "message_id": "m", "answer": "x"}
    server.route("POST", CHAT, sse(frames([first]), end="stall"))
    limits = httpx.Limits(max_connections=1)
    kit = Kit(kind, server, limits=limits, timeout=httpx.Timeout(3.0, pool=0.5))
    try:
        stream = kit.run(kit.client.chat.send(query="q", user="u", stream=True))
        assert kit.next_event(stream).answer == "x"  # the parent's one slot is taken
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if kit.is_async:
                    code = asyncio.run(_child_get(kit))
                else:
                    code = 0 if kit.client.dify.get_info(**_pid_header()).name else 2
            finally:
                os._exit(code)
        assert _wait(pid) == 0
        kit.run(stream.close())
        assert kit.run(kit.client.dify.get_info(**_pid_header())).name == str(os.getpid())
    finally:
        kit.close()


async def _child_get(kit: Kit) -> int:
    return 0 if (await kit.client.dify.get_info(**_pid_header())).name else 2
