"""The scripts under examples/: they compile, type-check strictly, and chat.py runs end to end."""

from __future__ import annotations

import importlib.util
import json
import py_compile
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dify_oapi import Client

from .conftest import BASE, KEY, SSE_HEADERS, sse
from .httpx_mock import HTTPXMock

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NAMES = [
    "app",
    "async_chat",
    "chat",
    "chatflow",
    "completion",
    "distributed_batch",
    "knowledge",
    "workflow",
]
PATHS = [EXAMPLES / f"{name}.py" for name in NAMES]


def load_example(name: str) -> ModuleType:
    """Import an example by path: examples/ is not a package."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_listed() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == NAMES


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_example_compiles(path: Path, tmp_path: Path) -> None:
    py_compile.compile(str(path), cfile=str(tmp_path / f"{path.stem}.pyc"), doraise=True)


def test_examples_pass_mypy_strict() -> None:
    """Every call in the examples matches the typed API (the generated stubs)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            *(str(p.relative_to(ROOT)) for p in PATHS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- chat.py end to end --------------------------------------------------------------

USER = "example-user"
IDS = {
    "task_id": "task-1",
    "message_id": "msg-2",
    "conversation_id": "c0000000-0000-4000-8000-0000000c0001",
}
FIRST_QUERY = "Hi! In one sentence, what can you do?"
SECOND_QUERY = "Now tell me a two-sentence story."
STORY = [
    {"event": "message", **IDS, "answer": "Once "},
    {"event": "message", **IDS, "answer": "upon a time."},
]
HISTORY_OUTPUT = (
    "Recent conversations:\n"
    "- Sea stories (c0000000-0000-4000-8000-0000000c0001)\n"
    "- (untitled) (conv-0)\n"
    "This conversation (iter_messages yields newest first; shown oldest first):\n"
    f"  you: {FIRST_QUERY}\n"
    "  bot: I answer questions.\n"
    f"  you: {SECOND_QUERY}\n"
    "  bot: Once upon a time.\n"
)


def add_chat(httpx_mock: HTTPXMock, stream_events: list[Any]) -> None:
    """The blocking answer, the streamed one, then the two history pages."""
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/chat-messages",
        match_json={"query": FIRST_QUERY, "user": USER, "inputs": {}, "response_mode": "blocking"},
        json={
            "event": "message",
            "task_id": "task-0",
            "id": "msg-1",
            "message_id": "msg-1",
            "conversation_id": "c0000000-0000-4000-8000-0000000c0001",
            "mode": "chat",
            "answer": "I answer questions.",
            "created_at": 1705407629,
        },
    )
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/chat-messages",
        match_json={
            "query": SECOND_QUERY,
            "user": USER,
            "inputs": {},
            "response_mode": "streaming",
            "conversation_id": "c0000000-0000-4000-8000-0000000c0001",
        },
        headers=SSE_HEADERS,
        content=sse(stream_events),
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/conversations?user={USER}&limit=20",
        json={
            "data": [
                {"id": "c0000000-0000-4000-8000-0000000c0001", "name": "Sea stories"},
                {"id": "conv-0", "name": ""},
            ],
            "has_more": False,
            "limit": 20,
        },
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/messages?conversation_id=c0000000-0000-4000-8000-0000000c0001&user={USER}",
        json={
            "data": [
                {"id": "msg-1", "query": FIRST_QUERY, "answer": "I answer questions."},
                {"id": "msg-2", "query": SECOND_QUERY, "answer": "Once upon a time."},
            ],
            "has_more": False,
            "limit": 20,
        },
    )


def run_chat_example() -> None:
    with Client(api_key=KEY, base_url=BASE) as client:
        load_example("chat").main(client)


def test_chat_example_end_to_end(httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]) -> None:
    end = {"event": "message_end", **IDS, "metadata": {"usage": {"total_tokens": 42}}}
    add_chat(httpx_mock, ["event: ping", *STORY, end])
    run_chat_example()
    requests = httpx_mock.get_requests()
    assert [(r.method, str(r.url)) for r in requests] == [
        ("POST", f"{BASE}/chat-messages"),
        ("POST", f"{BASE}/chat-messages"),
        ("GET", f"{BASE}/conversations?user={USER}&limit=20"),
        (
            "GET",
            f"{BASE}/messages?conversation_id=c0000000-0000-4000-8000-0000000c0001&user={USER}",
        ),
    ]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in requests)
    assert requests[1].headers["accept"] == "text/event-stream"
    assert (
        json.loads(requests[1].content)["conversation_id"] == "c0000000-0000-4000-8000-0000000c0001"
    )
    assert capsys.readouterr().out == (
        "Assistant: I answer questions.\n"
        "Assistant: Once upon a time.\n"
        "[42 tokens]\n"
        "Whole answer: 17 characters\n" + HISTORY_OUTPUT
    )


def test_chat_example_stops_the_task_when_the_stream_is_cut(
    httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    add_chat(httpx_mock, STORY)  # no message_end: the stream ends early
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/chat-messages/task-1/stop",
        match_json={"user": USER},
        json={"result": "success"},
    )
    run_chat_example()
    assert [str(r.url) for r in httpx_mock.get_requests()][2] == f"{BASE}/chat-messages/task-1/stop"
    assert capsys.readouterr().out == (
        "Assistant: I answer questions.\n"
        "Assistant: Once upon a time.\n"
        "[stream cut: 17 characters arrived]\n" + HISTORY_OUTPUT
    )


def test_chat_example_reports_an_error_event_with_the_partial_answer(
    httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {
        "event": "error",
        **IDS,
        "status": 400,
        "code": "provider_quota_exceeded",
        "message": "Your quota is used up.",
    }
    add_chat(httpx_mock, [STORY[0], error])
    run_chat_example()
    assert len(httpx_mock.get_requests()) == 4  # no stop: the server ended the task itself
    assert capsys.readouterr().out == (
        "Assistant: I answer questions.\n"
        "Assistant: Once \n"
        "[Dify error 400 provider_quota_exceeded: Your quota is used up.]\n"
        "[answer so far: 'Once ']\n" + HISTORY_OUTPUT
    )
