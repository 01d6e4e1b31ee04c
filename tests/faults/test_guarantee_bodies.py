"""Answers that inflate, that are empty, or that carry more bytes than they declare (issue 11,
items 3, 9 and 13), through the sync, the async and the aiohttp client, on a real socket."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from dify_oapi import ResponseDecodeError, ResponseTooLargeError

from .kit import AIOHTTP_XFAIL, KINDS, Kit, MiB, bomb, encoded, kinds, peak_growth
from .server import Exchange, FaultServer, Handler, respond

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
ASK: dict[str, Any] = {"query": "q", "user": "u"}
#: Loose bound on what reading a 1 GiB bomb may add to the process (the cap is 32 MiB).
BOMB_MEMORY = 64 * MiB


# -- item 3: decompression is bounded before it happens --------------------------------------


def test_brotli_and_zstd_are_installed_and_httpx_would_use_them() -> None:
    # The premise of the tests below: with these installed, httpx itself advertises and
    # inflates br and zstd (without a bound); the SDK must not.
    import brotli  # noqa: F401
    import zstandard  # noqa: F401
    from httpx._decoders import SUPPORTED_DECODERS

    # httpx decodes zstd from 0.27.1 on; the declared lower bound, 0.27.0, does not.
    release = tuple(int(part) for part in httpx.__version__.split(".")[:3])
    assert {"br", "zstd"} <= set(SUPPORTED_DECODERS) or (
        release < (0, 27, 1) and "br" in SUPPORTED_DECODERS
    )
    with httpx.Client() as plain:
        assert "br" in plain.headers["accept-encoding"]


@pytest.mark.parametrize("kind", kinds())
def test_the_wire_asks_only_for_codings_the_sdk_can_cap(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    server.route("GET", INFO, respond(json={"name": "n"}))
    server.route("POST", CHAT, respond(json={"answer": "a"}))
    kit: Kit = make_kit(kind)
    kit.call("dify.get_info")
    kit.call("chat.send", **ASK)
    assert [r.header("accept-encoding") for r in server.requests] == ["gzip, deflate"] * 2


@pytest.mark.parametrize("coding", ["br", "zstd"])
@pytest.mark.parametrize("kind", kinds())
def test_a_coding_it_did_not_ask_for_is_refused_unread(
    server: FaultServer, make_kit: Any, kind: str, coding: str
) -> None:
    body = bomb(coding)  # 1 GiB once inflated
    server.route("GET", INFO, encoded(body, coding))
    kit: Kit = make_kit(kind)
    error, grown = peak_growth(lambda: kit.call("dify.get_info"))
    assert isinstance(error, ResponseDecodeError), repr(error)
    assert error.operation == "dify.get_info" and error.status_code == 200
    assert coding in str(error)
    assert grown < BOMB_MEMORY, grown
    assert len(server.requests_to(INFO)) == 1


@pytest.mark.parametrize("kind", kinds())
def test_a_stacked_coding_is_refused(server: FaultServer, make_kit: Any, kind: str) -> None:
    import gzip

    body = gzip.compress(bomb("gzip"), 9)  # about 1 KB that would become 1 GiB
    server.route("GET", INFO, encoded(body, "gzip, gzip"))
    kit: Kit = make_kit(kind)
    error, grown = peak_growth(lambda: kit.call("dify.get_info"))
    assert isinstance(error, ResponseTooLargeError), repr(error)
    assert error.operation == "dify.get_info"
    assert grown < BOMB_MEMORY, grown


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize("kind", kinds())
def test_a_single_level_bomb_ends_at_the_cap(
    server: FaultServer, make_kit: Any, kind: str, coding: str
) -> None:
    body = bomb(coding)
    assert len(body) < 2 * MiB  # a 1 GiB answer in about a MiB
    label = "deflate" if coding == "raw-deflate" else coding
    server.route("GET", INFO, encoded(body, label))
    server.route("POST", CHAT, encoded(body, label))
    kit: Kit = make_kit(kind)
    for op, args in (("dify.get_info", {}), ("chat.send", ASK)):
        error, grown = peak_growth(lambda op=op, args=args: kit.call(op, **args))
        assert isinstance(error, ResponseTooLargeError), repr(error)
        assert error.operation == op and "33554432" in str(error)  # the default JSON cap
        assert grown < BOMB_MEMORY, (op, grown)
    # Nothing was retried: a bomb is the answer, not a transient failure.
    assert len(server.requests) == 2


def test_the_bombs_are_real() -> None:
    # Each bomb inflates to exactly what it claims, checksums included (made the same way at
    # 64 MiB as at 1 GiB, so the smaller one is checked).
    import zlib

    for coding, wbits in (("gzip", 31), ("deflate", 15), ("raw-deflate", -15)):
        inflater = zlib.decompressobj(wbits)
        data, total = bomb(coding, 64 * MiB), 0
        while data:
            total += len(inflater.decompress(data, 64 * MiB))
            data = inflater.unconsumed_tail
        assert inflater.eof and total == 64 * MiB, coding


# -- item 9: an empty answer is not a success ------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"  \r\n\t ", b"null", b" null\n"])
@pytest.mark.parametrize("kind", kinds())
def test_an_empty_answer_is_a_decode_error(
    server: FaultServer, make_kit: Any, kind: str, body: bytes
) -> None:
    server.route("POST", CHAT, respond(body=body, content_type="application/json"))
    server.route("GET", INFO, respond(body=body, content_type="application/json"))
    kit: Kit = make_kit(kind)
    for op, args, path in (("chat.send", ASK, CHAT), ("dify.get_info", {}, INFO)):
        with pytest.raises(ResponseDecodeError) as info:
            kit.call(op, **args)
        assert info.value.status_code == 200
        assert info.value.operation == op
        assert str(info.value).startswith(f"{op}: HTTP 200")
        assert len(server.requests_to(path)) == 1  # and it was not sent again


# -- item 13: a poisoned connection is not reused --------------------------------------------


def _leftover(name: str) -> bytes:
    body = b'{"name": "%s"}' % name.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def excess_after_length(*, pause: float) -> Handler:
    """An honest answer with ``Content-Length``, then a whole second answer nobody asked for:
    in the same write (one segment on loopback), or ``pause`` seconds later; the connection
    is then kept open."""

    def handler(ex: Exchange) -> None:
        answer = _leftover("first")
        if pause:
            ex.send(answer)
            time.sleep(pause)
            ex.send(_leftover("POISON"))
        else:
            ex.send(answer + _leftover("POISON"))

    return handler


def excess_after_chunks(ex: Exchange) -> None:
    """A chunked answer, its last chunk, then a whole second answer in the same write."""
    body = b'{"name": "first"}'
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    ex.send(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) + _leftover("POISON"))


# URLLIB3_REUSE: http.client reads each answer through a buffer of its own, dropped with the
# answer, so bytes that came with the answer's end go with it; bytes still in the socket make
# urllib3 discard the connection when it is next taken from the pool. The connection may
# thus be reused, clean: only the answers tell, and they are checked for every kind.
POISONS = {
    "length-same-write": excess_after_length(pause=0.0),
    "length-later": excess_after_length(pause=0.2),
    "chunked": excess_after_chunks,
}


@pytest.mark.parametrize(
    ("kind", "poison"),
    [
        pytest.param(
            kind,
            handler,
            id=f"{kind}-{name}",
            # aiohttp reads a late leftover as the next request's answer.
            marks=AIOHTTP_XFAIL if (kind, name) == ("aiohttp", "length-later") else (),
        )
        for kind in KINDS
        for name, handler in POISONS.items()
    ],
)
def test_bytes_past_the_answer_never_reach_the_next_request(
    server: FaultServer, make_kit: Any, kind: str, poison: Handler
) -> None:
    server.route("GET", INFO, poison, respond(json={"name": "second"}))
    server.route("POST", CHAT, respond(json={"answer": "third"}))
    kit: Kit = make_kit(kind, limits=httpx.Limits(max_connections=1))
    assert kit.call("dify.get_info").name == "first"
    if poison is POISONS["length-later"]:
        time.sleep(0.3)  # the late leftover has arrived by now
    assert kit.call("dify.get_info").name == "second"
    assert kit.call("chat.send", **ASK).answer == "third"
    first, second, third = server.requests
    if kind != "urllib3":  # see URLLIB3_REUSE
        # The poisoned connection was not used again (the others may be).
        assert second.conn_id != first.conn_id and third.conn_id != first.conn_id


@pytest.mark.parametrize("kind", kinds())
def test_a_stream_with_bytes_past_its_end_does_not_poison_the_pool(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    events = b'data: {"event": "message", "answer": "a", "task_id": "t", "message_id": "m"}\n\n'
    events += b'data: {"event": "message_end", "task_id": "t", "message_id": "m", "id": "m"}\n\n'

    def handler(ex: Exchange) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        ex.send(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(events), events) + _leftover("POISON"))

    server.route("POST", CHAT, handler)
    server.route("GET", INFO, respond(json={"name": "mine"}))
    kit: Kit = make_kit(kind, limits=httpx.Limits(max_connections=1))
    stream = kit.call("chat.send", **ASK, stream=True)
    assert [type(e).__name__ for e in kit.all_events(stream)] == ["MessageEvent", "MessageEndEvent"]
    assert kit.call("dify.get_info").name == "mine"
    if kind != "urllib3":  # see URLLIB3_REUSE
        assert server.requests[1].conn_id != server.requests[0].conn_id
