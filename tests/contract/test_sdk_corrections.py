"""The SDK items of issue 13, each checked on a real Dify 1.14.2 recording.

The replay contract (``test_replay.py``) checks that every recorded exchange decodes as it
did; these tests check the corrections the recordings call for, one per item.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest

import dify_oapi
from dify_oapi import Client
from dify_oapi.types import events as ev
from tests.recordings import Exchange, Replay, load

BASE = "http://dify.test/v1"
UUID = "1a39c6ed-fa51-4613-9b36-eed9f3603148"


def _client(*exchanges: Exchange, check: bool = True) -> tuple[Client, Replay]:
    replay = Replay(*exchanges, check=check)
    return Client(api_key="app-replay", base_url=BASE, transport=replay), replay


def _set_keys(value: Any) -> set[str]:
    """The encoded names of a struct's fields that hold something."""
    return {
        f.encode_name
        for f in msgspec.structs.fields(value)
        if getattr(value, f.name) not in (None, "", [], {})
    }


# --- 1. a collected answer has every field of the blocking one ---------------------------


@pytest.mark.parametrize(
    ("area", "blocking", "collected"),
    [
        ("chat", "chat blocking", "chat collect=True"),
        ("chat", "completion blocking", "completion collect=True"),
        ("chatflow", "chatflow echo blocking", "chatflow echo collect=True"),
        ("chatflow", "chatflow LLM blocking", "chatflow LLM collect=True"),
    ],
)
def test_collected_answer_has_the_blocking_answers_fields(
    area: str, blocking: str, collected: str, sleeps: list[float]
) -> None:
    recordings = load(area)
    sent = recordings[blocking].response_body
    exchange = recordings[collected]
    client, replay = _client(exchange)
    with client:
        result = client.call(exchange.operation, **exchange.arguments(), collect=True)
    replay.assert_done()
    wanted = {k for k, v in sent.items() if v not in (None, "", [], {})}
    assert wanted - _set_keys(result) == set()
    assert result.mode == sent["mode"]
    assert result.answer == exchange.outcome["result"]["value"]["answer"]


def test_a_failed_collected_chatflow_still_raises_as_blocking(sleeps: list[float]) -> None:
    chatflow = load("chatflow")
    blocking = chatflow["chatflow LLM blocking [fail]"].response_body
    exchange = chatflow["chatflow LLM collect=True [fail]"]
    client, _ = _client(exchange)
    with client, pytest.raises(dify_oapi.BadRequestError) as caught:
        client.call(exchange.operation, **exchange.arguments(), collect=True)
    assert caught.value.code == blocking["code"] == "invalid_param"
    assert caught.value.message == blocking["message"]
    assert caught.value.partial is not None and caught.value.partial.workflow_run_id


# --- 2. every field and event the server sends is typed ----------------------------------


def test_usage_times_are_typed_from_a_chatflow_answer(sleeps: list[float]) -> None:
    exchange = load("chatflow")["chatflow LLM blocking"]
    usage = exchange.response_body["metadata"]["usage"]
    client, _ = _client(exchange)
    with client:
        answer = client.call(exchange.operation, **exchange.arguments())
    assert isinstance(usage["time_to_first_token"], float)
    assert answer.metadata.usage.time_to_first_token == usage["time_to_first_token"]
    assert answer.metadata.usage.time_to_generate == usage["time_to_generate"]


def test_node_started_agent_strategy_is_a_field(sleeps: list[float]) -> None:
    exchange = load("workflow")["workflow echo streaming"]
    client, _ = _client(exchange)
    with client:
        started = [
            e
            for e in client.call(exchange.operation, **exchange.arguments(), stream=True)
            if isinstance(e, ev.NodeStartedEvent)
        ]
    raw = [e for e in exchange.events if isinstance(e, dict) and e["event"] == "node_started"]
    assert started and all("agent_strategy" in e["data"] for e in raw)
    assert [e.data.agent_strategy for e in started] == [e["data"]["agent_strategy"] for e in raw]
    assert "agent_strategy" in {f.name for f in msgspec.structs.fields(ev.NodeRunData)}


def test_paused_blocking_answers_decode_their_fields() -> None:
    # Dify's AdvancedChatPausedBlockingResponse flattened (no recording pauses a run:
    # the test server had no human-input app), and the workflow one under ``data``.
    chat = msgspec.json.decode(
        b'{"event":"message","task_id":"t","id":"m","message_id":"m","conversation_id":"c",'
        b'"mode":"advanced-chat","answer":"","metadata":{},"created_at":1,'
        b'"workflow_run_id":"r","paused_nodes":["n1"],"reasons":[{"type":"human_input"}],'
        b'"status":"paused","elapsed_time":0.5,"total_tokens":0,"total_steps":2}',
        type=dify_oapi.types.ChatResponse,
    )
    assert (chat.workflow_run_id, chat.paused_nodes, chat.status) == ("r", ["n1"], "paused")
    assert chat.reasons == [{"type": "human_input"}] and chat.total_steps == 2
    run = msgspec.json.decode(
        b'{"task_id":"t","workflow_run_id":"r","data":{"id":"r","status":"paused",'
        b'"paused_nodes":["n1"],"reasons":[{"type":"human_input"}]}}',
        type=dify_oapi.types.WorkflowRunResponse,
    )
    assert run.data is not None and run.data.paused_nodes == ["n1"] and run.data.reasons


def test_human_input_submission_keeps_submitted_data() -> None:
    sub = msgspec.convert(
        {"node_id": "n", "action_id": "ok", "submitted_data": {"name": "Ada"}},
        dify_oapi.types.HumanInputSubmission,
    )
    assert sub.submitted_data == {"name": "Ada"}


def test_text_replace_event_replaces_the_streamed_text() -> None:
    from dify_oapi._codecs import json_decoder

    decode = json_decoder(ev.WorkflowEvent).decode
    event = decode(b'{"event":"text_replace","task_id":"t","data":{"text":"***"}}')
    assert isinstance(event, ev.TextReplaceEvent) and event.data is not None
    assert event.data.text == "***" and event.replaces and event.delta == "data.text"


def test_server_version_is_the_x_version_header(sleeps: list[float]) -> None:
    exchange = load("app")["info (chat app)"]
    client, _ = _client(exchange)
    with client:
        assert client.server_version is None
        client.call(exchange.operation, **exchange.arguments())
        assert client.server_version == exchange.response_headers["x-version"] == "1.14.2"
    # The raw answer carries it too.
    client, _ = _client(exchange)
    with client:
        raw = client.dify.get_info(raw=True)
    assert raw.headers["X-Version"] == "1.14.2" and raw.data.mode == "chat"


def _json(exchange: Exchange) -> Any:
    return json.loads(exchange.content())


# --- 3. audio goes out with a type Dify takes ---------------------------------------------

AUDIO_TYPES = {"audio/mp3", "audio/m4a", "audio/wav", "audio/amr", "audio/mpga"}


def _part_type(replay: Replay) -> str | None:
    found = re.search(
        rb'name="file"[^\r\n]*\r\nContent-Type: ([^\r\n]+)', replay.requests[-1].content
    )
    return found.group(1).decode() if found else None


@pytest.mark.parametrize(
    ("name", "how", "sent"),
    [
        ("hello.mp3", "path", "audio/mp3"),
        ("hello.wav", "path", "audio/wav"),
        ("hello.m4a", "path", "audio/m4a"),
        ("hello.MP3", "path", "audio/mp3"),
        ("file", "bytes", "audio/mp3"),
        ("hello.wav", "tuple", "audio/wav"),
        ("hello.m4a", "file", "audio/m4a"),
    ],
)
def test_audio_part_has_a_type_dify_takes(
    name: str, how: str, sent: str, tmp_path: Any, sleeps: list[float]
) -> None:
    # The recorded accepted upload answers (400: the test server had no speech model).
    accepted = load("app")["audio-to-text tuple audio/mp3"]
    data = b"ID3fake-audio"
    path = tmp_path / name
    path.write_bytes(data)
    part: Any = {
        "path": path,
        "bytes": data,
        "tuple": (name, data),
        "file": None,
    }[how]
    client, replay = _client(accepted, check=False)
    with client, path.open("rb") as handle, pytest.raises(dify_oapi.BadRequestError) as caught:
        client.dify.audio_to_text(file=handle if how == "file" else part, user="u")
    assert caught.value.code == "provider_not_initialize"
    assert _part_type(replay) == sent and sent in AUDIO_TYPES
    assert data in replay.requests[-1].content


def test_audio_part_keeps_the_callers_type(sleeps: list[float]) -> None:
    refused = load("app")["audio-to-text tuple audio/mpeg"]
    client, replay = _client(refused)
    with client, pytest.raises(dify_oapi.APIStatusError) as caught:
        client.dify.audio_to_text(**refused.arguments())
    assert caught.value.status_code == 415 and caught.value.code == "unsupported_audio_type"
    assert _part_type(replay) == "audio/mpeg"


# --- 4. no method that always fails; an HTML 404 names the missing route ------------------


def test_the_row_without_a_route_is_gone() -> None:
    with Client(api_key="dataset-x", base_url=BASE) as client:
        assert "knowledge.get_document_file" not in client.operations
        assert not hasattr(client.knowledge, "get_document_file")
        with pytest.raises(dify_oapi.InvalidArgumentsError, match="unknown operation"):
            client.call("knowledge.get_document_file", dataset_id="d", document_id="x")


def test_an_html_404_from_any_route_says_the_server_has_no_such_route(
    sleeps: list[float],
) -> None:
    # The server's real answer to the removed row, given to a row that exists.
    html = load("knowledge")["error: unknown route document upload-file"]
    assert "html" in html.response_headers["content-type"]
    client, replay = _client(html, check=False)
    dataset, document = (
        "1a39c6ed-fa51-4613-9b36-eed9f3603148",
        "82473cc0-3da0-42a8-8666-e2935a30d768",
    )
    with client, pytest.raises(dify_oapi.NotFoundError) as caught:
        client.knowledge.get_document(dataset_id=dataset, document_id=document)
    error = caught.value
    assert error.status_code == 404 and error.code is None
    assert str(error.message).startswith(
        f"the server has no route for GET /v1/datasets/{dataset}/documents/{document}"
    )
    assert "Not Found: 404" not in str(error)
    assert len(replay.requests) == 1  # a missing route is not retried


# --- 8. a run the caller stopped is told apart from a failed one ------------------------


def test_a_stopped_workflow_stream_says_stopped_as_get_run_does(sleeps: list[float]) -> None:
    workflow = load("workflow")
    run = workflow["workflow slow streaming stopped mid-run"]
    stop = workflow["workflow stop (mid-run, slow node)"]
    record = workflow["workflow get_run (stopped run)"]
    # On the wire the run ends "failed" ("Aborted: User requested stop").
    assert run.events[-1]["data"]["status"] == "failed"
    client, replay = _client(run, stop, record)
    with client:
        stream = client.workflow.run(**run.arguments(), stream=True)
        seen = []
        for event in stream:
            seen.append(event)
            if isinstance(event, ev.NodeStartedEvent) and len(seen) == 4:
                assert stream.stop().result == "success"
        detail = client.workflow.get_run(workflow_run_id=stream.workflow_run_id)
    replay.assert_done()
    last = seen[-1]
    assert isinstance(last, ev.WorkflowFinishedEvent) and last.data is not None
    assert last.data.status == "stopped" == detail.status
    assert last.data.error == "Aborted: User requested stop"
    assert stream.state.stopped and stream.state.failed


def test_a_failed_run_is_not_called_stopped(sleeps: list[float]) -> None:
    run = load("workflow")["workflow failing node streaming"]
    client, _ = _client(run)
    with client:
        stream = client.workflow.run(**run.arguments(), stream=True)
        last = list(stream)[-1]
    assert isinstance(last, ev.WorkflowFinishedEvent) and last.data is not None
    assert last.data.status == "failed" and not stream.state.stopped


def test_a_chatflow_collected_after_the_client_stopped_it_is_stopped_not_failed(
    sleeps: list[float],
) -> None:
    chatflow = load("chatflow")
    run = chatflow["chatflow slow streaming stopped mid-run"]
    stop = chatflow["chatflow stop (mid-run, slow HTTP node)"]
    client, replay = _client(stop, run)
    with client:
        # Another thread of the caller stops the task the collect is reading (the Replay
        # answers in any order); the client remembers the task id it asked to stop.
        client.chatflow.stop(**stop.arguments())
        answer = client.chatflow.send(**run.arguments(), collect=True)
    replay.assert_done()
    assert answer.status == "stopped" and answer.mode == "advanced-chat"
    assert answer.task_id == stop.path_params()["task_id"]
    partial = "".join(e["answer"] for e in run.events if isinstance(e, dict) and "answer" in e)
    assert answer.answer == partial


def test_a_chatflow_that_failed_without_a_stop_still_raises(sleeps: list[float]) -> None:
    run = load("chatflow")["chatflow slow streaming stopped mid-run"]
    client, _ = _client(run)  # no stop asked by this client: a failed run, as blocking says
    with client, pytest.raises(dify_oapi.BadRequestError) as caught:
        client.chatflow.send(**run.arguments(), collect=True)
    assert caught.value.message == "Run failed: Aborted: User requested stop"
    assert caught.value.partial is not None and not caught.value.partial.stopped


# --- 6. None where the server takes null -------------------------------------------------


def test_none_means_not_given_where_dify_refuses_null(sleeps: list[float]) -> None:
    chat = load("chat")
    # Dify answers 400 to a JSON null auto_generate_name (and accepts a null files)...
    refused = chat["raw JSON null files and auto_generate_name"]
    assert refused.status == 400 and "auto_generate_name" in refused.response_body["message"]
    accepted = chat["raw JSON null conversation_id"]
    client, replay = _client(accepted, check=False)
    with client:
        answer = client.chat.send(
            query="null files",
            user="rec-user-1",
            conversation_id=None,
            files=None,
            auto_generate_name=None,
        )
    # ...so None leaves the field out, which Dify reads as not given.
    sent = json.loads(replay.requests[0].content)
    assert sent == {
        "query": "null files",
        "user": "rec-user-1",
        "inputs": {},
        "response_mode": "blocking",
    }
    assert answer.answer


def test_none_is_refused_where_dify_refuses_null_and_no_default_applies() -> None:
    refused = load("chat")["raw JSON null inputs"]
    assert refused.status == 400
    client = Client(api_key="app-x", base_url=BASE)
    with client, pytest.raises(dify_oapi.RequestValidationError) as caught:
        client.chat.send(query="q", user="u", inputs=None)
    assert caught.value.operation == "chat.send" and caught.value.field == "$.inputs"


def test_a_field_typed_with_none_sends_null() -> None:
    from dify_oapi._request import prepare

    with Client(api_key="dataset-x", base_url=BASE) as client:
        ep = client._endpoint("knowledge.run_datasource_node")
    args = {
        "dataset_id": UUID,
        "node_id": "n",
        "inputs": {},
        "datasource_type": "online_document",
        "is_published": True,
        "credential_id": None,
    }
    prepared = prepare(ep, None, args, stream=True)
    assert json.loads(prepared.content)["credential_id"] is None
