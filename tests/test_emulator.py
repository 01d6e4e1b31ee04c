"""The emulator, exercised through the SDK: apps, workflows, knowledge bases, errors, hooks."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import dify_oapi.emulator._core as core
from dify_oapi import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    StreamInterruptedError,
)
from dify_oapi._services import ENDPOINTS
from dify_oapi.emulator import AgentTool, AppDefinition, Emulator
from dify_oapi.types import events as ev
from tests.recordings import load

BASE = "http://emulator.test/v1"
NOW = 1_700_000_000
USER = "user-1"


def keyword_search(top_k: int, **more: Any) -> dict[str, Any]:
    """A retrieval model on the keyword index (an economy knowledge base's)."""
    model = {"search_method": "keyword_search", "reranking_enable": False, "top_k": top_k}
    return model | {"score_threshold_enabled": False} | more


def where(name: str, value: str) -> dict[str, Any]:
    """Metadata filtering conditions: one field ``is`` one value."""
    condition = {"name": name, "comparison_operator": "is", "value": value}
    return {"logical_operator": "and", "conditions": [condition]}


def make(app: AppDefinition | None = None, **options: Any) -> Emulator:
    # Indexing takes real time even on this frozen clock: a little, so waiters finish soon.
    options.setdefault("indexing_seconds", 0.05)
    return Emulator(app=app, clock=lambda: NOW, **options)


@pytest.fixture
def emulator() -> Emulator:
    return make()


@pytest.fixture
def client(emulator: Emulator, sleeps: list[float]) -> Iterator[Client]:
    with Client(api_key="app-test", base_url=BASE, transport=emulator) as c:
        yield c


@pytest.fixture
def kb(client: Client) -> Client:
    return client.with_options(api_key="dataset-test")


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__.removesuffix("Event") for e in events]


# --- routes ------------------------------------------------------------------------------


def test_routes_are_the_tables_rows(emulator: Emulator) -> None:
    rows = {(ep.method, ep.path) for eps in ENDPOINTS.values() for ep in eps}
    routes = emulator._router.routes
    assert {(r.method, r.path) for r in routes} == rows
    assert len(routes) == len(rows)  # shared rows fold into one route
    chat = next(r for r in routes if r.path == "/chat-messages")
    assert {r.qualname for r in chat.rows} == {"chat.send", "chatflow.send"}
    # A literal segment wins over a placeholder.
    found = emulator._router.find("GET", ["datasets", "tags"])
    assert not isinstance(found, int) and found[0].row.qualname == "knowledge.list_tags"
    assert emulator._router.find("GET", ["nope"]) == 404
    assert emulator._router.find("PUT", ["chat-messages"]) == 405


# --- chat -------------------------------------------------------------------------------


def test_chat_conversation_persists_across_calls(client: Client) -> None:
    first = client.chat.send(query="Hello there", user=USER)
    assert (first.answer, first.mode, first.event) == ("Hello there", "chat", "message")
    assert first.metadata.usage.total_tokens == 4
    with client.chat.send(
        query="What now", user=USER, conversation_id=first.conversation_id, stream=True
    ) as stream:
        events = list(stream)
    assert kinds(events) == ["Message", "Message", "MessageEnd"]
    assert [e.answer for e in events[:2]] == ["What ", "now"]
    assert stream.answer == "What now" and stream.conversation_id == first.conversation_id
    assert events[-1].metadata.usage.completion_tokens == 2
    other = client.chat.send(query="Separate", user=USER)

    conversations = client.chat.list_conversations(user=USER)
    assert [c.id for c in conversations.data] == [other.conversation_id, first.conversation_id]
    assert conversations.data[1].name == "Hello there"
    assert client.chat.list_conversations(user="someone-else").data == []
    history = client.chat.list_messages(conversation_id=first.conversation_id, user=USER)
    assert [(m.query, m.answer) for m in history.data] == [
        ("Hello there", "Hello there"),
        ("What now", "What now"),
    ]
    assert not history.has_more
    # Paging backwards from the newest.
    newest = client.chat.list_messages(conversation_id=first.conversation_id, user=USER, limit=1)
    assert [m.query for m in newest.data] == ["What now"] and newest.has_more
    older = client.chat.list_messages(
        conversation_id=first.conversation_id, user=USER, first_id=newest.data[0].id, limit=1
    )
    assert [m.query for m in older.data] == ["Hello there"] and not older.has_more
    pages = client.chat.iter_conversations(user=USER, limit=1)
    assert [c.id for c in pages] == [other.conversation_id, first.conversation_id]


def test_replies_are_scripted(emulator: Emulator, client: Client) -> None:
    emulator.script_reply("Scripted one", "Scripted two")
    assert client.chat.send(query="a", user=USER).answer == "Scripted one"
    assert client.completion.send(inputs={"query": "b"}, user=USER).answer == "Scripted two"
    assert client.chat.send(query="c", user=USER).answer == "c"  # back to echoes

    listed = make(AppDefinition(replies=["First", "Second"]))
    with Client(api_key="app-x", base_url=BASE, transport=listed) as c:
        answers = [c.chat.send(query=q, user=USER).answer for q in "xyz"]
    assert answers == ["First", "Second", "z"]

    computed = make(AppDefinition(replies=lambda query, inputs: f"{query.upper()} {inputs}"))
    with Client(api_key="app-x", base_url=BASE, transport=computed) as c:
        assert c.chat.send(query="hi", user=USER, inputs={"a": 1}).answer == "HI {'a': 1}"


def test_stop_ends_a_running_stream(client: Client) -> None:
    stream = client.chat.send(query="one two three four five", user=USER, stream=True)
    received = [next(stream), next(stream)]
    assert client.chat.stop(task_id=stream.task_id, user=USER).result == "success"
    received += list(stream)
    # As on Dify: one more delta, then message_end with zero usage.
    assert kinds(received) == ["Message", "Message", "Message", "MessageEnd"]
    assert received[-1].metadata.usage.total_tokens == 0
    history = client.chat.list_messages(conversation_id=stream.conversation_id, user=USER)
    assert history.data[0].answer == "one two three "
    # Another user cannot stop the task; an unknown task still answers success, as Dify does.
    assert client.chat.stop(task_id="unknown", user=USER).result == "success"


def test_feedback_suggestions_and_annotations(client: Client) -> None:
    sent = client.chat.send(query="Rate me", user=USER)
    client.chat.submit_feedback(message_id=sent.message_id, user=USER, rating="like", content="ok")
    history = client.chat.list_messages(conversation_id=sent.conversation_id, user=USER)
    assert history.data[0].feedback.rating == "like"
    feedbacks = client.dify.list_feedbacks().data
    assert [(f.message_id, f.rating, f.content) for f in feedbacks] == [
        (sent.message_id, "like", "ok")
    ]
    assert feedbacks[0].created_at == "2023-11-14T22:13:20"
    client.chat.submit_feedback(message_id=sent.message_id, user=USER, rating=None)
    assert client.dify.list_feedbacks().data == []
    with pytest.raises(NotFoundError):
        client.chat.get_suggested(message_id=sent.message_id, user="intruder")

    note = client.chat.create_annotation(question="What is Dify?", answer="An LLM app platform.")
    assert client.chat.send(query="What is Dify?", user=USER).answer == "What is Dify?"
    job = client.chat.update_annotation_reply(
        action="enable",
        score_threshold=0.9,
        embedding_provider_name="openai",
        embedding_model_name="text-embedding-3-small",
    )
    status = client.chat.get_annotation_reply_status(action="enable", job_id=job.job_id)
    assert status.job_status == "completed"
    assert client.chat.send(query="what is dify?", user=USER).answer == "An LLM app platform."
    listed = client.chat.list_annotations(keyword="dify")
    assert [(a.id, a.hit_count) for a in listed.data] == [(note.id, 1)] and listed.total == 1
    client.chat.update_annotation(annotation_id=note.id, question="Q", answer="A")
    client.chat.delete_annotation(annotation_id=note.id)
    assert client.chat.list_annotations().data == []


def test_conversation_variables_rename_delete() -> None:
    app = AppDefinition(
        variables=[{"name": "topic", "value_type": "string", "value": "cats"}],
        opening_statement="Welcome!",
    )
    with Client(api_key="app-x", base_url=BASE, transport=make(app)) as client:
        sent = client.chat.send(query="Hi", user=USER)
        conv = sent.conversation_id
        listed = client.chat.list_conversation_variables(conversation_id=conv, user=USER)
        (var,) = listed.data
        assert (var.name, var.value_type, var.value) == ("topic", "string", "cats")
        updated = client.chat.update_conversation_variable(
            conversation_id=conv, variable_id=var.id, value="dogs", user=USER
        )
        assert updated.value == "dogs"
        with pytest.raises(BadRequestError) as caught:
            client.chat.update_conversation_variable(
                conversation_id=conv, variable_id=var.id, value=3, user=USER
            )
        assert caught.value.code == "conversation_variable_type_mismatch"
        again = client.chat.list_conversation_variables(
            conversation_id=conv, user=USER, variable_name="topic"
        )
        assert [v.value for v in again.data] == ["dogs"]
        renamed = client.chat.rename_conversation(conversation_id=conv, name="Pets", user=USER)
        assert (renamed.name, renamed.introduction) == ("Pets", "Welcome!")
        client.chat.delete_conversation(conversation_id=conv, user=USER)
        assert client.chat.list_conversations(user=USER).data == []
        with pytest.raises(NotFoundError) as missing:
            client.chat.list_messages(conversation_id=conv, user=USER)
        assert (missing.value.code, missing.value.message) == (
            "not_found",
            "Conversation Not Exists.",
        )


def test_chatflow_streams_workflow_events_and_records_the_run(sleeps: list[float]) -> None:
    emulator = make(AppDefinition(mode="advanced-chat"))
    with Client(api_key="app-flow", base_url=BASE, transport=emulator) as client:
        with client.chatflow.send(query="Flow please", user=USER, stream=True) as stream:
            events = list(stream)
        assert kinds(events) == [
            "WorkflowStarted",
            "NodeStarted",
            "NodeFinished",
            "NodeStarted",
            "Message",
            "Message",
            "NodeFinished",
            "NodeStarted",
            "NodeFinished",
            "MessageEnd",
            "WorkflowFinished",
        ]
        assert [e.data.node_type for e in events if isinstance(e, ev.NodeStartedEvent)] == [
            "start",
            "llm",
            "answer",
        ]
        assert events[-1].data.outputs == {"answer": "Flow please", "files": []}
        run = client.chatflow.get_run(workflow_run_id=stream.workflow_run_id)
        assert (run.status, run.outputs) == ("succeeded", {"answer": "Flow please", "files": []})
        blocking = client.chatflow.send(query="Blocking", user=USER)
        assert (blocking.answer, blocking.mode) == ("Blocking", "advanced-chat")
        with pytest.raises(BadRequestError) as caught:
            client.workflow.run(inputs={}, user=USER)
        assert caught.value.code == "not_workflow_app"


def test_llm_and_http_nodes_report_what_dify_s_do(sleeps: list[float]) -> None:
    flow = AppDefinition(
        mode="advanced-chat", model_provider="acme/llm/acme", model_name="m1", system_prompt="Be"
    )
    with Client(api_key="app-flow", base_url=BASE, transport=make(flow)) as client:
        nodes = list(client.chatflow.send(query="two words", user=USER, stream=True))
    llm = next(
        e.data for e in nodes if isinstance(e, ev.NodeFinishedEvent) and e.data.node_type == "llm"
    )
    assert llm.inputs == {"model_provider": "acme/llm/acme", "model_name": "m1"}
    assert llm.process_data is not None and llm.outputs is not None
    assert llm.process_data["prompts"] == [
        {"role": "system", "text": "Be", "files": []},
        {"role": "user", "text": "two words", "files": []},
    ]
    assert (llm.outputs["text"], llm.outputs["usage"]["total_tokens"]) == ("two words", 4)
    assert llm.execution_metadata == {
        "total_tokens": 4,
        "total_price": "0.0000060",
        "currency": "USD",
    }
    failing = AppDefinition(
        mode="workflow",
        nodes=("start", "http-request"),
        failing_node="http-request",
        http_url="http://10.0.0.1:8080/hook?x=1",
    )
    with Client(api_key="app-wf", base_url=BASE, transport=make(failing)) as client:
        events = list(client.workflow.run(inputs={"q": "x"}, user=USER, stream=True))
    # No End node to stream from: no text chunk at all, as the recorded failing app.
    assert kinds(events) == [
        "WorkflowStarted",
        "NodeStarted",
        "NodeFinished",
        "NodeStarted",
        "NodeFinished",
        "WorkflowFinished",
    ]
    http = events[-2].data
    assert (http.title, http.status, http.outputs) == ("HTTP", "failed", {})
    assert http.process_data == {"request": "GET /hook?x=1 HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n\r\n"}


def test_an_agent_calls_its_tools_in_a_first_round_of_thoughts(sleeps: list[float]) -> None:
    clock = AgentTool(
        "clock",
        labels={"en_US": "Clock", "fr_FR": "Horloge"},
        arguments={"tz": "UTC"},
        run=lambda arguments: f"noon {arguments['tz']}",
    )
    app = AppDefinition(mode="agent-chat", tools=[clock])
    with Client(api_key="app-a", base_url=BASE, transport=make(app)) as c:
        with c.chat.send(query="What time", user=USER, stream=True) as stream:
            events = list(stream)
        history = c.chat.list_messages(conversation_id=stream.conversation_id, user=USER)
    assert kinds(events) == [
        *("AgentThought", "AgentMessage", "AgentThought", "AgentThought"),
        *("AgentThought", "AgentMessage", "AgentMessage", "AgentMessage", "AgentThought"),
        "MessageEnd",
    ]
    thoughts = [e for e in events if isinstance(e, ev.AgentThoughtEvent)]
    first, second = thoughts[0].id, thoughts[-1].id
    assert [(t.id, t.position) for t in thoughts] == [(first, 1)] * 3 + [(second, 2)] * 2
    assert [(t.tool, t.tool_input, t.observation) for t in thoughts] == [
        ("", "", ""),
        ("clock", '{"clock": {"tz": "UTC"}}', ""),
        ("clock", '{"clock": {"tz": "UTC"}}', '{"clock": "noon UTC"}'),
        ("", "", ""),
        ("", "", ""),
    ]
    assert thoughts[1].tool_labels == {"clock": {"en_US": "Clock", "fr_FR": "Horloge"}}
    assert [t.thought for t in thoughts] == ["", "", "", "", "What time"]
    assert stream.answer == "What time"
    # The history keeps each thought as last published (FACTS "Where the emulator differs" 12).
    stored = history.data[0].agent_thoughts
    assert [(t.id, t.position, t.tool, t.observation, t.thought) for t in stored] == [
        (first, 1, "clock", '{"clock": "noon UTC"}', ""),
        (second, 2, "", "", "What time"),
    ]
    assert stored[0].tool_input == '{"clock": {"tz": "UTC"}}' and stored[0].chain_id is None


def test_agent_and_completion_streams(sleeps: list[float]) -> None:
    with Client(
        api_key="app-a", base_url=BASE, transport=make(AppDefinition(mode="agent-chat"))
    ) as c:
        with c.chat.send(query="Use tools", user=USER, stream=True) as stream:
            # No tools: one round, its thought published empty, then holding the answer.
            assert kinds(list(stream)) == [
                "AgentThought",
                "AgentMessage",
                "AgentMessage",
                "AgentMessage",
                "AgentThought",
                "MessageEnd",
            ]
        assert stream.answer == "Use tools"
        with pytest.raises(BadRequestError, match="blocking"):
            c.chat.send(query="x", user=USER)
    with Client(
        api_key="app-c", base_url=BASE, transport=make(AppDefinition(mode="completion"))
    ) as c:
        with c.completion.send(inputs={"query": "Write two"}, user=USER, stream=True) as stream:
            events = list(stream)
        assert kinds(events) == ["Message", "Message", "MessageEnd"]
        assert events[0].conversation_id is None and stream.answer == "Write two"
        assert c.completion.send(user=USER, query="Legacy query").answer == "Legacy query"
        with pytest.raises(BadRequestError) as caught:
            c.chat.send(query="x", user=USER)
        assert caught.value.code == "not_chat_app"


# --- app-level ---------------------------------------------------------------------------


def test_files_audio_and_app_info(emulator: Emulator, client: Client) -> None:
    uploaded = client.dify.upload_file(file=("notes.md", b"# Notes\n"), user=USER)
    assert (uploaded.name, uploaded.size, uploaded.extension) == ("notes.md", 8, "md")
    signed = httpx.Client(transport=emulator).get(uploaded.source_url)  # no key needed
    assert signed.content == b"# Notes\n"
    end_user = client.dify.get_end_user(end_user_id=uploaded.created_by)
    assert (end_user.external_user_id, end_user.type) == (USER, "service-api")
    assert end_user.created_at == "2023-11-14T22:13:20"  # naive UTC, as Dify writes it

    with client.dify.text_to_audio(text="Say hi", user=USER, stream=True) as audio:
        assert audio.content_type == "audio/mpeg"
        assert b"".join(audio.iter_bytes()).endswith(b"Say hi")
    sent = client.chat.send(query="Read me", user=USER)
    assert client.dify.text_to_audio(message_id=sent.message_id).startswith(b"ID3")
    assert client.dify.audio_to_text(file=("a.mp3", b"spoken text")).text == "spoken text"
    # Dify goes by the part's type, not the name: audio/mpeg is refused (FACTS 6).
    for part in [("a.txt", b"x", "text/plain"), ("a.mp3", b"x", "audio/mpeg")]:
        with pytest.raises(Exception) as unsupported:
            client.dify.audio_to_text(file=part)
        assert unsupported.value.status_code == 415
        assert unsupported.value.code == "unsupported_audio_type"

    # A chat message can carry an uploaded file.
    with_file = client.chat.send(
        query="See file",
        user=USER,
        files=[
            {"type": "document", "transfer_method": "local_file", "upload_file_id": uploaded.id}
        ],
    )
    (message,) = client.chat.list_messages(conversation_id=with_file.conversation_id).data
    assert message.message_files[0].filename == "notes.md"
    # Once a message carries it, the upload can be previewed.
    assert client.dify.preview_file(file_id=uploaded.id) == b"# Notes\n"
    raw = client.dify.preview_file(file_id=uploaded.id, as_attachment=True, raw=True)
    assert raw.headers["content-disposition"] == "attachment; filename*=UTF-8''notes.md"
    assert raw.headers["content-type"] == "application/octet-stream" and raw.data == b"# Notes\n"


ATTACHED = {"type": "document", "transfer_method": "local_file"}
NOT_IN_A_MESSAGE = (404, "file_not_found", "File not found in message context")


def test_a_preview_waits_for_a_message_carrying_the_upload(sleeps: list[float]) -> None:
    """Dify previews an upload only through a message of the app that carries it (FACTS 2)."""
    apps = {"app-chat": AppDefinition(mode="chat"), "app-wf": AppDefinition(mode="workflow")}
    with Client(api_key="app-chat", base_url=BASE, transport=make(api_keys=apps)) as client:
        uploaded = client.dify.upload_file(file=("notes.md", b"# Notes\n"), user=USER)
        attached = [ATTACHED | {"upload_file_id": uploaded.id}]
        for file_id in (uploaded.id, "0ace6e87-0068-401f-8ae6-024d75194da7"):  # and unknown
            for as_attachment in (False, True):
                with pytest.raises(NotFoundError) as missing:
                    client.dify.preview_file(
                        file_id=file_id, user=USER, as_attachment=as_attachment
                    )
                error = missing.value
                assert (error.status_code, error.code, error.message) == NOT_IN_A_MESSAGE
        # A workflow run makes no message (source: only message-based apps store message files).
        client.workflow.run(inputs={}, user=USER, files=attached, api_key="app-wf")
        with pytest.raises(NotFoundError):
            client.dify.preview_file(file_id=uploaded.id, user=USER)
        client.chat.send(query="See file", user=USER, files=attached)
        assert client.dify.preview_file(file_id=uploaded.id, user=USER) == b"# Notes\n"
        assert client.dify.preview_file(file_id=uploaded.id, user="someone-else") == b"# Notes\n"


def test_suggested_questions_are_off_until_the_app_turns_them_on(sleeps: list[float]) -> None:
    """A fresh app answers 400 with the feature off, and /parameters says so (FACTS 2, 7)."""
    apps = {
        "app-chat": AppDefinition(mode="chat"),
        "app-flow": AppDefinition(mode="advanced-chat"),
        "app-on": AppDefinition(mode="chat", suggested_questions_after_answer=True),
        "app-via-parameters": AppDefinition(
            parameters={"suggested_questions_after_answer": {"enabled": True}},
            follow_ups=["Why?"],
        ),
        "app-completion": AppDefinition(mode="completion"),
    }
    with Client(api_key="app-chat", base_url=BASE, transport=make(api_keys=apps)) as client:
        for key in ("app-chat", "app-flow"):
            sent = client.chat.send(query="Hi", user=USER, api_key=key)
            params = client.dify.get_parameters(api_key=key)
            assert params.suggested_questions_after_answer == {"enabled": False}
            with pytest.raises(BadRequestError) as off:
                client.chat.get_suggested(message_id=sent.message_id, user=USER, api_key=key)
            error = off.value
            assert (error.status_code, error.code, error.message) == (
                400,
                "bad_request",
                "Suggested Questions Is Disabled.",
            )
        for key, questions in [
            ("app-on", ["Can you tell me more?", "Why is that?", "What should I do next?"]),
            ("app-via-parameters", ["Why?"]),
        ]:
            sent = client.chat.send(query="Hi", user=USER, api_key=key)
            params = client.dify.get_parameters(api_key=key)
            assert params.suggested_questions_after_answer == {"enabled": True}
            found = client.chat.get_suggested(message_id=sent.message_id, user=USER, api_key=key)
            assert (found.result, found.data) == ("success", questions)
            with pytest.raises(NotFoundError):  # the message is checked before the feature
                client.chat.get_suggested(message_id=sent.message_id, user="intruder", api_key=key)
        # Dify checks the app's mode first.
        done = client.completion.send(inputs={"query": "Hi"}, user=USER, api_key="app-completion")
        with pytest.raises(BadRequestError) as wrong:
            client.chat.get_suggested(
                message_id=done.message_id, user=USER, api_key="app-completion"
            )
        assert wrong.value.code == "not_chat_app"


NIL_UUID = "00000000-0000-0000-0000-000000000000"
_USAGE_FIELDS = ("message_tokens", "answer_tokens", "total_tokens")
_USAGE_FIELDS += ("provider_response_latency", "total_price", "currency")


def test_history_messages_have_the_keys_dify_s_have(client: Client) -> None:
    """Every message's parent is the nil UUID; no token, price or latency fields (FACTS 7)."""
    first = client.chat.send(query="first turn", user=USER)
    client.chat.send(query="second turn", user=USER, conversation_id=first.conversation_id)
    history = client.chat.list_messages(conversation_id=first.conversation_id, user=USER)
    assert [m.parent_message_id for m in history.data] == [NIL_UUID, NIL_UUID]
    assert [[getattr(m, f) for f in _USAGE_FIELDS] for m in history.data] == [[None] * 6] * 2
    raw = client.chat.list_messages(conversation_id=first.conversation_id, user=USER, raw=True)
    assert raw.http_response is not None
    recorded = load("app")["messages list"].response_body["data"]
    assert [sorted(m) for m in raw.http_response.json()["data"]] == [sorted(recorded[0])] * 2


def test_app_answers_come_from_the_definition() -> None:
    app = AppDefinition(
        name="Helper",
        mode="chat",
        tags=["support"],
        opening_statement="Hi!",
        suggested_questions=["How?"],
        user_input_form=[{"text-input": {"label": "Name", "variable": "name", "required": True}}],
        parameters={"more_like_this": {"enabled": True}},
        site={"title": "Helper site"},
    )
    with Client(api_key="app-x", base_url=BASE, transport=make(app)) as client:
        info = client.dify.get_info()
        assert (info.name, info.mode, info.tags) == ("Helper", "chat", ["support"])
        params = client.dify.get_parameters()
        assert (params.opening_statement, params.suggested_questions) == ("Hi!", ["How?"])
        assert params.user_input_form[0]["text-input"]["variable"] == "name"
        assert params.more_like_this == {"enabled": True}
        assert client.dify.get_site().title == "Helper site"
        assert client.dify.get_meta().tool_icons == {}


# --- workflows ---------------------------------------------------------------------------


def test_workflow_stream_detail_logs_and_events(client: Client) -> None:
    with client.workflow.run(inputs={"query": "Translate this"}, user=USER, stream=True) as stream:
        events = list(stream)
    # Dify's Start -> End order: the text streams before any node event.
    assert kinds(events) == [
        "WorkflowStarted",
        "TextChunk",
        "TextChunk",
        "NodeStarted",
        "NodeFinished",
        "NodeStarted",
        "NodeFinished",
        "WorkflowFinished",
    ]
    assert stream.answer == "Translate this"
    assert events[-1].data.outputs == {"text": "Translate this"}
    nodes = [e.data for e in events if isinstance(e, ev.NodeStartedEvent)]
    assert [(n.node_type, n.index, n.predecessor_node_id) for n in nodes] == [
        ("start", 1, None),
        ("end", 1, None),
    ]
    started = events[0].data.inputs
    assert (started["query"], started["sys.user_id"]) == ("Translate this", USER)
    assert started["sys.workflow_run_id"] == stream.workflow_run_id
    detail = client.workflow.get_run(workflow_run_id=stream.workflow_run_id)
    assert (detail.status, json.loads(detail.inputs)["query"], detail.total_steps) == (
        "succeeded",
        "Translate this",
        2,
    )
    blocking = client.workflow.run(inputs={"query": "Again"}, user=USER)
    assert (blocking.data.status, blocking.data.outputs) == ("succeeded", {"text": "Again"})
    logs = client.workflow.list_logs()
    assert [log.workflow_run.id for log in logs.data] == [
        blocking.workflow_run_id,
        stream.workflow_run_id,
    ]
    assert logs.data[0].created_by_end_user.session_id == USER and logs.total == 2
    assert client.workflow.list_logs(status="stopped").data == []
    # Re-attaching to a finished run gives its closing event only.
    replay = list(client.workflow.stream_events(workflow_run_id=stream.workflow_run_id, user=USER))
    assert kinds(replay) == ["WorkflowFinished"] and replay[0].data.status == "succeeded"
    with pytest.raises(NotFoundError):
        client.workflow.stream_events(workflow_run_id=stream.workflow_run_id, user="other")
    with pytest.raises(NotFoundError):
        client.workflow.run_by_id(
            workflow_id="00000000-0000-4000-8000-00000000beef", inputs={}, user=USER
        )
    by_id = client.workflow.run_by_id(workflow_id=detail.workflow_id, inputs={"q": "x"}, user=USER)
    assert by_id.data.outputs == {"text": "x"}


def test_workflow_outputs_from_the_definition(sleeps: list[float]) -> None:
    app = AppDefinition(mode="workflow", outputs=lambda inputs: {"sum": inputs["a"] + inputs["b"]})
    with Client(api_key="app-x", base_url=BASE, transport=make(app)) as client:
        assert client.workflow.run(inputs={"a": 2, "b": 3}, user=USER).data.outputs == {"sum": 5}


def test_workflow_stop_marks_the_run_stopped(client: Client) -> None:
    stream = client.workflow.run(inputs={"query": "a b c d"}, user=USER, stream=True)
    first = [next(stream) for _ in range(5)]
    assert kinds(first)[-1] == "TextChunk"
    client.workflow.stop(task_id=stream.task_id, user=USER)
    rest = list(stream)
    # The stream closes as Dify's does (failed, "Aborted: User requested stop"); the client
    # asked for the stop, so it reports the run as get_run does: stopped.
    assert kinds(rest) == ["WorkflowFinished"]
    assert (rest[0].data.status, rest[0].data.error) == ("stopped", "Aborted: User requested stop")
    detail = client.workflow.get_run(workflow_run_id=stream.workflow_run_id)
    assert (detail.status, detail.outputs) == ("stopped", {})
    assert [
        log.workflow_run.status for log in client.workflow.list_logs(status="stopped").data
    ] == ["stopped"]


def test_cut_stream_then_resume(emulator: Emulator, client: Client) -> None:
    emulator.cut_stream_after(2, operation="workflow.run")
    stream = client.workflow.run(inputs={"query": "one two three four"}, user=USER, stream=True)
    received = []
    with pytest.raises(StreamInterruptedError) as caught:
        for event in stream:
            received.append(event)
    assert len(received) == 2 and caught.value.partial.answer == "one "
    assert client.workflow.get_run(workflow_run_id=stream.workflow_run_id).status == "running"
    resumed = stream.resume()
    rest = list(resumed)
    assert kinds(rest) == ["TextChunk"] * 3 + [
        "NodeStarted",
        "NodeFinished",
        "NodeStarted",
        "NodeFinished",
        "WorkflowFinished",
    ]
    assert resumed.answer == "one two three four"
    assert client.workflow.get_run(workflow_run_id=stream.workflow_run_id).status == "succeeded"


def test_events_with_state_snapshot_replay_delivered_nodes(
    emulator: Emulator, client: Client
) -> None:
    emulator.cut_stream_after(3)
    stream = client.workflow.run(inputs={"query": "x"}, user=USER, stream=True)
    with pytest.raises(StreamInterruptedError):
        list(stream)
    replay = client.workflow.stream_events(
        workflow_run_id=stream.workflow_run_id, user=USER, include_state_snapshot=True
    )
    # Delivered: workflow_started, the text, the start node's node_started.
    assert kinds(list(replay)) == [
        "WorkflowStarted",
        "NodeStarted",
        "NodeFinished",
        "NodeStarted",
        "NodeFinished",
        "WorkflowFinished",
    ]


# --- knowledge ---------------------------------------------------------------------------

PETS = "Cats purr when they are content.\nDogs bark at the mail carrier.\nParrots can mimic speech."


def test_indexing_moves_on_with_time_polled_or_not(sleeps: list[float]) -> None:
    clock = [float(NOW)]
    emulator = Emulator(clock=lambda: clock[0], indexing_seconds=60)
    with Client(api_key="dataset-x", base_url=BASE, transport=emulator) as kb:
        k = kb.knowledge
        ds = k.create_dataset(name="Clock", indexing_technique="economy")
        created = k.create_document_by_text(dataset_id=ds.id, name="pets", text=PETS)
        doc = created.document
        # Dify answers while it splits, with no counts yet.
        assert (doc.indexing_status, doc.display_status) == ("splitting", "indexing")
        assert (doc.tokens, doc.word_count) == (None, None)
        status = k.get_indexing_status(dataset_id=ds.id, batch=created.batch).data[0]
        assert (status.indexing_status, status.splitting_completed_at) == ("splitting", None)
        assert status.processing_started_at == NOW
        clock[0] += 30
        assert k.get_document(dataset_id=ds.id, document_id=doc.id).indexing_status == "indexing"
        assert k.retrieve(dataset_id=ds.id, query="bark").records == []
        clock[0] += 30  # nobody polls the batch: the worker finishes anyway
        assert [
            r.segment.document.name for r in k.retrieve(dataset_id=ds.id, query="bark").records
        ] == ["pets"]
        listed = k.list_documents(dataset_id=ds.id).data[0]
        assert (listed.indexing_status, listed.tokens, listed.word_count) == ("completed", 0, 89)
        # An update is queued (waiting) in the same batch.
        again = k.update_document_by_text(
            dataset_id=ds.id, document_id=doc.id, name="pets", text="Hamsters hoard."
        )
        assert (again.batch, again.document.indexing_status) == (created.batch, "waiting")
        assert again.document.display_status == "queuing" and again.document.word_count == 89
        clock[0] += 60
        statuses = k.wait_for_indexing(dataset_id=ds.id, batch=created.batch, timeout=5)
        assert [s.indexing_status for s in statuses] == ["completed"] and sleeps == []


def test_indexing_in_real_time_ends_a_wait(sleeps: list[float]) -> None:
    # A frozen clock does not hold indexing up: it takes indexing_seconds of real time.
    with Client(api_key="dataset-x", base_url=BASE, transport=make(indexing_seconds=0.2)) as kb:
        ds = kb.knowledge.create_dataset(name="Real time")
        doc = kb.knowledge.create_document_by_text(dataset_id=ds.id, name="d", text="ready")
        statuses = kb.knowledge.wait_for_indexing(
            dataset_id=ds.id, batch=doc.batch, poll_interval=0.01, timeout=10
        )
        assert [s.indexing_status for s in statuses] == ["completed"] and len(sleeps) >= 1


def test_documents_index_and_retrieve_ranks(kb: Client, sleeps: list[float]) -> None:
    k = kb.knowledge
    ds = k.create_dataset(name="Pets", indexing_technique="economy")
    lines = {"mode": "custom", "rules": {"segmentation": {"separator": "\\n"}}}
    created = k.create_document_by_text(
        dataset_id=ds.id, name="pets", text=PETS, process_rule=lines
    )
    k.wait_for_indexing(dataset_id=ds.id, batch=created.batch, poll_interval=0.01, timeout=10)
    segments = k.list_segments(dataset_id=ds.id, document_id=created.document.id)
    assert [s.content for s in segments.data] == PETS.split("\n") and segments.total == 3
    assert [s.answer for s in segments.data] == [None] * 3

    filed = k.create_document_by_file(
        dataset_id=ds.id,
        file=("birds.txt", b"Owls hunt at night.||Sparrows chirp at dawn."),
        data={"process_rule": {"mode": "custom", "rules": {"segmentation": {"separator": "||"}}}},
    )
    statuses = kb.knowledge.wait_for_indexing(
        dataset_id=ds.id, batch=filed.batch, poll_interval=0.01, timeout=10
    )
    assert [s.indexing_status for s in statuses] == ["completed"]
    assert statuses[0].total_segments == 2

    found = k.retrieve(dataset_id=ds.id, query="Which animal will bark at the mail?")
    top = found.records[0]
    assert top.segment.content == "Dogs bark at the mail carrier."
    assert top.segment.document.name == "pets" and 0 < top.score < 1
    assert len(found.records) == 2  # the dataset's default top_k
    assert found.records[0].score > found.records[1].score
    owls = k.retrieve(
        dataset_id=ds.id,
        query="owls at night",
        retrieval_model=keyword_search(5, score_threshold_enabled=True, score_threshold=0.5),
    )
    # Dify's keyword index ranks by keyword hits, scores nothing and applies no threshold.
    assert owls.records[0].segment.content == "Owls hunt at night."
    assert [r.score for r in owls.records] == [0.0] * len(owls.records) and len(owls.records) > 1
    assert k.retrieve(dataset_id=ds.id, query="zebra").records == []
    assert k.get_dataset(dataset_id=ds.id).document_count == 2
    assert (
        k.get_segment(
            dataset_id=ds.id, document_id=created.document.id, segment_id=top.segment.id
        ).data.hit_count
        == 2  # found for "bark", then for "at"
    )


def test_max_tokens_split_and_downloads(emulator: Emulator, kb: Client) -> None:
    k = kb.knowledge
    ds = k.create_dataset(name="Split")
    doc = k.create_document_by_text(
        dataset_id=ds.id,
        name="words",
        text="a b c d e f g",
        process_rule={
            "mode": "custom",
            "rules": {"segmentation": {"separator": "\\n", "max_tokens": 3}},
        },
    )
    segments = k.list_segments(dataset_id=ds.id, document_id=doc.document.id).data
    assert [s.content for s in segments] == ["a b c", "d e f", "g"]
    detail = k.get_document(dataset_id=ds.id, document_id=doc.document.id)
    assert detail.segment_count == 3 and detail.document_process_rule["mode"] == "custom"
    url = k.download_document(dataset_id=ds.id, document_id=doc.document.id).url
    assert httpx.Client(transport=emulator).get(url).content == b"a b c d e f g"
    archive = zipfile.ZipFile(
        io.BytesIO(k.download_documents_zip(dataset_id=ds.id, document_ids=[doc.document.id]))
    )
    assert archive.read("words.txt") == b"a b c d e f g"
    # New text is split and indexed again.
    again = k.update_document_by_text(
        dataset_id=ds.id, document_id=doc.document.id, name="words", text="x y"
    )
    assert again.document.indexing_status == "waiting" and again.batch == doc.batch
    assert [
        s.content for s in k.list_segments(dataset_id=ds.id, document_id=doc.document.id).data
    ] == ["x y"]
    k.delete_document(dataset_id=ds.id, document_id=doc.document.id)
    with pytest.raises(NotFoundError):
        k.get_document(dataset_id=ds.id, document_id=doc.document.id)


def test_segments_and_child_chunks(kb: Client) -> None:
    k = kb.knowledge
    ds = k.create_dataset(name="Tree")
    doc = k.create_document_by_text(
        dataset_id=ds.id,
        name="tree",
        text="Roots hold. Trunks stand.\n\nLeaves fall. Seeds grow.",
        process_rule={
            "mode": "hierarchical",
            "rules": {
                "segmentation": {"separator": "\n\n"},
                "parent_mode": "paragraph",
                "subchunk_segmentation": {"separator": ". "},
            },
        },
    )
    assert doc.document.doc_form == "hierarchical_model"
    ids = {"dataset_id": ds.id, "document_id": doc.document.id}
    parents = k.list_segments(**ids).data
    assert [[c.content for c in s.child_chunks] for s in parents] == [
        ["Roots hold", "Trunks stand."],
        ["Leaves fall", "Seeds grow."],
    ]
    created = k.create_segments(
        **ids, segments=[{"content": "Bark protects.", "keywords": ["bark"]}]
    )
    new = created.data[0]
    assert (new.position, new.keywords, new.status) == (3, ["bark"], "completed")
    updated = k.update_segment(
        **ids, segment_id=new.id, segment={"content": "Bark shields.", "enabled": False}
    )
    assert (updated.data.content, updated.data.enabled) == ("Bark shields.", False)
    chunk = k.create_child_chunk(**ids, segment_id=parents[0].id, content="Soil feeds.").data
    assert (chunk.type, chunk.position) == ("customized", 3)
    listed = k.list_child_chunks(**ids, segment_id=parents[0].id, limit=2)
    assert (listed.total, listed.total_pages, len(listed.data)) == (3, 2, 2)
    k.update_child_chunk(**ids, segment_id=parents[0].id, child_chunk_id=chunk.id, content="Soil.")
    k.delete_child_chunk(**ids, segment_id=parents[0].id, child_chunk_id=chunk.id)
    assert k.list_child_chunks(**ids, segment_id=parents[0].id).total == 2
    k.delete_segment(**ids, segment_id=new.id)
    assert [s.position for s in k.list_segments(**ids).data] == [1, 2]
    with pytest.raises(NotFoundError) as missing:
        k.get_segment(**ids, segment_id=new.id)
    assert missing.value.message == "Segment not found."


def test_tags_and_metadata(kb: Client) -> None:
    k = kb.knowledge
    a = k.create_dataset(name="A")
    b = k.create_dataset(name="B")
    tag = k.create_tag(name="pets")
    assert (tag.type, tag.binding_count) == ("knowledge", "0")
    k.bind_tags(tag_ids=[tag.id], target_id=a.id)
    assert [(t.name, t.binding_count) for t in k.list_tags()] == [("pets", "1")]
    assert [t.name for t in k.list_dataset_tags(dataset_id=a.id).data] == ["pets"]
    assert [d.name for d in k.list_datasets(tag_ids=[tag.id]).data] == ["A"]
    assert [d.name for d in k.list_datasets().data] == ["B", "A"]
    assert k.get_dataset(dataset_id=a.id).tags[0].name == "pets"
    k.update_tag(tag_id=tag.id, name="animals")
    k.unbind_tags(tag_ids=[tag.id], target_id=a.id)
    assert k.list_dataset_tags(dataset_id=a.id).total == 0
    k.delete_tag(tag_id=tag.id)
    assert k.list_tags() == []

    field = k.create_metadata_field(dataset_id=b.id, type="string", name="author")
    doc1 = k.create_document_by_text(dataset_id=b.id, name="one", text="shared words here")
    doc2 = k.create_document_by_text(dataset_id=b.id, name="two", text="shared words there")
    for doc in (doc1, doc2):
        kb.knowledge.wait_for_indexing(dataset_id=b.id, batch=doc.batch, poll_interval=0.01)
    k.update_document_metadata(
        dataset_id=b.id,
        operation_data=[
            {
                "document_id": doc2.document.id,
                "metadata_list": [{"id": field.id, "name": "author", "value": "Ann"}],
            }
        ],
    )
    listed = k.list_metadata_fields(dataset_id=b.id)
    assert [(f.name, f.count) for f in listed.doc_metadata] == [("author", 1)]
    assert (
        k.get_document(dataset_id=b.id, document_id=doc2.document.id).doc_metadata[0].value == "Ann"
    )
    filtered = k.retrieve(
        dataset_id=b.id,
        query="shared words",
        retrieval_model=keyword_search(5, metadata_filtering_conditions=where("author", "Ann")),
    )
    assert [r.segment.document.name for r in filtered.records] == ["two"]
    assert filtered.records[0].segment.document.doc_metadata == {"author": "Ann"}
    k.update_metadata_field(dataset_id=b.id, metadata_id=field.id, name="writer")
    assert (
        k.get_document(dataset_id=b.id, document_id=doc2.document.id).doc_metadata[0].name
        == "writer"
    )
    k.update_built_in_metadata_fields(dataset_id=b.id, action="enable")
    assert k.list_metadata_fields(dataset_id=b.id).built_in_field_enabled is True
    assert "document_name" in [
        f.name for f in k.list_built_in_metadata_fields(dataset_id=b.id).fields
    ]
    k.delete_metadata_field(dataset_id=b.id, metadata_id=field.id)
    built_in = k.get_document(dataset_id=b.id, document_id=doc2.document.id).doc_metadata
    assert [(m.id, m.name, m.value) for m in built_in] == [
        ("built-in", "document_name", "two"),
        ("built-in", "uploader", "admin"),
        ("built-in", "upload_date", f"{NOW}.0"),
        ("built-in", "last_update_date", f"{NOW}.0"),
        ("built-in", "source", "file_upload"),
    ]
    found = k.retrieve(
        dataset_id=b.id,
        query="shared words there",
        retrieval_model=keyword_search(
            1, metadata_filtering_conditions=where("document_name", "two")
        ),
    )
    assert found.records[0].segment.document.doc_metadata == {
        "document_name": "two",
        "uploader": "admin",
        "upload_date": float(NOW),
        "last_update_date": float(NOW),
        "source": "file_upload",
    }
    k.update_built_in_metadata_fields(dataset_id=b.id, action="disable")
    assert k.get_document(dataset_id=b.id, document_id=doc2.document.id).doc_metadata is None
    k.update_document_status(dataset_id=b.id, action="disable", document_ids=[doc1.document.id])
    assert (
        k.get_document(dataset_id=b.id, document_id=doc1.document.id).display_status == "disabled"
    )
    k.delete_dataset(dataset_id=b.id)
    with pytest.raises(NotFoundError) as missing:
        k.get_dataset(dataset_id=b.id)
    assert (missing.value.code, missing.value.message) == ("not_found", "Dataset not found.")


def test_knowledge_base_nullables_as_dify_writes_them(emulator: Emulator) -> None:
    raw = httpx.Client(
        transport=emulator, base_url=BASE, headers={"Authorization": "Bearer dataset-x"}
    )
    made = raw.post("/datasets", json={"name": "Plain", "indexing_technique": "economy"}).json()
    # Economy: no embedding model; form and source unknown until the first document.
    assert [made[k] for k in ("embedding_model", "embedding_model_provider", "doc_form")] == [
        None
    ] * 3
    assert (made["data_source_type"], made["embedding_available"]) == (None, None)
    assert made["icon_info"] == dict.fromkeys(("icon_type", "icon", "icon_background", "icon_url"))
    assert set(made["external_knowledge_info"].values()) == {None}
    assert made["retrieval_model_dict"]["score_threshold"] is None
    assert "partial_member_list" not in made
    untyped = raw.post("/datasets", json={"name": "Untyped"}).json()
    assert untyped["indexing_technique"] is None
    got = raw.get(f"/datasets/{made['id']}").json()
    assert got["embedding_available"] is True
    assert got["retrieval_model_dict"]["search_method"] == "keyword_search"
    patched = raw.patch(f"/datasets/{made['id']}", json={"description": "d"}).json()
    assert (patched["embedding_available"], patched["partial_member_list"]) == (None, [])
    doc = {"name": "n", "text": "some text", "indexing_technique": "economy"}
    raw.post(f"/datasets/{made['id']}/document/create-by-text", json=doc).raise_for_status()
    got = raw.get(f"/datasets/{made['id']}").json()
    assert (got["doc_form"], got["data_source_type"]) == ("text_model", "upload_file")


def test_a_tag_id_that_is_no_uuid_is_dify_s_500(emulator: Emulator) -> None:
    raw = httpx.Client(
        transport=emulator, base_url=BASE, headers={"Authorization": "Bearer dataset-x"}
    )
    # Dify hands query ids to the database unchecked; body ids are checked by its models.
    bad = raw.get("/datasets", params={"tag_ids": ["not-a-uuid"]})
    assert (bad.status_code, bad.json()) == (
        500,
        {"code": "unknown", "message": "Internal Server Error", "status": 500},
    )
    fine = raw.get("/datasets", params={"tag_ids": ["00000000-0000-4000-8000-000000000000"]})
    assert (fine.status_code, fine.json()["data"]) == (200, [])
    body = {"tag_ids": ["not-a-uuid"], "target_id": "00000000-0000-4000-8000-000000000000"}
    assert raw.post("/datasets/tags/binding", json=body).status_code == 400


def test_automatic_chunking_merges_up_to_max_tokens(kb: Client) -> None:
    k = kb.knowledge
    ds = k.create_dataset(name="Auto", indexing_technique="economy")
    # The recorded 3-paragraph file: Dify made 1 segment of it.
    text = (
        "File upload document.\n\nSecond paragraph about tides and the moon.\n\n"
        "Third paragraph on keyword search.\n"
    )
    doc = k.create_document_by_file(
        dataset_id=ds.id,
        file=("rec-upload.txt", text.encode()),
        data={"process_rule": {"mode": "automatic"}},
    )
    k.wait_for_indexing(dataset_id=ds.id, batch=doc.batch, poll_interval=0.01, timeout=10)
    segments = k.list_segments(dataset_id=ds.id, document_id=doc.document.id).data
    assert [s.content for s in segments] == [text.strip()]
    assert (segments[0].tokens, segments[0].answer, segments[0].updated_by) == (0, None, None)
    detail = k.get_document(dataset_id=ds.id, document_id=doc.document.id)
    assert detail.dataset_process_rule["rules"]["segmentation"] == {
        "delimiter": "\n",
        "max_tokens": 500,
        "chunk_overlap": 50,
    }
    assert (detail.doc_metadata, detail.segment_count, detail.average_segment_length) == (
        None,
        1,
        101,
    )
    # Past max_tokens, paragraphs are cut at sentences, then words, overlapping by 50.
    long = " ".join(f"w{i}" for i in range(520))
    doc = k.create_document_by_text(dataset_id=ds.id, name="long", text=long)
    k.wait_for_indexing(dataset_id=ds.id, batch=doc.batch, poll_interval=0.01, timeout=10)
    parts = [
        s.content.split()
        for s in k.list_segments(dataset_id=ds.id, document_id=doc.document.id).data
    ]
    assert [len(p) for p in parts] == [500, 70] and parts[1][0] == "w450"


def test_empty_file_fails_indexing(kb: Client) -> None:
    from dify_oapi import WaiterFailedError as IndexingFailedError

    ds = kb.knowledge.create_dataset(name="Empty")
    doc = kb.knowledge.create_document_by_file(dataset_id=ds.id, file=("scan.pdf", b"%PDF-1.7 ..."))
    with pytest.raises(IndexingFailedError, match="no text"):
        kb.knowledge.wait_for_indexing(dataset_id=ds.id, batch=doc.batch, poll_interval=0.01)


def test_indexing_seconds_zero_indexes_at_once(sleeps: list[float]) -> None:
    with pytest.warns(DeprecationWarning, match="indexing_polls"):
        deprecated = make(indexing_polls=0)  # still means at once
    for emulator in (make(indexing_seconds=0), deprecated):
        with Client(api_key="dataset-x", base_url=BASE, transport=emulator) as kb:
            ds = kb.knowledge.create_dataset(name="Now")
            doc = kb.knowledge.create_document_by_text(dataset_id=ds.id, name="d", text="ready")
            assert doc.document.indexing_status == "completed"
            assert kb.knowledge.retrieve(dataset_id=ds.id, query="ready").records


# --- errors ------------------------------------------------------------------------------


def test_keys_are_checked(emulator: Emulator, client: Client) -> None:
    with pytest.raises(AuthenticationError) as wrong_kind:
        client.knowledge.list_datasets()  # an app key on a knowledge route
    assert (wrong_kind.value.code, wrong_kind.value.message) == (
        "unauthorized",
        "Access token is invalid",
    )
    with pytest.raises(AuthenticationError):
        client.dify.get_info(api_key="dataset-x")
    raw = httpx.Client(transport=emulator, base_url=BASE)
    answer = raw.get("/info")
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "unauthorized",
        "message": "Authorization header must be provided and start with 'Bearer'",
        "status": 401,
    }
    limited = make(api_keys=["app-good", "dataset-good"])
    with Client(api_key="app-bad", base_url=BASE, transport=limited) as c:
        with pytest.raises(AuthenticationError):
            c.dify.get_info()
        assert c.dify.get_info(api_key="app-good").name == "Emulated app"
        assert c.knowledge.list_tags(api_key="dataset-good") == []


def test_invalid_params_and_unknown_routes(emulator: Emulator) -> None:
    raw = httpx.Client(transport=emulator, base_url=BASE, headers={"Authorization": "Bearer app-x"})
    bad = raw.post("/chat-messages", json={"query": 1, "user": "u"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_param"
    assert "$.query" in bad.json()["message"]
    missing = raw.post("/chat-messages", json={"user": "u"})
    assert missing.status_code == 400 and "query" in missing.json()["message"]
    assert raw.post("/chat-messages", content=b"{not json").json()["code"] == "invalid_param"
    assert (
        raw.post("/files/upload", files={"user": (None, "u")}).json()["code"] == "no_file_uploaded"
    )
    # Dify (Werkzeug) answers an unknown route with its HTML page, no JSON code.
    missing = raw.get("/no/such/route")
    assert (missing.status_code, missing.headers["content-type"]) == (
        404,
        "text/html; charset=utf-8",
    )
    assert missing.text.startswith("<!doctype html>") and "<h1>Not Found</h1>" in missing.text
    assert raw.delete("/chat-messages").status_code == 405
    # Query values are text on the wire and validate as their field's type.
    assert raw.get("/apps/annotations", params={"page": "x"}).status_code == 400
    assert raw.get("/apps/annotations", params={"page": "1", "limit": "5"}).json()["limit"] == 5
    # Unknown fields are ignored, as Dify does.
    body = {"query": "q", "user": "u", "inputs": {}, "extra": 1}
    assert raw.post("/chat-messages", json=body).status_code == 200
    # The SDK always sends inputs; Dify's payload model requires the field.
    no_inputs = raw.post("/chat-messages", json={"query": "q", "user": "u"})
    assert no_inputs.status_code == 400 and no_inputs.json()["code"] == "invalid_param"
    assert "inputs\n  Field required [type=missing" in no_inputs.json()["message"]


# --- hooks -------------------------------------------------------------------------------


def test_fail_next_injects_errors(emulator: Emulator, client: Client, sleeps: list[float]) -> None:
    emulator.fail_next("dify.get_info", status=503, times=2)
    assert client.dify.get_info().name == "Emulated app"  # a safe GET is retried twice
    assert len(sleeps) == 2
    emulator.fail_next("chat.send", status=503)
    with pytest.raises(InternalServerError) as caught:
        client.chat.send(query="x", user=USER)  # a generation is not retried on 5xx
    # Dify's body for what it does not handle, whatever the 5xx status.
    assert (caught.value.status_code, caught.value.code) == (503, "unknown")
    assert caught.value.message == "Internal Server Error"
    emulator.fail_next("chat.send", status=429, code="rate_limit_error", message="Quota exceeded")
    with pytest.raises(RateLimitError) as quota:
        client.chat.send(query="x", user=USER)
    assert (quota.value.code, quota.value.message) == ("rate_limit_error", "Quota exceeded")
    emulator.fail_next(status=429, headers={"Retry-After": "0"})  # any operation
    sleeps.clear()
    assert client.chatflow.send(query="retried", user=USER).answer == "retried"
    assert len(sleeps) == 1  # retried once (Retry-After: 0 falls back to the backoff)
    emulator.fail_next("knowledge.list_tags", status=404)
    emulator.clear_faults()
    assert client.knowledge.list_tags(api_key="dataset-x") == []
    with pytest.raises(ValueError, match="unknown operation"):
        emulator.fail_next("chat.nope")


def test_latency_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(core.time, "sleep", waits.append)
    emulator = make(latency=0.25, stream_delay=0.01)
    with Client(api_key="app-x", base_url=BASE, transport=emulator) as client:
        client.dify.get_meta()
        list(client.chat.send(query="a b", user=USER, stream=True))
    # Before each answer, then before each of the stream's three events and its end.
    assert waits == [0.25, 0.25, 0.01, 0.01, 0.01, 0.01]


def test_ids_are_seeded_and_deterministic(sleeps: list[float]) -> None:
    def run(seed: int) -> tuple[str, str]:
        with Client(api_key="app-x", base_url=BASE, transport=make(seed=seed)) as client:
            answer = client.chat.send(query="x", user=USER)
            return answer.conversation_id, answer.message_id

    assert run(7) == run(7)
    assert run(7) != run(8)


# --- async -------------------------------------------------------------------------------


async def test_async_client_every_service(sleeps: list[float]) -> None:
    flow = AppDefinition(mode="advanced-chat")
    emulator = make(api_keys={"app-x": None, "app-flow": flow, "dataset-x": None})
    async with AsyncClient(api_key="app-x", base_url=BASE, transport=emulator) as client:
        answer = await client.chat.send(query="Async hi", user=USER)
        stream = await client.chat.send(
            query="More", user=USER, conversation_id=answer.conversation_id, stream=True
        )
        assert kinds([e async for e in stream]) == ["Message", "MessageEnd"]
        convs = await client.chat.list_conversations(user=USER)
        assert [c.id for c in convs.data] == [answer.conversation_id]
        flowed = await client.chatflow.send(
            query="Flow", user=USER, stream=True, api_key="app-flow"
        )
        assert kinds([e async for e in flowed])[-2:] == ["MessageEnd", "WorkflowFinished"]
        completion = await client.completion.send(inputs={"query": "Done"}, user=USER, collect=True)
        assert completion.answer == "Done"
        assert (await client.dify.get_info()).mode == "chat"

        emulator.cut_stream_after(2)
        run = await client.workflow.run(inputs={"query": "a b"}, user=USER, stream=True)
        with pytest.raises(StreamInterruptedError):
            async for _ in run:
                pass
        resumed = await run.resume()
        assert [e async for e in resumed][-1].data.status == "succeeded"
        assert resumed.answer == "a b"

        k = client.with_options(api_key="dataset-x").knowledge
        ds = await k.create_dataset(name="Async")
        doc = await k.create_document_by_text(dataset_id=ds.id, name="n", text="alpha\nbeta")
        kb = client.with_options(api_key="dataset-x")
        await kb.knowledge.wait_for_indexing(dataset_id=ds.id, batch=doc.batch, poll_interval=0.01)
        found = await k.retrieve(dataset_id=ds.id, query="beta")
        assert [r.segment.content for r in found.records] == ["alpha\nbeta"]  # merged, as Dify


# --- over a socket ---------------------------------------------------------------------


def test_served_over_a_socket(emulator: Emulator, sleeps: list[float]) -> None:
    with emulator.serve() as server, Client(api_key="app-x", base_url=server.url) as client:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        with client.chat.send(query="over the wire", user=USER, stream=True) as stream:
            assert kinds(list(stream)) == ["Message", "Message", "Message", "MessageEnd"]
        uploaded = client.dify.upload_file(file=("f.bin", b"\x00\x01bytes"), user=USER)
        attached = {"type": "document", "transfer_method": "local_file"}
        client.chat.send(query="f", user=USER, files=[attached | {"upload_file_id": uploaded.id}])
        assert client.dify.preview_file(file_id=uploaded.id) == b"\x00\x01bytes"
        emulator.cut_stream_after(3)
        stream = client.workflow.run(inputs={"query": "cut me"}, user=USER, stream=True)
        with pytest.raises(StreamInterruptedError):
            list(stream)
        assert list(stream.resume())[-1].data.status == "succeeded"
        with pytest.raises(AuthenticationError):
            client.dify.get_info(api_key="nope")
        # A stop sent on another connection ends the stream being served.
        emulator.stream_delay = 0.3
        words = " ".join(f"w{i}" for i in range(10))
        with client.chat.send(query=words, user=USER, stream=True) as stream:
            first = next(stream)
            client.chat.stop(task_id=stream.task_id, user=USER)
            rest = list(stream)
        emulator.stream_delay = 0.0
        assert isinstance(first, ev.MessageEvent) and kinds(rest)[-1] == "MessageEnd"
        assert len(rest) < 10  # stopped: not every word arrived
        (stored,) = client.chat.list_messages(conversation_id=stream.conversation_id).data
        assert stored.answer == stream.answer != words
        # A plain HTTP client (what curl or another language would send).
        plain = httpx.post(
            f"{server.url}/chat-messages",
            headers={"Authorization": "Bearer app-x"},
            json={"query": "plain", "user": USER, "inputs": {}, "response_mode": "blocking"},
        )
        assert plain.status_code == 200 and plain.json()["answer"] == "plain"


def test_module_command_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "dify_oapi.emulator", "--port", "0", "--mode", "completion"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=30)
        assert lines and lines[0].startswith("Dify emulator serving http://127.0.0.1:")
        url = lines[0].split()[-1]
        info = httpx.get(f"{url}/info", headers={"Authorization": "Bearer app-x"}, timeout=10)
        assert info.json()["mode"] == "completion"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
