"""A finished answer stays finished; a BOM does not cost the first event (issue 11, items 7
and 10). Real sockets, every client kind."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource

from dify_oapi import APITimeoutError, StreamInterruptedError
from dify_oapi._streaming._sse import Framer

from .conftest import IDS, WF
from .kit import AIOHTTP_XFAIL, KINDS, Kit, kinds
from .server import FaultServer, frames, sse

CHAT = "/v1/chat-messages"
COMPLETION = "/v1/completion-messages"
#: A read timeout far longer than any wait the SDK may make after the final event.
SLOW_READ: dict[str, Any] = {"timeout": httpx.Timeout(5.0, connect=1.0, pool=1.0)}

CHAT_EVENTS: list[dict[str, Any]] = [
    {"event": "message", **IDS, "answer": "Hel"},
    {"event": "message", **IDS, "answer": "lo"},
    {"event": "message_end", **IDS, "id": "m-1", "metadata": {"usage": {"total_tokens": 2}}},
]
COMPLETION_EVENTS: list[dict[str, Any]] = [
    {"event": "message", "task_id": "t-1", "message_id": "m-1", "answer": "Hel"},
    {"event": "message", "task_id": "t-1", "message_id": "m-1", "answer": "lo"},
    {"event": "message_end", "task_id": "t-1", "message_id": "m-1", "id": "m-1"},
]
# A chatflow: its message_end comes before the run's workflow_finished (FACTS.md §3).
CHATFLOW_EVENTS: list[dict[str, Any]] = [
    "event: ping",  # type: ignore[list-item]
    {"event": "workflow_started", **WF, "data": {"id": "wr-1", "workflow_id": "w"}},
    {"event": "message", **IDS, "answer": "Hel"},
    {"event": "message", **IDS, "answer": "lo"},
    {"event": "message_end", **IDS, "id": "m-1"},
    {"event": "workflow_finished", **WF, "data": {"id": "wr-1", "status": "succeeded"}},
]
APPS = {
    "chat": ("chat.send", CHAT, CHAT_EVENTS, {"query": "q", "user": "u"}),
    "completion": ("completion.send", COMPLETION, COMPLETION_EVENTS, {"user": "u"}),
    "chatflow": ("chatflow.send", CHAT, CHATFLOW_EVENTS, {"query": "q", "user": "u"}),
}


def _names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def _class_name(event: str) -> str:
    return "".join(part.title() for part in event.split("_")) + "Event"


def _ends(*ends: str) -> list[Any]:
    # httpx-aiohttp raises a cut connection's error before the bytes that came with it.
    return [
        pytest.param(kind, end, id=f"{kind}-{end}", marks=AIOHTTP_XFAIL)
        if kind == "aiohttp" and end != "stall"
        else pytest.param(kind, end, id=f"{kind}-{end}")
        for kind in KINDS
        for end in ends
    ]


@pytest.mark.parametrize("app", list(APPS))
@pytest.mark.parametrize(("kind", "end"), _ends("close", "reset", "stall"))
def test_after_the_final_event_nothing_can_fail_or_wait(
    server: FaultServer, make_kit: Any, kind: str, app: str, end: str
) -> None:
    op, path, events, args = APPS[app]
    # FIN without the chunked body's end, RST, or a connection held open: after the final
    # event, none of them is the caller's problem. The whole body is written at once, and
    # has arrived, with the end of the connection, before the caller reads.
    server.route("POST", path, sse([b"".join(frames(events))], end=end))
    kit: Kit = make_kit(kind, **SLOW_READ)
    stream = kit.call(op, **args, stream=True)
    kit.pause(0.1)
    start = time.monotonic()
    got = kit.all_events(stream)
    took = time.monotonic() - start
    sent = [e["event"] for e in events if isinstance(e, dict)]
    assert [n for n in _names(got) if n != "PingEvent"] == [_class_name(e) for e in sent]
    assert stream.answer == "Hello"
    assert stream.state.finished
    assert took < 1.0, took  # not the 5 s read timeout


@pytest.mark.parametrize(("kind", "end"), _ends("close", "reset"))
def test_a_chatflow_cut_between_message_end_and_workflow_finished_is_interrupted(
    server: FaultServer, make_kit: Any, kind: str, end: str
) -> None:
    server.route("POST", CHAT, sse([b"".join(frames(CHATFLOW_EVENTS[:-1]))], end=end))
    kit: Kit = make_kit(kind, **SLOW_READ)
    stream = kit.call("chatflow.send", query="q", user="u", stream=True)
    kit.pause(0.1)
    with pytest.raises(StreamInterruptedError) as info:
        kit.all_events(stream)
    partial = info.value.partial
    assert partial is not None and partial.answer == "Hello" and not partial.finished
    assert partial.ids["workflow_run_id"] == "wr-1"


@pytest.mark.parametrize("kind", kinds())
def test_a_chatflow_stalled_after_message_end_waits_for_its_run(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    server.route("POST", CHAT, sse(frames(CHATFLOW_EVENTS[:-1]), end="stall"))
    kit: Kit = make_kit(kind, timeout=httpx.Timeout(0.5, connect=1.0, pool=1.0))
    stream = kit.call("chatflow.send", query="q", user="u", stream=True)
    with pytest.raises(APITimeoutError) as info:
        kit.all_events(stream)
    assert info.value.partial is not None and info.value.partial.answer == "Hello"
    assert not info.value.partial.finished


# -- item 10: a byte-order mark at the start of a stream ---------------------------------------

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("split", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("kind", kinds(only=("sync", "async")))
def test_a_bom_at_the_start_is_stripped_and_the_first_event_kept(
    server: FaultServer, make_kit: Any, kind: str, split: int
) -> None:
    body = BOM + b"".join(frames(CHAT_EVENTS))
    # The BOM cut anywhere: alone, in pieces, or with the first bytes of the first event.
    pieces = [body[:split], body[split:]] if split else [body]
    server.route("POST", CHAT, sse(pieces, pause=0.02))
    kit: Kit = make_kit(kind)
    stream = kit.call("chat.send", query="q", user="u", stream=True)
    got = kit.all_events(stream)
    assert _names(got) == ["MessageEvent", "MessageEvent", "MessageEndEvent"]
    assert stream.answer == "Hello"


def _httpx_sse(body: bytes) -> list[tuple[str, str]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return [(e.event, e.data) for e in EventSource(response).iter_sse() if e.data]


def _framed(chunks: list[bytes]) -> list[tuple[str, str]]:
    framer = Framer(1 << 20)
    out = [f for chunk in chunks for f in framer.feed(chunk)] + list(framer.close())
    pairs = [("message", f.decode()) if isinstance(f, bytes) else (f.event, f.data) for f in out]
    return [p for p in pairs if p[1]]


def test_the_framer_equals_httpx_sse_but_for_the_bom() -> None:
    body = b"".join(frames(CHATFLOW_EVENTS, "\r\n"))
    expected = _httpx_sse(body)
    assert len(expected) == 5
    for cut in range(len(BOM) + 8):
        with_bom = BOM + body
        assert _framed([with_bom[:cut], with_bom[cut:]]) == expected, cut
    assert _framed([body]) == expected
    # Only a leading BOM is one: later, the same bytes are data.
    inner = b'data: {"a": "\xef\xbb\xbf"}\n\n'
    assert _framed([inner]) == _httpx_sse(inner)


@pytest.mark.parametrize("pause", [0.0, 0.01])
@pytest.mark.parametrize("kind", kinds(only=("sync", "async")))
def test_a_finished_stream_whose_body_ends_gives_its_connection_back(
    server: FaultServer, make_kit: Any, kind: str, pause: float
) -> None:
    # The body's end comes with the final event, or just after it: read, not waited for,
    # so the connection is reused.
    server.route("POST", CHAT, sse(frames(CHAT_EVENTS), pause=pause))
    kit: Kit = make_kit(kind, **SLOW_READ)
    for _ in range(3):
        stream = kit.call("chat.send", query="q", user="u", stream=True)
        assert stream.answer == "" and kit.all_events(stream)[-1].id == "m-1"
    assert len({r.conn_id for r in server.requests}) == 1
