"""Chat streams: every chat event type, pings, unknown events, errors, framing, closing."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx
import pytest

from dify_oapi import (
    AsyncClient,
    BadRequestError,
    Client,
    InternalServerError,
    InvalidArgumentsError,
    ResponseDecodeError,
    Stream,
    StreamInterruptedError,
)
from dify_oapi.types import events as ev

from .conftest import BASE, SSE_HEADERS, sse
from .httpx_mock import HTTPXMock, IteratorStream

IDS = {"task_id": "t-1", "message_id": "m-1", "conversation_id": "c-1", "created_at": 1}
WF = {**IDS, "workflow_run_id": "wr-1"}

# One frame of every chat event type in the spec, in a plausible order.
ALL_CHAT_EVENTS: list[tuple[dict[str, Any], type]] = [
    (
        {
            "event": "workflow_started",
            **WF,
            "data": {"id": "wr-1", "workflow_id": "w", "inputs": {}},
        },
        ev.WorkflowStartedEvent,
    ),
    (
        {
            "event": "node_started",
            **WF,
            "data": {"id": "n", "node_id": "llm", "node_type": "llm", "title": "LLM", "index": 1},
        },
        ev.NodeStartedEvent,
    ),
    (
        {"event": "node_retry", **WF, "data": {"id": "n", "node_id": "llm", "retry_index": 1}},
        ev.NodeRetryEvent,
    ),
    (
        {"event": "iteration_started", **WF, "data": {"id": "i", "node_id": "it"}},
        ev.IterationStartedEvent,
    ),
    (
        {"event": "iteration_next", **WF, "data": {"id": "i", "node_id": "it", "index": 1}},
        ev.IterationNextEvent,
    ),
    (
        {"event": "iteration_completed", **WF, "data": {"id": "i", "node_id": "it", "steps": 2}},
        ev.IterationCompletedEvent,
    ),
    ({"event": "loop_started", **WF, "data": {"id": "l", "node_id": "lp"}}, ev.LoopStartedEvent),
    (
        {"event": "loop_next", **WF, "data": {"id": "l", "index": 1, "pre_loop_output": None}},
        ev.LoopNextEvent,
    ),
    ({"event": "loop_completed", **WF, "data": {"id": "l", "steps": 1}}, ev.LoopCompletedEvent),
    (
        {"event": "reasoning_chunk", **IDS, "data": {"reasoning": "hm", "is_final": False}},
        ev.ReasoningChunkEvent,
    ),
    (
        {
            "event": "agent_thought",
            **IDS,
            "id": "at",
            "position": 1,
            "thought": "t",
            "tool": "x",
            "tool_input": "{}",
            "message_files": [],
        },
        ev.AgentThoughtEvent,
    ),
    (
        {
            "event": "agent_log",
            **IDS,
            "data": {
                "id": "al",
                "label": "step",
                "status": "success",
                "data": {},
                "node_id": "agent",
            },
        },
        ev.AgentLogEvent,
    ),
    ({"event": "message", **IDS, "answer": "Hello"}, ev.MessageEvent),
    (
        {"event": "text_chunk", **WF, "data": {"text": ", ", "from_variable_selector": ["a"]}},
        ev.TextChunkEvent,
    ),
    ({"event": "message", **IDS, "answer": "world"}, ev.MessageEvent),
    (
        {
            "event": "message_file",
            **IDS,
            "id": "f",
            "type": "image",
            "belongs_to": "assistant",
            "url": "https://x/f.png",
        },
        ev.MessageFileEvent,
    ),
    ({"event": "tts_message", **IDS, "audio": "AAAA"}, ev.TtsMessageEvent),
    (
        {
            "event": "human_input_required",
            **WF,
            "data": {"form_id": "f", "form_token": "tok", "inputs": [], "actions": []},
        },
        ev.HumanInputRequiredEvent,
    ),
    (
        {"event": "human_input_form_filled", **WF, "data": {"node_id": "h", "action_id": "ok"}},
        ev.HumanInputFormFilledEvent,
    ),
    (
        {"event": "human_input_form_timeout", **WF, "data": {"node_id": "h", "expiration_time": 9}},
        ev.HumanInputFormTimeoutEvent,
    ),
    (
        {
            "event": "node_finished",
            **WF,
            "data": {
                "id": "n",
                "node_id": "llm",
                "status": "succeeded",
                "outputs": {"text": "x"},
                "elapsed_time": 0.5,
            },
        },
        ev.NodeFinishedEvent,
    ),
    (
        {
            "event": "message_end",
            **IDS,
            "id": "m-1",
            "metadata": {"usage": {"total_tokens": 7}, "retriever_resources": []},
        },
        ev.MessageEndEvent,
    ),
    ({"event": "tts_message_end", **IDS, "audio": ""}, ev.TtsMessageEndEvent),
    (
        {
            "event": "workflow_finished",
            **WF,
            "data": {"id": "wr-1", "status": "succeeded", "outputs": {}, "total_steps": 3},
        },
        ev.WorkflowFinishedEvent,
    ),
]


def add_stream(httpx_mock: HTTPXMock, body: bytes | list[bytes], **kwargs: Any) -> None:
    chunks = body if isinstance(body, list) else [body]
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/chat-messages",
        headers=SSE_HEADERS,
        stream=IteratorStream(chunks),
        **kwargs,
    )


def test_stream_request_and_every_chat_event(client: Client, httpx_mock: HTTPXMock) -> None:
    frames = [frame for frame, _ in ALL_CHAT_EVENTS]
    add_stream(httpx_mock, sse(["event: ping", *frames[:5], ": a comment", *frames[5:]]))
    with client.chat.send(query="q", user="u", stream=True) as stream:
        received = list(stream)
    request = httpx_mock.get_requests()[0]
    assert request.content == b'{"query":"q","user":"u","inputs":{},"response_mode":"streaming"}'
    assert request.headers["accept"] == "text/event-stream"
    assert [type(e) for e in received] == [cls for _, cls in ALL_CHAT_EVENTS]
    assert received[-1].data.status == "succeeded"
    assert stream.answer == "Hello, world"
    assert (stream.task_id, stream.message_id, stream.conversation_id, stream.workflow_run_id) == (
        "t-1",
        "m-1",
        "c-1",
        "wr-1",
    )
    assert stream.response.is_closed


def test_ping_as_data_and_unknown_events(client: Client, httpx_mock: HTTPXMock) -> None:
    add_stream(
        httpx_mock,
        sse(
            [
                {"event": "ping"},
                {"event": "brand_new_event", "task_id": "t-9", "payload": [1, 2]},
                {"event": "message", **IDS, "answer": "ok"},
                {"no_event_field": True},
                {"event": "message_end", **IDS},
            ]
        ),
    )
    events = list(client.chat.send(query="q", user="u", stream=True))
    assert events[0] == ev.UnknownEvent(
        event="brand_new_event",
        raw={"event": "brand_new_event", "task_id": "t-9", "payload": [1, 2]},
    )
    assert isinstance(events[1], ev.MessageEvent)
    assert events[2] == ev.UnknownEvent(event="", raw={"no_event_field": True})
    assert isinstance(events[3], ev.MessageEndEvent)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(client: Client, httpx_mock: HTTPXMock, newline: str) -> None:
    add_stream(
        httpx_mock,
        sse(
            [
                {"event": "message", **IDS, "answer": "a"},
                "event: ping",
                {"event": "message", **IDS, "answer": "b"},
                {"event": "message_end", **IDS},
            ],
            newline=newline,
        ),
    )
    stream = client.chat.send(query="q", user="u", stream=True)
    assert [type(e).__name__ for e in stream] == ["MessageEvent", "MessageEvent", "MessageEndEvent"]
    assert stream.answer == "ab"


@pytest.mark.parametrize("bad", [b"\xe9", b"\xed\xa0\x80", b"\xff\xfe"])
def test_bytes_that_are_not_utf8_become_replacement_characters(
    client: Client, httpx_mock: HTTPXMock, bad: bytes
) -> None:
    frame = b'data: {"event":"message","task_id":"t-1","answer":"caf' + bad + b'"}\n\n'
    add_stream(httpx_mock, [frame, sse([{"event": "message_end", **IDS}])])
    stream = client.chat.send(query="q", user="u", stream=True)
    assert [type(e).__name__ for e in stream] == ["MessageEvent", "MessageEndEvent"]
    assert stream.answer == "caf" + bad.decode("utf-8", "replace") and stream.task_id == "t-1"


def test_events_split_at_every_byte_boundary(client: Client, httpx_mock: HTTPXMock) -> None:
    body = sse(
        [
            {"event": "message", **IDS, "answer": "héllo"},
            {"event": "message", **IDS, "answer": " wörld"},
            {"event": "message_end", **IDS},
        ],
        newline="\r\n",
    )
    for cut in range(1, len(body)):
        add_stream(httpx_mock, [body[:cut], body[cut:]])
        stream = client.chat.send(query="q", user="u", stream=True)
        assert len(list(stream)) == 3, cut
        assert stream.answer == "héllo wörld", cut


def test_one_byte_chunks(client: Client, httpx_mock: HTTPXMock) -> None:
    body = sse([{"event": "message", **IDS, "answer": "ü"}, {"event": "message_end", **IDS}])
    add_stream(httpx_mock, [body[i : i + 1] for i in range(len(body))])
    stream = client.chat.send(query="q", user="u", stream=True)
    assert [type(e) for e in stream] == [ev.MessageEvent, ev.MessageEndEvent]
    assert stream.answer == "ü"


def test_error_event_raises_typed_error_with_partial_state(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    add_stream(
        httpx_mock,
        sse(
            [
                {"event": "message", **IDS, "answer": "partial "},
                {"event": "message", **IDS, "answer": "answer"},
                {
                    "event": "error",
                    "message_id": "m-1",
                    "conversation_id": "c-1",
                    "status": 400,
                    "code": "completion_request_error",
                    "message": "model overloaded",
                },
            ]
        ),
    )
    stream = client.chat.send(query="q", user="u", stream=True)
    seen = []
    with pytest.raises(BadRequestError) as info:
        for event in stream:
            seen.append(event)
    error = info.value
    assert error.status_code == 400 and error.code == "completion_request_error"
    assert "model overloaded" in str(error) and "chat.send" in str(error)
    assert error.partial is not None
    assert error.partial.answer == "partial answer"
    assert error.partial.task_id == "t-1" and error.partial.conversation_id == "c-1"
    assert len(error.partial.events) == 3 and len(seen) == 2
    assert stream.response.is_closed


def test_chatflow_failure_then_error_event(client: Client, httpx_mock: HTTPXMock) -> None:
    add_stream(
        httpx_mock,
        sse(
            [
                {"event": "workflow_started", **WF, "data": {"id": "wr-1"}},
                {
                    "event": "workflow_finished",
                    **WF,
                    "data": {"id": "wr-1", "status": "failed", "error": "boom"},
                },
                {
                    "event": "error",
                    "status": 500,
                    "code": "internal_server_error",
                    "message": "boom",
                },
            ]
        ),
    )
    with pytest.raises(InternalServerError) as info:
        list(client.chat.send(query="q", user="u", stream=True))
    assert info.value.partial is not None
    assert info.value.partial.workflow_run_id == "wr-1"


def test_stream_cut_before_final_event(client: Client, httpx_mock: HTTPXMock) -> None:
    add_stream(httpx_mock, sse([{"event": "message", **IDS, "answer": "cut he"}]))
    stream = client.chat.send(query="q", user="u", stream=True)
    with pytest.raises(StreamInterruptedError) as info:
        list(stream)
    partial = info.value.partial
    assert partial is not None and partial.answer == "cut he" and partial.task_id == "t-1"


def test_transport_error_mid_stream_keeps_partial(client: Client, httpx_mock: HTTPXMock) -> None:
    def chunks() -> Any:
        yield sse([{"event": "message", **IDS, "answer": "so far"}])
        raise httpx.RemoteProtocolError("peer closed connection")

    httpx_mock.add_response(headers=SSE_HEADERS, stream=IteratorStream(chunks()))
    with pytest.raises(StreamInterruptedError) as info:
        list(client.chat.send(query="q", user="u", stream=True))
    assert info.value.partial is not None and info.value.partial.answer == "so far"
    assert len(httpx_mock.get_requests()) == 1


def test_new_agent_closing_message_replaces_answer(client: Client, httpx_mock: HTTPXMock) -> None:
    add_stream(
        httpx_mock,
        sse(
            [
                {"event": "agent_message", **IDS, "answer": "Hel"},
                {"event": "agent_message", **IDS, "answer": "lo"},
                {"event": "message", **IDS, "answer": "Hello"},
                {"event": "message_end", **IDS},
            ]
        ),
    )
    stream = client.chat.send(query="q", user="u", stream=True)
    list(stream)
    assert stream.answer == "Hello"


def test_message_replace(client: Client, httpx_mock: HTTPXMock) -> None:
    add_stream(
        httpx_mock,
        sse(
            [
                {"event": "message", **IDS, "answer": "bad words"},
                {"event": "message_replace", **IDS, "answer": "[removed]", "reason": "moderation"},
                {"event": "message_end", **IDS},
            ]
        ),
    )
    stream = client.chat.send(query="q", user="u", stream=True)
    list(stream)
    assert stream.answer == "[removed]"


def test_malformed_event_is_a_typed_error(client: Client, httpx_mock: HTTPXMock) -> None:
    add_stream(httpx_mock, b'data: {"event": "message", "answer": \n\n')
    with pytest.raises(ResponseDecodeError):
        list(client.chat.send(query="q", user="u", stream=True))


def test_known_event_with_wrong_shape_is_a_typed_error(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    add_stream(httpx_mock, sse([{"event": "message", "answer": {"not": "a string"}}]))
    with pytest.raises(ResponseDecodeError) as info:
        list(client.chat.send(query="q", user="u", stream=True))
    assert "message" in str(info.value)


def test_http_status_checked_before_iterating(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        status_code=400,
        json={"code": "invalid_param", "message": "query is required", "status": 400},
    )
    with pytest.raises(BadRequestError) as info:
        client.chat.send(query="q", user="u", stream=True)
    assert info.value.code == "invalid_param"


def test_json_answer_to_streaming_request(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"answer": "blocking"})
    with pytest.raises(ResponseDecodeError) as info:
        client.chat.send(query="q", user="u", stream=True)
    assert "event stream" in str(info.value)


def test_breaking_out_closes_the_connection(client: Client, httpx_mock: HTTPXMock) -> None:
    frames = [{"event": "message", **IDS, "answer": str(i)} for i in range(50)]
    add_stream(httpx_mock, [sse([f]) for f in frames])
    with client.chat.send(query="q", user="u", stream=True) as stream:
        for event in stream:
            assert isinstance(event, ev.MessageEvent)
            break
    assert stream.response.is_closed


def test_garbage_collected_stream_closes_the_connection(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    add_stream(httpx_mock, [sse([{"event": "message", **IDS, "answer": "x"}])] * 20)
    stream = client.chat.send(query="q", user="u", stream=True)
    response = stream.response
    next(iter(stream))
    del stream
    gc.collect()
    assert response.is_closed


def test_stream_is_refused_on_rows_that_cannot_stream(client: Client) -> None:
    with pytest.raises(InvalidArgumentsError, match="cannot stream"):
        client.chat.stop(task_id="t", user="u", stream=True)


def test_response_mode_conflicting_with_stream(client: Client) -> None:
    with pytest.raises(InvalidArgumentsError, match="response_mode"):
        client.chat.send(query="q", user="u", response_mode="blocking", stream=True)


def test_stream_type_is_generic_stream(client: Client, httpx_mock: HTTPXMock) -> None:
    add_stream(httpx_mock, sse([{"event": "message_end", **IDS}]))
    stream = client.chat.send(query="q", user="u", stream=True)
    assert isinstance(stream, Stream)
    assert "chat.send" in repr(stream)
    stream.close()


async def test_async_stream(aclient: AsyncClient, httpx_mock: HTTPXMock) -> None:
    body = sse([frame for frame, _ in ALL_CHAT_EVENTS])
    add_stream(httpx_mock, [body[i : i + 7] for i in range(0, len(body), 7)])
    stream = await aclient.chat.send(query="q", user="u", stream=True)
    received = [event async for event in stream]
    assert [type(e) for e in received] == [cls for _, cls in ALL_CHAT_EVENTS]
    assert stream.answer == "Hello, world"
    assert json.loads(httpx_mock.get_requests()[0].content)["response_mode"] == "streaming"


async def test_async_error_event_and_early_close(
    aclient: AsyncClient, httpx_mock: HTTPXMock
) -> None:
    add_stream(
        httpx_mock,
        sse(
            [
                {"event": "message", **IDS, "answer": "x"},
                {"event": "error", "status": 400, "code": "invalid_param", "message": "bad"},
            ]
        ),
    )
    add_stream(httpx_mock, [sse([{"event": "message", **IDS, "answer": "y"}])] * 5)
    stream = await aclient.chat.send(query="q", user="u", stream=True)
    with pytest.raises(BadRequestError) as info:
        async for _ in stream:
            pass
    assert info.value.partial is not None and info.value.partial.answer == "x"
    async with await aclient.chat.send(query="q", user="u", stream=True) as second:
        async for _ in second:
            break
    assert second.response.is_closed


@pytest.mark.parametrize(
    "body",
    [
        [b'data: {"event": "message", "answer": "' + b"x" * 5000],  # a line that never ends
        [b"data: x\n" * 1000],  # an event whose data lines never stop
        [b"data: " + b"y" * 300, b"y" * 300, b"y" * 300],  # one line across chunks
    ],
)
def test_oversized_events_end_in_a_typed_error(httpx_mock: HTTPXMock, body: list[bytes]) -> None:
    from dify_oapi import ResponseTooLargeError

    add_stream(httpx_mock, [sse([{"event": "message", **IDS, "answer": "ok"}]), *body])
    client = Client(api_key="app-k", base_url=BASE, max_event_bytes=512)
    stream = client.chat.send(query="q", user="u", stream=True)
    with pytest.raises(ResponseTooLargeError) as info:
        list(stream)
    assert info.value.partial is not None and info.value.partial.answer == "ok"
    assert stream.response.is_closed


def test_events_up_to_the_cap_pass(httpx_mock: HTTPXMock) -> None:
    answer = "z" * 400
    add_stream(
        httpx_mock,
        sse(
            [{"event": "message", **IDS, "answer": answer}, {"event": "message_end", **IDS}],
            newline="\r\n",
        ),
    )
    client = Client(api_key="app-k", base_url=BASE, max_event_bytes=512)
    stream = client.chat.send(query="q", user="u", stream=True)
    assert len(list(stream)) == 2 and stream.answer == answer
