"""Field mapping and input checks: every bad input fails before any I/O."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dify_oapi import (
    Client,
    Endpoint,
    InvalidArgumentsError,
    RequestValidationError,
)
from dify_oapi._request import prepare
from dify_oapi.types import ChatRequest, FeedbackRequest, FileInput, Request, UnsetType

from .conftest import BASE, KEY
from .httpx_mock import HTTPXMock


class Recorder:
    """A transport that records requests and answers 200 ``{}``."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(200, json={"result": "success"})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def rclient(recorder: Recorder) -> Client:
    return Client(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(recorder))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("abc-123", "abc-123"),
        ("a/b", "a%2Fb"),
        ("../../datasets", "..%2F..%2Fdatasets"),
        ("x?user=admin", "x%3Fuser%3Dadmin"),
        ("x#frag", "x%23frag"),
        ("100%2F", "100%252F"),
        ("two words", "two%20words"),
        ("line\nbreak", "line%0Abreak"),
        ("ünïcødé", "%C3%BCn%C3%AFc%C3%B8d%C3%A9"),
        ("https://evil.example/x", "https%3A%2F%2Fevil.example%2Fx"),
    ],
)
def test_path_ids_are_one_encoded_segment(
    rclient: Client, recorder: Recorder, value: str, encoded: str
) -> None:
    rclient.chat.stop(task_id=value, user="u")
    url = recorder.requests[0].url
    assert url.host == "dify.test"
    assert url.raw_path.decode() == f"/v1/chat-messages/{encoded}/stop"
    assert url.query == b""


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_path_ids_that_would_move_the_path_are_refused(
    rclient: Client, recorder: Recorder, value: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        rclient.chat.stop(task_id=value, user="u")
    assert info.value.field == "$.task_id" and "chat.stop" in str(info.value)
    assert recorder.requests == []


def test_query_encoding_bools_lists_and_omitted_unset() -> None:
    class Q(Request):
        dataset_id: str
        flag: bool | UnsetType = msgspec.UNSET
        tag_ids: list[str] | UnsetType = msgspec.UNSET
        page: int | UnsetType = msgspec.UNSET

    ep = Endpoint("GET", "/datasets/{dataset_id}/things", Q, name="list_things", service="t")
    prepared = prepare(
        ep, None, {"dataset_id": "d", "flag": False, "tag_ids": ["a", "b"]}, stream=None
    )
    assert prepared.path == "/datasets/d/things"
    assert prepared.params == [("flag", "false"), ("tag_ids", "a"), ("tag_ids", "b")]
    assert prepared.content is None


def test_delete_with_json_body_and_query_override() -> None:
    class D(Request):
        conversation_id: str
        user: str
        trace: str | UnsetType = msgspec.UNSET

    ep = Endpoint(
        "DELETE",
        "/conversations/{conversation_id}",
        D,
        name="d",
        service="t",
        body=True,
        query=("trace",),
    )
    prepared = prepare(ep, None, {"conversation_id": "c", "user": "u", "trace": "1"}, stream=None)
    assert prepared.path == "/conversations/c"
    assert prepared.content == b'{"user":"u"}'
    assert prepared.params == [("trace", "1")]


class Rule(Request):
    mode: str


class Data(Request):
    indexing_technique: str
    process_rule: Rule


class ByFile(Request):
    dataset_id: str
    file: FileInput
    data: Data | UnsetType = msgspec.UNSET


def test_multipart_structured_form_field_is_json(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text("# hi")
    ep = Endpoint("POST", "/datasets/{dataset_id}/document/create-by-file", ByFile, name="c")
    prepared = prepare(
        ep,
        None,
        {
            "dataset_id": "d",
            "file": path,
            "data": Data(indexing_technique="high_quality", process_rule=Rule(mode="automatic")),
        },
        stream=None,
    )
    assert prepared.form == {
        "data": '{"indexing_technique":"high_quality","process_rule":{"mode":"automatic"}}'
    }
    assert prepared.files is not None and prepared.files["file"].filename == "doc.md"
    with prepared.multipart() as (files, form):
        assert files is not None and files["file"][0] == "doc.md"
        assert form == prepared.form


def test_unknown_and_missing_arguments_raise_type_error(
    rclient: Client, recorder: Recorder
) -> None:
    with pytest.raises(InvalidArgumentsError) as info:
        rclient.chat.send(query="q", user="u", querry="typo")
    message = str(info.value)
    assert isinstance(info.value, TypeError)
    assert "chat.send" in message and "'querry'" in message and "did you mean 'query'" in message
    assert "allowed: query, user, inputs" in message
    with pytest.raises(InvalidArgumentsError, match=r"chat\.send\(\) missing .*'user'"):
        rclient.chat.send(query="q")
    with pytest.raises(InvalidArgumentsError, match="takes no arguments"):
        rclient.dify.get_info(user="u")
    with pytest.raises(InvalidArgumentsError, match="either"):
        rclient.chat.send(ChatRequest(query="q", user="u"), user="v")
    with pytest.raises(InvalidArgumentsError, match=r"unknown operation 'chat\.sendd'.*chat\.send"):
        rclient.call("chat.sendd", query="q", user="u")
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": 1, "user": "u"}, "$.query"),
        ({"query": "q", "user": "u", "inputs": "not a dict"}, "$.inputs"),
        ({"query": "q", "user": "u", "auto_generate_name": "yes"}, "$.auto_generate_name"),
        (
            {
                "query": "q",
                "user": "u",
                "files": [{"type": "spreadsheet", "transfer_method": "remote_url"}],
            },
            "$.files[0].type",
        ),
        ({"query": "q", "user": "u", "files": {"type": "image"}}, "$.files"),
        ({"query": "q", "user": "u", "inputs": {"x": object()}}, None),
    ],
)
def test_wrong_types_name_the_field(
    rclient: Client, recorder: Recorder, kwargs: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(RequestValidationError) as info:
        rclient.chat.send(**kwargs)
    assert info.value.field == field
    assert info.value.operation == "chat.send"
    assert str(info.value).startswith("chat.send: ")
    assert recorder.requests == []


def test_wrong_literal_and_nested_struct_in_ready_request(
    rclient: Client, recorder: Recorder
) -> None:
    with pytest.raises(RequestValidationError) as info:
        rclient.dify.submit_feedback(
            FeedbackRequest(
                message_id="5a1e0000-0000-4000-8000-000000000002", user="u", rating="love"
            )
        )  # type: ignore[arg-type]
    assert info.value.field == "$.rating"
    with pytest.raises(RequestValidationError, match="expected a ChatRequest"):
        rclient.chat.send(FeedbackRequest(message_id="m", user="u"))  # type: ignore[call-overload]
    assert recorder.requests == []


def test_file_inputs_are_checked(rclient: Client, recorder: Recorder, tmp_path: Path) -> None:
    with pytest.raises(RequestValidationError, match="no such file"):
        rclient.dify.upload_file(file=tmp_path / "missing.txt", user="u")
    with pytest.raises(RequestValidationError, match="not a regular file"):
        rclient.dify.upload_file(file=tmp_path, user="u")
    with pytest.raises(RequestValidationError, match="without '/'"):
        rclient.dify.upload_file(file=("a/b.txt", b"x"), user="u")
    with pytest.raises(RequestValidationError, match="expected a path, bytes"):
        rclient.dify.upload_file(file=12345, user="u")  # type: ignore[arg-type]
    assert recorder.requests == []


def test_header_injection_is_refused(rclient: Client, recorder: Recorder) -> None:
    with pytest.raises(RequestValidationError, match="control character"):
        rclient.dify.get_info(extra_headers={"X-Trace": "a\r\nX-Evil: 1"})
    assert recorder.requests == []


def test_extra_headers_and_per_call_key(rclient: Client, recorder: Recorder) -> None:
    rclient.dify.get_info(extra_headers={"X-Trace": "abc"}, api_key="app-other")
    request = recorder.requests[0]
    assert request.headers["x-trace"] == "abc"
    assert request.headers["authorization"] == "Bearer app-other"


def test_explicit_unset_is_not_sent(rclient: Client, recorder: Recorder) -> None:
    rclient.chat.send(query="q", user="u", conversation_id=msgspec.UNSET)
    assert json.loads(recorder.requests[0].content) == {
        "query": "q",
        "user": "u",
        "inputs": {},
        "response_mode": "blocking",
    }


def test_bool_query_values(httpx_mock: HTTPXMock, client: Client) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/files/f0000000-0000-4000-8000-000000000001/preview?as_attachment=true&user=u",
        content=b"x",
    )
    assert (
        client.dify.preview_file(
            file_id="f0000000-0000-4000-8000-000000000001", as_attachment=True, user="u"
        )
        == b"x"
    )
