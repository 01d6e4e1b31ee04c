"""The emulator's answers validate against the official spec's response schemas.

A tour calls (nearly) every operation through the SDK; a recording transport keeps every
JSON answer, and each is validated with the conformance suite's validator against the
schema the spec declares for its operation and status.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest

from dify_oapi import APIStatusError, Client, NotFoundError
from dify_oapi._services import ENDPOINTS
from dify_oapi.emulator import AppDefinition, Emulator
from dify_oapi.emulator._routes import Router

from .test_conformance import (
    EXPECTED_OPERATIONS,
    _api,
    _arguments,
    _operation_ids,
    _operations,
    _resolve,
    _row,
    _validate,
)

BASE = "http://emulator.test/v1"
# Error answers the spec shows only by example: Dify's error body.
ERROR = {
    "type": "object",
    "required": ["code", "message", "status"],
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "status": {"type": "integer"},
    },
}
SITE = {
    "chat_color_theme": "#1C64F2",
    "icon": "🤖",
    "icon_background": "#FFEAD5",
    "description": "The tour's app.",
    "copyright": "dify-oapi",
    "privacy_policy": "https://example.com/privacy",
}
VARIABLES = [
    {"name": "topic", "value_type": "string", "value": "cats", "description": "What we talk about"},
    {"name": "count", "value_type": "number", "value": 1, "description": "A counter"},
]


class Recorder(httpx.BaseTransport):
    """Passes requests to the emulator; keeps (method, raw path, status, type, JSON body)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.answers: list[tuple[str, str, int, str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.emulator.handle_request(request)
        path = request.url.raw_path.decode().partition("?")[0]
        kind = response.headers["content-type"].partition(";")[0]
        body = None
        if kind == "application/json" and response.status_code != 204:
            body = json.loads(response.read())
        self.answers.append((request.method, path, response.status_code, kind, body))
        return response


def tour(client: Client, kb: Client, flow: Client) -> None:
    """Call every operation at least once, leaving records in every list."""
    user = "tour-user"
    # Apps: messages, conversations, variables, feedback, files, annotations.
    first = client.chat.send(query="Hello there", user=user)
    with client.chat.send(
        query="Once more", user=user, conversation_id=first.conversation_id, stream=True
    ) as stream:
        list(stream)
    client.chat.stop(task_id=stream.task_id, user=user)
    client.chat.get_suggested(message_id=first.message_id, user=user)
    client.chat.list_conversations(user=user)
    client.chat.list_messages(conversation_id=first.conversation_id, user=user)
    variables = client.chat.list_conversation_variables(
        conversation_id=first.conversation_id, user=user
    )
    client.chat.update_conversation_variable(
        conversation_id=first.conversation_id, variable_id=variables.data[0].id, value="dogs"
    )
    client.chat.rename_conversation(conversation_id=first.conversation_id, name="Renamed")
    client.chat.submit_feedback(message_id=first.message_id, user=user, rating="like")
    client.dify.list_feedbacks()
    uploaded = client.dify.upload_file(file=("notes.txt", b"some notes"), user=user)
    attached = {"type": "document", "transfer_method": "local_file", "upload_file_id": uploaded.id}
    client.chat.send(query="See notes", user=user, files=[attached])  # Dify previews only then
    client.dify.preview_file(file_id=uploaded.id)
    client.dify.audio_to_text(file=("speech.mp3", b"spoken words"), user=user)
    client.dify.text_to_audio(text="Say this", user=user)
    client.dify.get_info()
    client.dify.get_parameters()
    client.dify.get_meta()
    client.dify.get_site()
    client.dify.get_end_user(end_user_id=uploaded.created_by)
    note = client.chat.create_annotation(question="Q?", answer="A.")
    client.chat.list_annotations()
    client.chat.update_annotation(annotation_id=note.id, question="Q2?", answer="A2.")
    job = client.chat.update_annotation_reply(
        action="enable",
        score_threshold=0.9,
        embedding_provider_name="openai",
        embedding_model_name="text-embedding-3-small",
    )
    client.chat.get_annotation_reply_status(action="enable", job_id=job.job_id)
    client.chat.delete_annotation(annotation_id=note.id)
    client.completion.send(inputs={"query": "Write a line"}, user=user)
    with client.completion.send(inputs={"query": "Stream"}, user=user, stream=True) as stream:
        list(stream)
    client.completion.stop(task_id=stream.task_id, user=user)
    # Chatflow and workflows.
    with flow.chatflow.send(query="Flow", user=user, stream=True) as stream:
        list(stream)
    run = client.workflow.run(inputs={"query": "Run"}, user=user)
    client.workflow.run_by_id(workflow_id=run.data.workflow_id, inputs={"x": "y"}, user=user)
    with client.workflow.run(inputs={"query": "Streamed"}, user=user, stream=True) as stream:
        list(stream)
    client.workflow.stop(task_id=stream.task_id, user=user)
    list(client.workflow.stream_events(workflow_run_id=run.workflow_run_id, user=user))
    client.workflow.get_run(workflow_run_id=run.workflow_run_id)
    client.workflow.list_logs()
    for form in (client.workflow.get_human_input_form, client.workflow.submit_human_input_form):
        with pytest.raises(NotFoundError):
            form(
                form_token="nope",
                **(
                    {"inputs": {}, "action": "a", "user": user} if "submit" in form.__name__ else {}
                ),
            )
    client.chat.delete_conversation(conversation_id=first.conversation_id, user=user)
    # Knowledge bases.
    k = kb.knowledge
    ds = k.create_dataset(name="Tour", description="A tour")
    k.list_datasets()
    k.get_dataset(dataset_id=ds.id)
    k.update_dataset(dataset_id=ds.id, description="Updated")
    doc = k.create_document_by_text(
        dataset_id=ds.id,
        name="Pets",
        text="Cats purr.\n\nDogs bark.",
        indexing_technique="economy",
        process_rule={
            "mode": "hierarchical",
            "rules": {
                "segmentation": {"separator": "\n\n", "max_tokens": 100},
                "parent_mode": "paragraph",
                "subchunk_segmentation": {"separator": ".", "max_tokens": 20},
            },
        },
    )
    filed = k.create_document_by_file(dataset_id=ds.id, file=("birds.txt", b"Birds sing songs."))
    kb.knowledge.wait_for_indexing(dataset_id=ds.id, batch=doc.batch, poll_interval=0.01)
    kb.knowledge.wait_for_indexing(dataset_id=ds.id, batch=filed.batch, poll_interval=0.01)
    k.list_documents(dataset_id=ds.id)
    k.get_document(dataset_id=ds.id, document_id=doc.document.id)
    k.update_document_by_text(
        dataset_id=ds.id, document_id=filed.document.id, name="B", text="Birds."
    )
    k.update_document_by_file(dataset_id=ds.id, document_id=filed.document.id, file=("b.txt", b"x"))
    k.update_document(dataset_id=ds.id, document_id=filed.document.id, file=("c.txt", b"Crows."))
    kb.knowledge.wait_for_indexing(dataset_id=ds.id, batch=doc.batch, poll_interval=0.01)
    k.download_document(dataset_id=ds.id, document_id=doc.document.id)
    archive = k.download_documents_zip(dataset_id=ds.id, document_ids=[doc.document.id])
    assert zipfile.ZipFile(io.BytesIO(archive)).namelist() == ["Pets.txt"]
    segments = k.list_segments(dataset_id=ds.id, document_id=doc.document.id)
    seg = segments.data[0]
    k.get_segment(dataset_id=ds.id, document_id=doc.document.id, segment_id=seg.id)
    new = k.create_segments(
        dataset_id=ds.id, document_id=doc.document.id, segments=[{"content": "Fish swim."}]
    )
    k.update_segment(
        dataset_id=ds.id,
        document_id=doc.document.id,
        segment_id=new.data[0].id,
        segment={"content": "Fish swim fast.", "regenerate_child_chunks": True},
    )
    chunk = k.create_child_chunk(
        dataset_id=ds.id, document_id=doc.document.id, segment_id=seg.id, content="Purring."
    )
    k.list_child_chunks(dataset_id=ds.id, document_id=doc.document.id, segment_id=seg.id)
    ids = {"dataset_id": ds.id, "document_id": doc.document.id, "segment_id": seg.id}
    k.update_child_chunk(**ids, child_chunk_id=chunk.data.id, content="Purring loudly.")
    k.delete_child_chunk(**ids, child_chunk_id=chunk.data.id)
    k.delete_segment(dataset_id=ds.id, document_id=doc.document.id, segment_id=new.data[0].id)
    tag = k.create_tag(name="pets")
    k.list_tags()
    k.update_tag(tag_id=tag.id, name="animals")
    k.bind_tags(tag_ids=[tag.id], target_id=ds.id)
    k.list_dataset_tags(dataset_id=ds.id)
    field = k.create_metadata_field(dataset_id=ds.id, type="string", name="author")
    k.update_metadata_field(dataset_id=ds.id, metadata_id=field.id, name="writer")
    k.update_document_metadata(
        dataset_id=ds.id,
        operation_data=[
            {
                "document_id": doc.document.id,
                "metadata_list": [{"id": field.id, "name": "writer", "value": "Ann"}],
            }
        ],
    )
    k.list_metadata_fields(dataset_id=ds.id)
    k.list_built_in_metadata_fields(dataset_id=ds.id)
    k.update_built_in_metadata_fields(dataset_id=ds.id, action="enable")
    k.update_document_status(dataset_id=ds.id, action="disable", document_ids=[filed.document.id])
    k.retrieve(dataset_id=ds.id, query="cats purr")
    k.get_dataset(dataset_id=ds.id)
    k.list_models(model_type="rerank")
    k.list_embedding_models()
    pipeline_file = k.upload_pipeline_file(file=("fish.txt", b"Fish swim."))
    k.list_datasource_plugins(dataset_id=ds.id)
    list(
        k.run_datasource_node(
            dataset_id=ds.id,
            node_id="datasource",
            inputs={},
            datasource_type="local_file",
            is_published=True,
        )
    )
    pipeline = {
        "dataset_id": ds.id,
        "inputs": {},
        "datasource_type": "local_file",
        "datasource_info_list": [{"reference": pipeline_file.id}],
        "start_node_id": "datasource",
        "is_published": True,
    }
    k.run_pipeline(**pipeline)
    list(k.run_pipeline(**pipeline, stream=True))
    k.unbind_tags(tag_ids=[tag.id], target_id=ds.id)
    k.delete_tag(tag_id=tag.id)
    k.delete_metadata_field(dataset_id=ds.id, metadata_id=field.id)
    k.delete_document(dataset_id=ds.id, document_id=filed.document.id)
    k.delete_dataset(dataset_id=ds.id)


@pytest.fixture
def recorded(sleeps: list[float]) -> tuple[Recorder, Router]:
    # The spec types the site's texts as strings; a fresh Dify app sends them null (FACTS 7),
    # so the tour's app fills them in, as a configured app would. It turns suggested questions
    # on (off in a fresh app) so that route answers 200.
    app = AppDefinition(variables=VARIABLES, site=SITE, suggested_questions_after_answer=True)
    flow = AppDefinition(mode="advanced-chat")
    keys = {"app-tour": app, "app-flow": flow, "dataset-tour": None}
    emulator = Emulator(app=app, api_keys=keys, clock=lambda: 1_700_000_000, indexing_seconds=0.05)
    recorder = Recorder(emulator)
    with Client(api_key="app-tour", base_url=BASE, transport=recorder) as client:
        kb, flow_client = (client.with_options(api_key=k) for k in ("dataset-tour", "app-flow"))
        tour(client, kb, flow_client)
    return recorder, emulator._router


def test_tour_reaches_every_route(recorded: tuple[Recorder, Router]) -> None:
    recorder, router = recorded
    reached = set()
    for method, path, *_ in recorder.answers:
        parts = path.removeprefix("/v1/").split("/")
        found = router.find(method, parts)
        assert not isinstance(found, int), f"{method} {path} answered {found}"
        reached.add((found[0].method, found[0].path))
    routes = {(r.method, r.path) for r in router.routes}
    assert routes == {(ep.method, ep.path) for eps in ENDPOINTS.values() for ep in eps}
    assert routes == reached


#: Knowledge-base answers: Dify 1.14.2 sends null where the spec declares a value (FACTS 5:
#: an economy base has no embedding model, form and source wait for a first document, the
#: technique is null until chosen, objects such as summary_index_setting hold only nulls,
#: embedding_available is null on a write; a new document has no counts yet, a document no
#: metadata, a segment no answer and no updater, a retrieved segment no sign_content). The
#: real server wins; the spec judges the rest. ``None``: any key of the answer.
_SEGMENT_NULLS = frozenset({"answer", "updated_by", "sign_content"})
_REAL_NULLS: dict[str, frozenset[str] | None] = dict.fromkeys(
    ("createDataset", "listDatasets", "getDatasetDetail", "updateDataset")
) | {
    "createDocumentFromText": frozenset({"tokens", "word_count"}),
    "createDocumentFromFile": frozenset({"tokens", "word_count"}),
    "getDocumentDetail": frozenset({"doc_metadata"}),
    "listSegments": _SEGMENT_NULLS,
    "getSegmentDetail": _SEGMENT_NULLS,
    "createSegments": _SEGMENT_NULLS,
    "updateSegment": _SEGMENT_NULLS,
    "retrieveSegments": _SEGMENT_NULLS,
}


def _without_real_nulls(oid: str, body: Any) -> Any:
    """``body`` without the nulls the real server sends where the spec declares a value."""
    if oid not in _REAL_NULLS:
        return body
    keys = _REAL_NULLS[oid]
    if isinstance(body, dict):
        return {
            k: _without_real_nulls(oid, v)
            for k, v in body.items()
            if v is not None or (keys is not None and k not in keys)
        }
    return [_without_real_nulls(oid, v) for v in body] if isinstance(body, list) else body


def test_answers_validate_against_the_spec(recorded: tuple[Recorder, Router]) -> None:
    recorder, router = recorded
    _api()  # skips without the spec
    operations = _operations()
    checked = set()
    failures: list[str] = []
    for method, path, status, kind, body in recorder.answers:
        found = router.find(method, path.removeprefix("/v1/").split("/"))
        assert not isinstance(found, int)
        route = found[0]
        oid = next((r.operation_id for r in route.rows if r.operation_id), None)
        if oid is None:  # rows the spec does not describe (get_document_file, ...)
            continue
        declared = operations[oid][2]["responses"]
        assert str(status) in declared, (
            f"{oid} answered {status}; the spec declares {sorted(declared)}"
        )
        content = _resolve(declared[str(status)]).get("content", {})
        checked.add(oid)
        if status == 204:
            assert not content, f"{oid}: the spec declares a body for 204"
            continue
        if kind != "application/json":
            # A preview answers the file's own type; the spec says application/octet-stream.
            assert kind in content or oid == "previewChatFile", f"{oid}: {kind} not in {content}"
            continue
        schema = content["application/json"].get("schema", ERROR if status >= 400 else None)
        assert schema is not None, f"{oid} {status}: the spec declares no schema"
        try:
            _validate(schema, _without_real_nulls(oid, body), f"{oid} {status} answer")
        except AssertionError as error:
            failures.append(str(error).partition("\n")[0])
    assert not failures, "\n".join(dict.fromkeys(failures))
    print(f"\nemulator answers of {len(checked)} operations checked against the spec")
    assert len(checked) == EXPECTED_OPERATIONS


@pytest.mark.parametrize("full", [False, True], ids=["spec-example", "every-field"])
@pytest.mark.parametrize("oid", _operation_ids())
def test_spec_examples_get_dify_answers(oid: str, full: bool, sleeps: list[float]) -> None:
    """The spec's request examples (and every field filled) get a 2xx or a Dify 4xx error,
    never a crash: unknown ids are 404s, everything else is validated."""
    ep = _row(oid)
    args = _arguments(oid, ep, full)
    key = "dataset-x" if ep.service == "knowledge" else "app-x"
    with Client(api_key=key, base_url=BASE, transport=Emulator(), max_retries=0) as client:
        for streaming in [False] * (not ep.stream_only) + [True] * (ep.stream is not None):
            try:
                result = client.call(ep.qualname, **args, **({"stream": True} if streaming else {}))
                if streaming:
                    assert type(list(result)[-1]).final
            except APIStatusError as error:
                assert 400 <= error.status_code < 500 and error.code, error
                _validate(ERROR, error.body, f"{oid} error")
