"""Size caps: a JSON answer, an error body and a stream event each have a configurable limit;
gzip bombs and never-ending SSE lines end in a typed error, not in memory exhaustion.

Where the client must stop reading early, the server's count of bytes it managed to send
shows it did (the rest was never read).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from dify_oapi import (
    AsyncClient,
    BadRequestError,
    Client,
    InternalServerError,
    ResponseTooLargeError,
)
from dify_oapi._options import MAX_ERROR_BYTES, MAX_EVENT_BYTES, MAX_JSON_BYTES

from .conftest import WF, client_options
from .server import (
    Exchange,
    FaultServer,
    Handler,
    endless,
    frame,
    frames,
    gzip_bomb,
    respond,
    sse,
    stream_bytes,
)

pytestmark = pytest.mark.faults

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
MiB = 1 << 20


def test_default_caps() -> None:
    assert (32 * MiB, 64 * 1024, 8 * MiB) == (MAX_JSON_BYTES, MAX_ERROR_BYTES, MAX_EVENT_BYTES)
    client = Client(api_key="k")
    config = client.config
    assert (config.max_json_bytes, config.max_error_bytes, config.max_event_bytes) == (
        32 * MiB,
        64 * 1024,
        8 * MiB,
    )
    client.close()


def expect_too_large(
    client: Client, op: str = "dify.get_info", **kwargs: object
) -> ResponseTooLargeError:
    with pytest.raises(ResponseTooLargeError) as info:
        client.call(op, **kwargs)
    assert str(info.value).startswith(f"{op}: ")
    return info.value


# -- JSON answers ----------------------------------------------------------------------------


def big_json(size: int) -> bytes:
    return json.dumps({"name": "x" * size}).encode()


def test_json_cap_is_configurable(server: FaultServer, sleeps: list[float]) -> None:
    server.route("GET", INFO, respond(body=big_json(2000), content_type="application/json"))
    with Client(**client_options(server, max_json_bytes=4000)) as client:
        assert len(client.dify.get_info().name or "") == 2000
    with Client(**client_options(server, max_json_bytes=1000)) as client:
        expect_too_large(client)
    assert len(server.requests_to(INFO)) == 2 and sleeps == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_json_over_the_cap_is_not_read(
    server: FaultServer, sleeps: list[float], chunked: bool
) -> None:
    total = 256 * MiB
    server.route("GET", INFO, stream_bytes(total, content_type="application/json", chunked=chunked))
    with Client(**client_options(server, max_json_bytes=MiB)) as client:
        expect_too_large(client)
    (received,) = server.requests_to(INFO)  # not retried
    assert received.bytes_sent < 64 * MiB, received.bytes_sent
    assert sleeps == []


async def test_async_json_over_the_cap(server: FaultServer) -> None:
    server.route("GET", INFO, stream_bytes(64 * MiB, content_type="application/json", chunked=True))
    async with AsyncClient(**client_options(server, max_json_bytes=MiB)) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.dify.get_info()


# -- gzip bombs ------------------------------------------------------------------------------


def test_gzip_bomb_with_honest_length_hits_the_default_cap(server: FaultServer) -> None:
    # ~1 MB on the wire, 1 GiB inflated; the declared length is small and passes any check.
    server.route("GET", INFO, gzip_bomb(1 << 30))
    with Client(**client_options(server)) as client:
        expect_too_large(client)
    assert len(server.requests_to(INFO)) == 1


def test_endless_gzip_bomb_stops_early(server: FaultServer) -> None:
    # 256 GiB of zeros (256 MB compressed, made while sent): the client must stop early.
    server.route("GET", INFO, gzip_bomb(256 << 30, declare_length=False))
    with Client(**client_options(server, max_json_bytes=4 * MiB)) as client:
        expect_too_large(client)
    (received,) = server.requests_to(INFO)
    assert received.bytes_sent < 64 * MiB, received.bytes_sent


async def test_async_gzip_bomb(server: FaultServer) -> None:
    server.route("GET", INFO, gzip_bomb(256 << 30, declare_length=False))
    async with AsyncClient(**client_options(server, max_json_bytes=4 * MiB)) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.dify.get_info()
    assert server.requests_to(INFO)[0].bytes_sent < 64 * MiB


def test_gzip_bomb_as_an_error_body_hits_the_error_cap(server: FaultServer) -> None:
    server.route("GET", INFO, gzip_bomb(1 << 30, status=400, prefix=b'{"message": "'))
    with Client(**client_options(server)) as client, pytest.raises(BadRequestError) as info:
        client.dify.get_info()
    # The status error survives; only the first max_error_bytes of the body are read.
    assert len(info.value.body) <= 64 * 1024
    assert len(server.requests_to(INFO)) == 1


def test_gzip_bomb_as_a_binary_answer(server: FaultServer) -> None:
    server.route(
        "POST", "/v1/text-to-audio", gzip_bomb(64 * MiB, prefix=b"ID3", content_type="audio/mpeg")
    )
    with Client(**client_options(server, max_binary_bytes=MiB)) as client:
        expect_too_large(client, "dify.text_to_audio", text="hi", user="u")


STACKED_BOMB = textwrap.dedent(
    """
    import resource, sys
    from dify_oapi import Client, DifyError
    def vm_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    client = Client(api_key="k", base_url=sys.argv[1], max_retries=0)
    limit = vm_bytes() + 512 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        client.dify.get_info()
        print("no error")
    except DifyError as exc:
        print("typed", type(exc).__name__)
    except BaseException as exc:
        print("untyped", type(exc).__name__)
    """
)


def test_stacked_gzip_bomb_is_a_typed_error(server: FaultServer) -> None:
    # Run in a child process whose address space is limited, so a failure cannot hurt the box.
    server.route("GET", INFO, gzip_bomb(1 << 30, encoding="gzip, gzip"))
    result = subprocess.run(
        [sys.executable, "-c", STACKED_BOMB, server.base_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "typed ResponseTooLargeError", result.stdout + result.stderr


# -- error bodies ----------------------------------------------------------------------------


def big_error(status: int, total: int) -> Handler:
    """An HTML error page of ``total`` bytes, generated while it is sent."""
    block = (b"<p>oops</p>" * (MiB // 11 + 1))[:MiB]

    def handler(ex: Exchange) -> None:
        head = b"<html><title>Error</title>"
        items = {"Content-Type": "text/html", "Content-Length": str(total)}
        if not (ex.head(status, items) and ex.send(head)):
            return
        left = total - len(head)
        while left > 0:
            if not ex.send(block[: min(left, MiB)]):
                return
            left -= MiB

    return handler


def test_error_body_over_the_cap_is_a_typed_error(server: FaultServer, sleeps: list[float]) -> None:
    server.route("POST", CHAT, big_error(400, 256 * MiB))
    with (
        Client(**client_options(server, max_error_bytes=64 * 1024)) as client,
        pytest.raises(BadRequestError) as info,
    ):
        client.chat.send(query="q", user="u")
    assert info.value.status_code == 400 and len(info.value.body) <= 64 * 1024
    (received,) = server.requests_to(CHAT)
    assert received.bytes_sent < 64 * MiB, received.bytes_sent
    assert sleeps == []


def test_error_body_under_the_cap_is_the_status_error(server: FaultServer) -> None:
    server.route("POST", CHAT, big_error(400, 60 * 1024))
    with Client(**client_options(server)) as client, pytest.raises(BadRequestError) as info:
        client.chat.send(query="q", user="u")
    assert info.value.message == "Bad Request: Error"


def test_oversized_5xx_on_a_get_is_still_retried(server: FaultServer, sleeps: list[float]) -> None:
    server.route("GET", INFO, big_error(503, 256 * 1024))
    with (
        Client(**client_options(server)) as client,
        pytest.raises((ResponseTooLargeError, InternalServerError)),
    ):
        client.dify.get_info()
    assert len(server.requests_to(INFO)) == 3 and len(sleeps) == 2


# -- stream events ---------------------------------------------------------------------------


def test_event_over_the_cap_keeps_what_arrived(server: FaultServer, sleeps: list[float]) -> None:
    before = [{"event": "message", **WF, "answer": "kept"}]
    huge = {"event": "message", **WF, "answer": "h" * (2 * MiB)}
    body = b"".join(frames(before)) + frame(huge)
    server.route("POST", CHAT, sse([body[i : i + 65536] for i in range(0, len(body), 65536)]))
    with Client(**client_options(server, max_event_bytes=MiB)) as client:
        stream = client.chat.send(query="q", user="u", stream=True)
        received = []
        with pytest.raises(ResponseTooLargeError) as info:
            for event in stream:
                received.append(event)
    assert str(info.value).startswith("chat.send: ")
    assert len(received) == 1 and info.value.partial is not None
    assert info.value.partial.answer == "kept" and info.value.partial.task_id == "t-1"
    assert stream.response.is_closed and sleeps == []


def test_event_under_the_cap_passes(server: FaultServer) -> None:
    event = {"event": "message", **WF, "answer": "h" * (MiB - 1000)}
    server.route("POST", CHAT, sse(frames([event, {"event": "message_end", **WF}])))
    with Client(**client_options(server, max_event_bytes=MiB)) as client:
        stream = client.chat.send(query="q", user="u", stream=True)
        assert len(list(stream)) == 2


def test_never_ending_sse_line_is_a_typed_error(server: FaultServer) -> None:
    server.route(
        "POST", CHAT, endless(b'data: {"event": "message", "answer": "', b"a" * 65536, 256 * MiB)
    )
    with Client(**client_options(server, max_event_bytes=MiB)) as client:
        stream = client.chat.send(query="q", user="u", stream=True)
        with pytest.raises(ResponseTooLargeError):
            list(stream)
    (received,) = server.requests_to(CHAT)
    assert received.bytes_sent < 64 * MiB, received.bytes_sent


def test_never_ending_sse_event_is_a_typed_error(server: FaultServer) -> None:
    server.route("POST", CHAT, endless(b"", b"data: " + b"a" * 1024 + b"\n", 256 * MiB))
    with Client(**client_options(server, max_event_bytes=MiB)) as client:
        stream = client.chat.send(query="q", user="u", stream=True)
        with pytest.raises(ResponseTooLargeError):
            list(stream)
    (received,) = server.requests_to(CHAT)
    assert received.bytes_sent < 64 * MiB, received.bytes_sent
