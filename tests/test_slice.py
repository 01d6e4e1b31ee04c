"""The first slice end to end: every app-level row and chat send/stop/suggested.

Each test asserts the exact request on the wire and the decoded result.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dify_oapi import AsyncClient, Client, RawResponse
from dify_oapi.types import (
    AppInfo,
    AppMeta,
    AppParameters,
    ChatRequest,
    ChatResponse,
    SiteSettings,
    UploadedFile,
)

from .conftest import BASE, KEY
from .httpx_mock import HTTPXMock

CHAT_ANSWER = {
    "event": "message",
    "task_id": "c3800678-a077-43df-a102-53f23ed20b88",
    "id": "b01a39de-3480-4f3e-9f1e-4841a80f8e5e",
    "message_id": "9da23599-e713-473b-982c-4328d4f5c78a",
    "conversation_id": "45701982-8118-4bc5-8e9b-64562b4555f2",
    "mode": "chat",
    "answer": "iPhone 13 Pro Max specs are listed here:...",
    "metadata": {
        "usage": {
            "prompt_tokens": 1033,
            "total_tokens": 1161,
            "total_price": "0.0012890",
            "currency": "USD",
            "latency": 0.7682376249867957,
        },
        "retriever_resources": [
            {
                "position": 1,
                "dataset_id": "101b4c97",
                "dataset_name": "iPhone",
                "document_id": "8dd1ad74",
                "document_name": "iPhone List",
                "segment_id": "ed599c7f",
                "score": 0.98457545,
                "content": "specs",
            }
        ],
    },
    "created_at": 1705407629,
}


def one(httpx_mock: HTTPXMock) -> httpx.Request:
    requests = httpx_mock.get_requests()
    assert len(requests) == 1
    return requests[0]


def test_chat_send_blocking(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=f"{BASE}/chat-messages", json=CHAT_ANSWER)
    result = client.chat.send(query="What are the specs?", user="abc-123", inputs={"city": "SF"})
    request = one(httpx_mock)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("dify-oapi2/")
    assert request.content == (
        b'{"query":"What are the specs?","user":"abc-123","inputs":{"city":"SF"},'
        b'"response_mode":"blocking"}'
    )
    assert isinstance(result, ChatResponse)
    assert result.answer == CHAT_ANSWER["answer"]
    assert result.conversation_id == "45701982-8118-4bc5-8e9b-64562b4555f2"
    assert result.metadata is not None and result.metadata.usage is not None
    assert result.metadata.usage.total_tokens == 1161
    assert result.metadata.retriever_resources is not None
    assert result.metadata.retriever_resources[0].score == pytest.approx(0.98457545)


def test_inputs_default_is_sent_and_unset_fields_are_omitted(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=CHAT_ANSWER)
    client.chat.send(query="q", user="u")
    assert json.loads(one(httpx_mock).content) == {
        "query": "q",
        "user": "u",
        "inputs": {},
        "response_mode": "blocking",
    }


def test_explicit_value_equal_to_server_default_is_sent(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=CHAT_ANSWER)
    client.chat.send(query="q", user="u", auto_generate_name=True, conversation_id="")
    body = json.loads(one(httpx_mock).content)
    assert body["auto_generate_name"] is True
    assert body["conversation_id"] == ""


def test_nested_files_are_encoded(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=CHAT_ANSWER)
    client.chat.send(
        query="q",
        user="u",
        files=[{"type": "image", "transfer_method": "remote_url", "url": "https://x/y.png"}],
    )
    assert json.loads(one(httpx_mock).content)["files"] == [
        {"type": "image", "transfer_method": "remote_url", "url": "https://x/y.png"}
    ]


def test_call_styles_send_identical_requests(client: Client, httpx_mock: HTTPXMock) -> None:
    for _ in range(4):
        httpx_mock.add_response(json=CHAT_ANSWER)
    client.chat.send(query="q", user="u")
    client.chat.send(ChatRequest(query="q", user="u"))
    client.call("chat.send", query="q", user="u")
    client.call("chat.chat.chat", ChatRequest(query="q", user="u"))
    bodies = {r.content for r in httpx_mock.get_requests()}
    urls = {str(r.url) for r in httpx_mock.get_requests()}
    assert bodies == {b'{"query":"q","user":"u","inputs":{},"response_mode":"blocking"}'}
    assert urls == {f"{BASE}/chat-messages"}


def test_chat_stop(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/chat-messages/task-1/stop", json={"result": "success"}
    )
    result = client.chat.stop(task_id="task-1", user="abc-123")
    assert one(httpx_mock).content == b'{"user":"abc-123"}'
    assert result.result == "success"


def test_suggested_questions(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/messages/a1000000-0000-4000-8000-0000000000a1/suggested?user=abc-123",
        json={"result": "success", "data": ["a?", "b?"]},
    )
    result = client.chat.get_suggested(
        message_id="a1000000-0000-4000-8000-0000000000a1", user="abc-123"
    )
    request = one(httpx_mock)
    assert request.content == b""
    assert "content-type" not in request.headers
    assert result.data == ["a?", "b?"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "cls"),
    [
        (
            "get_info",
            "/info",
            {
                "name": "My App",
                "description": "d",
                "tags": ["t"],
                "mode": "chat",
                "author_name": "Dify",
            },
            AppInfo,
        ),
        (
            "get_parameters",
            "/parameters",
            {
                "opening_statement": "hi",
                "suggested_questions": [],
                "user_input_form": [
                    {
                        "text-input": {
                            "label": "City",
                            "variable": "city",
                            "required": True,
                            "default": "",
                        }
                    }
                ],
                "file_upload": {"image": {"enabled": False}},
                "system_parameters": {"file_size_limit": 15},
            },
            AppParameters,
        ),
        ("get_meta", "/meta", {"tool_icons": {"dalle3": "https://x/icon.png"}}, AppMeta),
        (
            "get_site",
            "/site",
            {
                "title": "My App",
                "chat_color_theme": "#ff4a4a",
                "icon_url": None,
                "show_workflow_steps": False,
            },
            SiteSettings,
        ),
    ],
)
def test_app_info_rows(
    client: Client, httpx_mock: HTTPXMock, method: str, path: str, payload: Any, cls: type
) -> None:
    httpx_mock.add_response(method="GET", url=BASE + path, json=payload)
    result = getattr(client.dify, method)()
    request = one(httpx_mock)
    assert request.method == "GET" and request.content == b""
    assert isinstance(result, cls)
    assert result.to_dict() == {**{k: v for k, v in result.to_dict().items()}, **payload}


def test_feedback_submit_and_revoke(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/messages/a1000000-0000-4000-8000-0000000000a1/feedbacks",
        json={"result": "success"},
    )
    httpx_mock.add_response(
        url=f"{BASE}/messages/a1000000-0000-4000-8000-0000000000a1/feedbacks",
        json={"result": "success"},
    )
    client.dify.submit_feedback(
        message_id="a1000000-0000-4000-8000-0000000000a1", user="u", rating="like", content="great"
    )
    client.call(
        "dify.feedback.submit",
        message_id="a1000000-0000-4000-8000-0000000000a1",
        user="u",
        rating=None,
    )
    first, second = httpx_mock.get_requests()
    assert first.content == b'{"user":"u","rating":"like","content":"great"}'
    assert second.content == b'{"user":"u","rating":null}'


def test_feedback_list(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/app/feedbacks?page=2&limit=50",
        json={"data": [{"id": "f1", "rating": "like", "content": None, "from_source": "api"}]},
    )
    result = client.dify.list_feedbacks(page=2, limit=50)
    assert one(httpx_mock).method == "GET"
    assert result.data[0].rating == "like" and result.data[0].content is None


def _multipart_parts(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """Parse a multipart body into {name: (filename, content)}."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    parts = {}
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        disposition = head.split(b"\r\n")[0].decode()
        name = disposition.split('name="')[1].split('"')[0]
        filename = (
            disposition.split('filename="')[1].split('"')[0] if "filename=" in disposition else None
        )
        parts[name] = (filename, body)
    return parts


def test_upload_file_from_path(client: Client, httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello file")
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/files/upload",
        status_code=201,
        json={
            "id": "f0000000-0000-4000-8000-000000000001",
            "name": "notes.txt",
            "size": 10,
            "extension": "txt",
            "mime_type": "text/plain",
            "created_by": "u",
            "created_at": 1,
        },
    )
    result = client.dify.upload_file(file=path, user="abc-123")
    request = one(httpx_mock)
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert _multipart_parts(request) == {
        "user": (None, b"abc-123"),
        "file": ("notes.txt", b"hello file"),
    }
    assert isinstance(result, UploadedFile) and result.id == "f0000000-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("value", "filename"),
    [
        (b"raw bytes", "file"),
        (("clip.mp3", b"raw bytes"), "clip.mp3"),
        (("clip.mp3", io.BytesIO(b"raw bytes"), "audio/mpeg"), "clip.mp3"),
    ],
)
def test_audio_to_text_file_forms(
    client: Client, httpx_mock: HTTPXMock, value: Any, filename: str
) -> None:
    httpx_mock.add_response(url=f"{BASE}/audio-to-text", json={"text": "hello"})
    assert client.dify.audio_to_text(file=value, user="u").text == "hello"
    assert _multipart_parts(one(httpx_mock)) == {
        "user": (None, b"u"),
        "file": (filename, b"raw bytes"),
    }


def test_text_to_audio_bytes_and_stream(
    client: Client, httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    audio = bytes(range(256)) * 1000
    for _ in range(2):
        httpx_mock.add_response(
            url=f"{BASE}/text-to-audio", content=audio, headers={"content-type": "audio/mpeg"}
        )
    assert client.dify.text_to_audio(text="hi", user="u") == audio
    target = tmp_path / "out.mp3"
    with client.dify.text_to_audio(text="hi", user="u", stream=True) as download:
        assert download.content_type == "audio/mpeg"
        assert download.write_to(target) == len(audio)
    assert target.read_bytes() == audio
    assert [r.content for r in httpx_mock.get_requests()] == [b'{"text":"hi","user":"u"}'] * 2


def test_raw_response_view(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"name": "x"}, headers={"x-request-id": "req-9"})
    raw = client.dify.get_info(raw=True)
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200 and raw.request_id == "req-9"
    assert raw.headers["x-request-id"] == "req-9"
    assert raw.data.name == "x"


def test_unknown_response_fields_are_ignored(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"name": "x", "brand_new_field": {"a": 1}, "mode": "agent-v9"})
    info = client.dify.get_info()
    assert info.name == "x" and info.mode == "agent-v9"


async def test_async_client_same_requests(aclient: AsyncClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat-messages", json=CHAT_ANSWER)
    httpx_mock.add_response(url=f"{BASE}/info", json={"name": "x"})
    httpx_mock.add_response(url=f"{BASE}/chat-messages/t/stop", json={"result": "success"})
    result = await aclient.chat.send(query="q", user="u")
    info = await aclient.call("dify.info.get")
    stopped = await aclient.chat.stop(task_id="t", user="u")
    requests = httpx_mock.get_requests()
    assert requests[0].content == b'{"query":"q","user":"u","inputs":{},"response_mode":"blocking"}'
    assert requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert result.answer == CHAT_ANSWER["answer"]
    assert info.name == "x" and stopped.result == "success"


async def test_async_binary_stream(
    aclient: AsyncClient, httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    httpx_mock.add_response(content=b"x" * 200_000, headers={"content-type": "audio/mpeg"})
    download = await aclient.dify.text_to_audio(text="hi", stream=True)
    assert await download.write_to(tmp_path / "a.mp3") == 200_000
