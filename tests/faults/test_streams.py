"""Event streams over a real socket: cut, stalled, failing, oddly framed, huge; nothing lost;
closed when abandoned."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx
import msgspec
import pytest

from dify_oapi import (
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    BadRequestError,
    Client,
    InternalServerError,
    RateLimitError,
    StreamInterruptedError,
)
from dify_oapi.types import events as ev

from .conftest import (
    KEY,
    OTHER_KEY,
    WF,
    ObservingTransport,
    client_options,
    client_sockets_to,
    eventually,
    pool_idle,
)
from .server import FaultServer, frame, frames, respond, sse

pytestmark = pytest.mark.faults

CHAT = "/v1/chat-messages"
ASK: dict[str, Any] = {"query": "q", "user": "u"}

# A chatflow answer: every id a caller needs is in it.
CHAT_RUN: list[dict[str, Any]] = [
    {"event": "workflow_started", **WF, "data": {"id": "wr-1", "workflow_id": "w"}},
    {"event": "message", **WF, "answer": "Hél"},
    {"event": "message", **WF, "answer": "lo, "},
    {"event": "message", **WF, "answer": "wörld"},
    {"event": "message_end", **WF, "id": "m-1", "metadata": {"usage": {"total_tokens": 3}}},
    # A chatflow's stream ends with its run's workflow_finished, after message_end.
    {"event": "workflow_finished", **WF, "data": {"id": "wr-1", "status": "succeeded"}},
]


def answer_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["answer"] for e in events if e["event"] == "message")


def expected(events: list[dict[str, Any]]) -> list[Any]:
    return [msgspec.convert(e, ev.ChatEvent) for e in events]


# -- cut, stalled, failing -------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize("end", ["close", "reset", "clean-eof"])
def test_stream_cut_after_n_events_keeps_everything(
    client: Client, server: FaultServer, sleeps: list[float], n: int, end: str
) -> None:
    if end == "clean-eof":  # a close-delimited body that simply stops: no transport error
        server.route("POST", CHAT, sse(frames(CHAT_RUN[:n]), chunked=False, end="complete"))
    else:  # a chunked body cut by FIN or RST
        server.route("POST", CHAT, sse(frames(CHAT_RUN[:n]), end=end))
    stream = client.chat.send(**ASK, stream=True)
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for event in stream:
            received.append(event)
    error = info.value
    assert str(error).startswith("chat.send: stream ended")
    assert received == expected(CHAT_RUN[:n])
    partial = error.partial
    assert partial is not None and partial.events == received
    assert partial.answer == answer_of(CHAT_RUN[:n])
    ids = (partial.task_id, partial.message_id, partial.conversation_id, partial.workflow_run_id)
    assert ids == (("t-1", "m-1", "c-1", "wr-1") if n else (None, None, None, None))
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []
    assert stream.response.is_closed


async def test_async_stream_cut_keeps_everything(
    aclient: AsyncClient, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, sse(frames(CHAT_RUN[:3]), end="reset"))
    stream = await aclient.chat.send(**ASK, stream=True)
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        async for event in stream:
            received.append(event)
    partial = info.value.partial
    assert partial is not None and partial.events == received == expected(CHAT_RUN[:3])
    assert partial.answer == "Héllo, "
    assert (partial.task_id, partial.workflow_run_id) == ("t-1", "wr-1")
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


STALL_READ = httpx.Timeout(3.0, connect=1.0, read=0.3)


def test_stalled_stream_times_out_with_partial_state(
    server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, sse(frames(CHAT_RUN[:2]), end="stall"))
    with Client(**client_options(server, timeout=STALL_READ)) as client:
        stream = client.chat.send(**ASK, stream=True)
        received = []
        with pytest.raises(APITimeoutError) as info:
            for event in stream:
                received.append(event)
    assert "stalled" in str(info.value) and str(info.value).startswith("chat.send: ")
    partial = info.value.partial
    assert partial is not None and partial.events == received == expected(CHAT_RUN[:2])
    assert partial.answer == "Hél" and partial.task_id == "t-1"
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


async def test_async_stalled_stream_times_out(server: FaultServer, sleeps: list[float]) -> None:
    server.route("POST", CHAT, sse(frames(CHAT_RUN[:2]), end="stall"))
    async with AsyncClient(**client_options(server, timeout=STALL_READ)) as client:
        stream = await client.chat.send(**ASK, stream=True)
        with pytest.raises(APITimeoutError) as info:
            async for _ in stream:
                pass
    assert info.value.partial is not None and info.value.partial.answer == "Hél"
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (429, RateLimitError),
        (500, InternalServerError),
        (None, InternalServerError),
    ],
)
def test_error_event_is_typed_and_keeps_partial_state(
    client: Client,
    server: FaultServer,
    sleeps: list[float],
    status: int | None,
    cls: type[APIStatusError],
) -> None:
    error_event = {
        "event": "error",
        **WF,
        "code": "completion_request_error",
        "message": "model down",
    }
    if status is not None:
        error_event["status"] = status
    server.route("POST", CHAT, sse(frames([*CHAT_RUN[:3], error_event])))
    stream = client.chat.send(**ASK, stream=True)
    received = []
    with pytest.raises(cls) as info:
        for event in stream:
            received.append(event)
    error = info.value
    assert type(error) is cls
    assert error.status_code == (status or 500) and error.code == "completion_request_error"
    assert "model down" in str(error) and str(error).startswith("chat.send: ")
    assert received == expected(CHAT_RUN[:3])
    partial = error.partial
    assert partial is not None
    assert partial.answer == "Héllo, " and partial.workflow_run_id == "wr-1"
    assert len(partial.events) == 4  # the error event itself is kept too
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []
    assert stream.response.is_closed


def test_unknown_event_type_passes_through(client: Client, server: FaultServer) -> None:
    novel = {"event": "brand_new_thing", "task_id": "t-9", "payload": {"x": [1, 2]}}
    server.route("POST", CHAT, sse(frames([CHAT_RUN[0], novel, *CHAT_RUN[1:]])))
    events = list(client.chat.send(**ASK, stream=True))
    assert events[1] == ev.UnknownEvent(event="brand_new_thing", raw=novel)
    assert [type(e) for e in events[2:]] == [type(e) for e in expected(CHAT_RUN[1:])]
    assert len(events) == len(CHAT_RUN) + 1


# -- framing ---------------------------------------------------------------------------------

SMALL: list[dict[str, Any] | str] = [
    {"event": "message", **WF, "answer": "héllo"},
    "event: ping",
    ": a comment",
    {"event": "message", **WF, "answer": " wörld €"},
    {"event": "message_end", **WF},
]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_events_split_at_every_byte_boundary(
    client: Client, server: FaultServer, newline: str
) -> None:
    body = b"".join(frames(SMALL, newline))
    cuts = range(1, len(body))
    # Two separate TCP writes (and HTTP chunks) per request, split at every byte offset;
    # requests share one keep-alive connection.
    server.route("POST", CHAT, *[sse([body[:cut], body[cut:]]) for cut in cuts])
    for cut in cuts:
        stream = client.chat.send(**ASK, stream=True)
        events = list(stream)
        assert [type(e) for e in events] == [
            ev.MessageEvent,
            ev.MessageEvent,
            ev.MessageEndEvent,
        ], cut
        assert stream.answer == "héllo wörld €", cut
    assert len(server.requests_to(CHAT)) == len(cuts)
    assert server.accepted == 1  # every complete stream gave its connection back


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_one_byte_writes(client: Client, server: FaultServer, newline: str, chunked: bool) -> None:
    body = b"".join(frames(SMALL, newline))
    pieces = [body[i : i + 1] for i in range(len(body))]
    server.route("POST", CHAT, sse(pieces, chunked=chunked))
    stream = client.chat.send(**ASK, stream=True)
    assert len(list(stream)) == 3 and stream.answer == "héllo wörld €"


async def test_async_split_at_every_byte_boundary(
    aclient: AsyncClient, server: FaultServer
) -> None:
    body = b"".join(frames(SMALL, "\r\n"))
    cuts = range(1, len(body), 3)
    server.route("POST", CHAT, *[sse([body[:cut], body[cut:]]) for cut in cuts])
    for cut in cuts:
        stream = await aclient.chat.send(**ASK, stream=True)
        assert len([e async for e in stream]) == 3, cut
        assert stream.answer == "héllo wörld €", cut


def test_comments_retry_and_id_fields(
    client: Client, server: FaultServer, sleeps: list[float]
) -> None:
    body = [
        ": hello, this is a comment\n\n",
        "retry: 3000\n\n",
        "id: 41\nretry: 10\nevent: message\ndata: " + json.dumps(CHAT_RUN[1]) + "\n\n",
        ":another comment\nid: 42\ndata: " + json.dumps(CHAT_RUN[2]) + "\n\n",
        # One event over several data lines (joined by newlines: still one JSON document).
        'data: {"event": "message",\ndata: "answer": "wörld", "task_id": "t-1"}\n\n',
        "event: ping\ndata: \n\n",
        "data: " + json.dumps(CHAT_RUN[4]) + "\n\n",
    ]
    server.route("POST", CHAT, sse([b.encode() for b in body]))
    stream = client.chat.send(**ASK, stream=True)
    events = list(stream)
    assert [type(e) for e in events] == [
        ev.MessageEvent,
        ev.MessageEvent,
        ev.MessageEvent,
        ev.MessageEndEvent,
    ]
    assert stream.answer == "Héllo, wörld"
    # ``retry:`` is the browser's reconnect hint: the SDK neither waits nor reconnects.
    assert sleeps == [] and len(server.requests_to(CHAT)) == 1


def test_one_megabyte_event(client: Client, server: FaultServer) -> None:
    big = ("ü€x" * 350_000)[: 1 << 20]
    body = frame({"event": "message", **WF, "answer": big}) + frame(CHAT_RUN[4])
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    server.route("POST", CHAT, sse(pieces))
    stream = client.chat.send(**ASK, stream=True)
    events = list(stream)
    assert len(events) == 2 and stream.answer == big


def test_fifty_megabyte_stream_is_read_in_bounded_chunks(server: FaultServer) -> None:
    piece = "y" * (64 * 1024 - 200)
    one = frame({"event": "message", "task_id": "t-1", "answer": piece})
    count = (50 << 20) // len(one) + 1

    def pieces() -> Any:
        for _ in range(count):
            yield one
        yield frame({"event": "message_end", "task_id": "t-1"})

    server.route("POST", CHAT, sse(pieces))
    transport = ObservingTransport()
    with Client(**client_options(server, transport=transport)) as client:
        stream = client.chat.send(**ASK, stream=True)
        n = 0
        for event in stream:
            n += 1
            assert isinstance(event, (ev.MessageEvent, ev.MessageEndEvent))
        assert n == count + 1
        assert len(stream.answer) == count * len(piece)
    received = sum(transport.chunk_sizes)
    assert received >= 50 << 20
    assert max(transport.chunk_sizes) <= 256 * 1024, max(transport.chunk_sizes)
    assert len(transport.chunk_sizes) >= received // (256 * 1024)


# -- nothing lost: a workflow run resumes where it stopped ---------------------------------

RUN: list[dict[str, Any]] = [
    {
        "event": "workflow_started",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {"id": "a0000000-0000-4000-8000-00000000000a", "workflow_id": "w"},
    },
    {
        "event": "node_started",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {"id": "n1", "node_id": "start", "index": 1},
    },
    {
        "event": "node_finished",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {"id": "n1", "node_id": "start", "status": "succeeded"},
    },
    {
        "event": "node_started",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {"id": "n2", "node_id": "llm", "index": 2},
    },
    {
        "event": "text_chunk",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {"text": "Bon"},
    },
    {
        "event": "text_chunk",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {"text": "jour"},
    },
    {
        "event": "node_finished",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {"id": "n2", "node_id": "llm", "status": "succeeded"},
    },
    {
        "event": "workflow_finished",
        **WF,
        "workflow_run_id": "a0000000-0000-4000-8000-00000000000a",
        "data": {
            "id": "a0000000-0000-4000-8000-00000000000a",
            "status": "succeeded",
            "outputs": {"text": "Bonjour"},
            "total_steps": 2,
        },
    },
]
RUN_PATH = "/v1/workflows/run"
EVENTS_PATH = "/v1/workflow/a0000000-0000-4000-8000-00000000000a/events"
# Re-attaching replays the running node's start, then continues.
REPLAY: list[dict[str, Any] | str] = ["event: ping", RUN[3], *RUN[5:]]


def route_run(server: FaultServer) -> None:
    server.route("POST", RUN_PATH, sse(frames(RUN[:5]), end="reset"), sse(frames(RUN)))
    server.route("GET", EVENTS_PATH, sse(frames(REPLAY)))


@pytest.mark.parametrize("api_key", [None, OTHER_KEY], ids=["client-key", "call-key"])
def test_workflow_resume_equals_an_uninterrupted_run(
    client: Client, server: FaultServer, sleeps: list[float], api_key: str | None
) -> None:
    route_run(server)
    key: dict[str, Any] = {"api_key": api_key} if api_key else {}
    stream = client.workflow.run(inputs={"x": 1}, user="u-1", stream=True, **key)
    first: list[Any] = []
    with pytest.raises(StreamInterruptedError) as info:
        for event in stream:
            first.append(event)
    partial = info.value.partial
    assert partial is not None
    assert (partial.workflow_run_id, partial.task_id, partial.answer) == (
        "a0000000-0000-4000-8000-00000000000a",
        "t-1",
        "Bon",
    )
    resumed = stream.resume()
    rest = list(resumed)
    uninterrupted = list(client.workflow.run(inputs={"x": 1}, user="u-1", stream=True, **key))
    assert first + rest == uninterrupted
    assert len(uninterrupted) == len(RUN)
    assert resumed.answer == "Bonjour" and resumed.state.finished
    (attach,) = server.requests_to(EVENTS_PATH)
    # The re-attach asks for the state snapshot, so nothing emitted meanwhile is lost.
    assert attach.method == "GET"
    assert attach.params == [("user", "u-1"), ("include_state_snapshot", "true")]
    assert attach.header("authorization") == f"Bearer {api_key or KEY}"
    assert len(server.requests_to(RUN_PATH)) == 2 and sleeps == []


async def test_async_workflow_resume_equals_an_uninterrupted_run(
    aclient: AsyncClient, server: FaultServer
) -> None:
    route_run(server)
    stream = await aclient.workflow.run(user="u-1", stream=True)
    got: list[Any] = []
    with pytest.raises(StreamInterruptedError):
        async for event in stream:
            got.append(event)
    resumed = await stream.resume()
    got += [event async for event in resumed]
    uninterrupted = [e async for e in await aclient.workflow.run(user="u-1", stream=True)]
    assert got == uninterrupted and len(got) == len(RUN)


# -- abandoned streams close their connection ----------------------------------------------

LONG = [{"event": "message", **WF, "answer": str(i)} for i in range(40)]
POOL2 = {"limits": httpx.Limits(max_connections=2, max_keepalive_connections=2)}


def assert_released(client: Client | AsyncClient, server: FaultServer) -> None:
    assert pool_idle(client)
    assert eventually(lambda: client_sockets_to(server) == 0)
    assert eventually(lambda: server.open_connections == 0)


def long_stream(server: FaultServer) -> None:
    # Written slowly enough that a stream is still running when it is abandoned.
    server.route("POST", CHAT, sse(frames(LONG), end="stall"))


def test_break_inside_with_closes_the_connection(server: FaultServer) -> None:
    long_stream(server)
    with Client(**client_options(server, **POOL2)) as client:
        for _ in range(3):  # more than the pool holds: each must have been given back
            with client.chat.send(**ASK, stream=True) as stream:
                for _event in stream:
                    break
            assert stream.response.is_closed
        assert_released(client, server)


def test_break_without_with_closes_the_connection(server: FaultServer) -> None:
    long_stream(server)
    with Client(**client_options(server, **POOL2)) as client:
        stream = client.chat.send(**ASK, stream=True)
        for _event in stream:
            break
        assert stream.response.is_closed
        assert_released(client, server)


def test_garbage_collected_stream_closes_the_connection(server: FaultServer) -> None:
    long_stream(server)
    with Client(**client_options(server, **POOL2)) as client:
        for _ in range(3):
            stream = client.chat.send(**ASK, stream=True)
            next(iter(stream))
            response = stream.response
            del stream
            gc.collect()
            assert response.is_closed
        assert_released(client, server)
        server.route("GET", "/v1/info", respond(json={"name": "still works"}))
        assert client.dify.get_info(timeout=STALL_READ).name == "still works"


def test_dropping_a_half_read_stream_closes_it_at_once(server: FaultServer) -> None:
    long_stream(server)
    with Client(**client_options(server, **POOL2)) as client:
        gc.disable()
        try:
            stream = client.chat.send(**ASK, stream=True)
            next(iter(stream))
            response = stream.response
            del stream
            assert response.is_closed
        finally:
            gc.enable()
        assert_released(client, server)


def test_garbage_collected_unstarted_stream_closes_the_connection(server: FaultServer) -> None:
    long_stream(server)
    with Client(**client_options(server, **POOL2)) as client:
        for _ in range(3):
            stream = client.chat.send(**ASK, stream=True)
            response = stream.response
            del stream
            gc.collect()
            assert response.is_closed
        assert_released(client, server)


async def test_async_break_inside_async_with_closes_the_connection(server: FaultServer) -> None:
    long_stream(server)
    async with AsyncClient(**client_options(server, **POOL2)) as client:
        for _ in range(3):
            async with await client.chat.send(**ASK, stream=True) as stream:
                async for _event in stream:
                    break
            assert stream.response.is_closed
        assert_released(client, server)


async def test_async_garbage_collected_stream_closes_the_connection(server: FaultServer) -> None:
    import asyncio

    long_stream(server)
    async with AsyncClient(**client_options(server, **POOL2)) as client:
        for _ in range(3):
            stream = await client.chat.send(**ASK, stream=True)
            await stream.__anext__()
            response = stream.response
            del stream
            gc.collect()
            for _ in range(20):  # the loop runs the async generator's finaliser
                await asyncio.sleep(0)
            assert response.is_closed
        assert_released(client, server)
