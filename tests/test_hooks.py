"""Named hooks run at fixed points of every call, narrowed to a service or an operation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import dify_oapi
from dify_oapi import AsyncClient, Client, Hooks
from dify_oapi._hooks import scope

BASE = "http://dify.test/v1"


def _server(seen: list[httpx.Request], fail_first: int = 0) -> httpx.MockTransport:
    state = {"left": fail_first}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/chat-messages") and b'"streaming"' in request.content:
            frames = [
                {"event": "message", "task_id": "t", "message_id": "m", "answer": "a"},
                {"event": "message_end", "task_id": "t", "message_id": "m"},
            ]
            body = b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
        if state["left"]:
            state["left"] -= 1
            return httpx.Response(503, json={"code": "busy", "message": "later"})
        return httpx.Response(200, json={"name": "app", "answer": "hi"})

    return httpx.MockTransport(handle)


def test_hooks_run_at_their_points_for_their_service_or_operation(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    calls: list[tuple[Any, ...]] = []
    client = Client(api_key="app-k", base_url=BASE, transport=_server(seen, fail_first=1))

    def stamp(ep: Any, request: httpx.Request, attempt: int) -> None:
        request.headers["X-Trace"] = f"{ep.qualname}#{attempt}"

    client.hooks.register("before-request", stamp)
    client.hooks.register(
        "after-response.dify", lambda ep, r, a: calls.append(("resp", r.status_code))
    )
    client.hooks.register(
        "on-retry.dify.get_info", lambda ep, a, d, why: calls.append(("retry", a, why))
    )
    client.hooks.register(
        "on-event.chat.send", lambda ep, e, s: calls.append(("event", type(e).__name__))
    )
    client.hooks.register("after-response.knowledge", lambda *a: calls.append(("never",)))

    assert client.dify.get_info().name == "app"
    assert [r.headers["x-trace"] for r in seen] == ["dify.get_info#0", "dify.get_info#1"]
    assert calls == [("resp", 503), ("retry", 1, "HTTP 503"), ("resp", 200)]
    calls.clear()
    assert [type(e).__name__ for e in client.chat.send(query="q", user="u", stream=True)] == [
        "MessageEvent",
        "MessageEndEvent",
    ]
    assert calls == [("event", "MessageEvent"), ("event", "MessageEndEvent")]
    assert seen[-1].headers["x-trace"] == "chat.send#0"
    # A copy shares the registry; unregistering stops a handler.
    copy = client.with_options(api_key="app-other")
    copy.hooks.unregister("before-request", stamp)
    copy.dify.get_info()
    assert "x-trace" not in seen[-1].headers
    client.close()


async def test_async_hooks_and_a_shared_registry() -> None:
    seen: list[httpx.Request] = []
    hooks = Hooks()
    hooks.register("before-request.dify", lambda ep, r, a: r.headers.update({"X-Async": "1"}))
    async with AsyncClient(
        api_key="app-k", base_url=BASE, transport=_server(seen), hooks=hooks
    ) as client:
        assert client.hooks is hooks
        await client.dify.get_info()
    assert seen[0].headers["x-async"] == "1"


def test_unknown_points_and_handlers_are_refused() -> None:
    hooks = Hooks()
    with pytest.raises(ValueError, match="unknown hook point 'before-call'"):
        hooks.register("before-call", print)
    with pytest.raises(TypeError):
        hooks.register("on-retry", "not callable")  # type: ignore[arg-type]
    assert not hooks


def _ends(client: Client | AsyncClient) -> list[tuple[str, Any, str]]:
    ends: list[tuple[str, Any, str]] = []

    def record(ep: Any, outcome: Any, error: BaseException | None) -> None:
        ends.append((ep.qualname, outcome, type(error).__name__ if error else ""))

    client.hooks.register("on-end", record)
    return ends


def test_on_end_runs_once_per_call_and_when_a_stream_ends(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    client = Client(api_key="app-k", base_url=BASE, transport=_server(seen, fail_first=2))
    ends = _ends(client)
    with pytest.raises(dify_oapi.InternalServerError):
        client.dify.get_info(max_retries=0)
    assert [(op, outcome, why) for op, outcome, why in ends] == [
        ("dify.get_info", None, "InternalServerError")
    ]
    ends.clear()
    info = client.dify.get_info()  # one 503 retried, then 200: still one end
    assert len(seen) == 3 and ends == [("dify.get_info", info, "")]
    ends.clear()
    with pytest.raises(dify_oapi.InvalidArgumentsError):
        client.chat.send(user="u")  # refused before anything is sent: ends all the same
    assert ends == [("chat.send", None, "InvalidArgumentsError")] and len(seen) == 3
    ends.clear()
    stream = client.chat.send(query="q", user="u", stream=True)
    assert ends == []  # the call's end is the stream's
    first = next(stream)
    assert type(first).__name__ == "MessageEvent"
    events = list(stream)
    assert ends == [("chat.send", stream, "")] and stream.state.finished
    assert [type(e).__name__ for e in events] == ["MessageEndEvent"]
    stream.close()
    assert len(ends) == 1  # closing after the end does not end it again
    ends.clear()
    early = client.chat.send(query="q", user="u", stream=True)
    early.close()
    early.close()
    assert ends == [("chat.send", early, "")] and not early.state.finished
    ends.clear()
    collected = client.chat.send(query="q", user="u", collect=True)
    assert ends == [("chat.send", collected, "")] and collected.answer == "a"
    client.close()


def test_on_end_reports_a_stream_that_fails() -> None:
    frames = b'data: {"event": "message", "task_id": "t", "answer": "a"}\n\n'

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=frames)

    client = Client(api_key="app-k", base_url=BASE, transport=httpx.MockTransport(handle))
    ends = _ends(client)
    stream = client.chat.send(query="q", user="u", stream=True)
    with pytest.raises(dify_oapi.StreamInterruptedError):
        list(stream)
    assert ends == [("chat.send", stream, "StreamInterruptedError")]
    client.close()


async def test_async_on_end_for_calls_and_streams() -> None:
    seen: list[httpx.Request] = []
    async with AsyncClient(api_key="app-k", base_url=BASE, transport=_server(seen)) as client:
        ends = _ends(client)
        info = await client.dify.get_info()
        assert ends == [("dify.get_info", info, "")]
        ends.clear()
        stream = await client.chat.send(query="q", user="u", stream=True)
        assert ends == []
        assert [type(e).__name__ async for e in stream] == ["MessageEvent", "MessageEndEvent"]
        assert ends == [("chat.send", stream, "")]
        await stream.close()
        ends.clear()
        early = await client.chat.send(query="q", user="u", stream=True)
        await early.aclose()
        assert ends == [("chat.send", early, "")]


def test_every_handler_of_one_call_sees_that_calls_scope(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    client = Client(api_key="app-k", base_url=BASE, transport=_server(seen, fail_first=1))
    ended: list[tuple[str, Any]] = []

    def start(ep: Any, request: httpx.Request, attempt: int) -> None:
        mine = scope()
        mine.setdefault("sends", []).append(attempt)
        mine.setdefault("url", str(request.url))

    client.hooks.register("before-request", start)
    client.hooks.register("on-end", lambda ep, outcome, error: ended.append((ep.qualname, scope())))
    stream = client.chat.send(query="q", user="u", stream=True)
    client.dify.get_info()  # a retried call in between: its own scope, both attempts in it
    with pytest.raises(dify_oapi.InvalidArgumentsError):
        client.chat.send(user="u")  # nothing sent: a scope of its own, empty
    list(stream)
    assert ended == [
        ("dify.get_info", {"sends": [0, 1], "url": f"{BASE}/info"}),
        ("chat.send", {}),
        ("chat.send", {"sends": [0], "url": f"{BASE}/chat-messages"}),
    ]
    assert scope() == {} and Hooks.scope is scope  # outside a call: a throwaway dict
    client.close()


def test_a_download_ends_when_its_body_was_read_or_it_was_closed() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "audio/mpeg"}, content=b"ID3" * 10)

    client = Client(api_key="app-k", base_url=BASE, transport=httpx.MockTransport(handle))
    ends = _ends(client)
    audio = client.dify.text_to_audio(text="hi", user="u", stream=True)
    assert ends == []
    assert b"".join(audio.iter_bytes(8)) == b"ID3" * 10
    assert ends == [("dify.text_to_audio", audio, "")]
    audio.close()
    assert len(ends) == 1
    unread = client.dify.text_to_audio(text="hi", user="u", stream=True)
    with unread:
        pass
    assert ends[1:] == [("dify.text_to_audio", unread, "")]
    client.close()
