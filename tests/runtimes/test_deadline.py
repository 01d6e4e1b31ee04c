"""A deadline bounds the whole call, even against a server that trickles (issue 12, item 6).
Real sockets, every client kind: the head, a body, a stream and ``collect=True``."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from dify_oapi import APITimeoutError

from ..faults.conftest import IDS
from ..faults.kit import kinds
from ..faults.server import Exchange, FaultServer, frame, frames, sse

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
READ = httpx.Timeout(3.0, connect=1.0, pool=1.0)  # each read is far shorter than the trickle
DEADLINE = 0.6
PING = "event: ping"


def _trickle(data: bytes, every: float = 0.2) -> Any:
    def handler(ex: Exchange) -> None:
        for i in range(len(data)):
            if not ex.send(data[i : i + 1]):
                return
            time.sleep(every)
        ex.close()

    return handler


def _timed(fn: Any) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        fn()
    except BaseException as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


@pytest.mark.parametrize("kind", kinds())
def test_a_trickled_body_is_cut_at_the_deadline(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    body = b'{"name": "' + b"x" * 60 + b'"}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    server.route("GET", INFO, lambda ex: (ex.send(head % len(body)), _trickle(body)(ex)))
    kit = make_kit(kind, timeout=READ, max_retries=0, deadline=DEADLINE)
    error, took = _timed(lambda: kit.call("dify.get_info"))
    assert isinstance(error, APITimeoutError) and took < DEADLINE + 0.5


@pytest.mark.parametrize("kind", kinds())
def test_a_ping_only_stream_is_cut_by_the_idle_limit_keeping_what_arrived(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    first = {"event": "message", **IDS, "answer": "Hel"}
    pieces = [frame(first), *[frame(PING) for _ in range(30)]]
    server.route("POST", CHAT, sse(pieces, pause=0.1))
    kit = make_kit(kind, timeout=READ)

    def read() -> None:
        kit.all_events(kit.call("chat.send", query="q", user="u", stream=True, idle_timeout=0.5))

    error, took = _timed(read)
    assert isinstance(error, APITimeoutError) and took < 1.5
    assert error.partial is not None and error.partial.answer == "Hel"
    assert "idle_timeout" in str(error)


@pytest.mark.parametrize("kind", kinds())
def test_collect_on_a_ping_only_stream_is_cut_at_the_deadline(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    first = {"event": "message", **IDS, "answer": "Hel"}
    server.route("POST", CHAT, sse([frame(first), *frames([PING] * 30)], pause=0.1))
    kit = make_kit(kind, timeout=READ, max_retries=0)
    error, took = _timed(
        lambda: kit.call("chat.send", query="q", user="u", collect=True, deadline=DEADLINE)
    )
    assert isinstance(error, APITimeoutError) and took < DEADLINE + 0.5
    assert error.partial is not None and error.partial.answer == "Hel"


@pytest.mark.parametrize("kind", kinds())
def test_a_trickled_head_is_cut_at_the_deadline(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    server.route("GET", INFO, _trickle(b"HTTP/1.1 200 OK\r\n\r\n", 0.1))
    kit = make_kit(kind, timeout=READ, max_retries=0, deadline=DEADLINE)
    error, took = _timed(lambda: kit.call("dify.get_info"))
    assert isinstance(error, APITimeoutError) and took < DEADLINE + 0.5


@pytest.mark.parametrize("kind", kinds())
def test_a_trickled_head_on_a_kept_alive_connection_is_cut_at_the_deadline(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"name":"n"}'
    server.route("GET", INFO, lambda ex: ex.send(answer), _trickle(b"HTTP/1.1 200 OK\r\n\r\n", 0.1))
    kit = make_kit(kind, timeout=READ, max_retries=0, deadline=DEADLINE)
    assert kit.call("dify.get_info").name == "n"
    error, took = _timed(lambda: kit.call("dify.get_info"))
    assert isinstance(error, APITimeoutError) and took < DEADLINE + 0.5
    # the second call was read from the first one's connection, not a fresh one
    assert len({r.conn_id for r in server.requests_to(INFO)}) == 1
