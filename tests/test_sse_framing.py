"""The byte framer agrees with httpx-sse on every stream, however it is cut into chunks."""

from __future__ import annotations

import itertools

import httpx
import pytest
from httpx_sse import EventSource, ServerSentEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from dify_oapi._streaming._sse import EventTooLarge as _EventTooLarge
from dify_oapi._streaming._sse import Framer as _Framer

LINES = st.one_of(
    st.builds(
        lambda t: 'data: {"event":"message","answer":"' + t + '"}', st.text("aé€😀 ", max_size=4)
    ),
    st.sampled_from(["data:x", "data", "data: ", "event: ping", "event:message", ": keep-alive"]),
    st.sampled_from(["id: 7", "retry: 10", "data: second line", "bogus: field", ""]),
)
ENDINGS = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    lines = draw(st.lists(st.tuples(LINES, ENDINGS), max_size=25))
    body = "".join(line + end for line, end in lines).encode()
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    return body, cuts


def chunked(body: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]


def reference(chunks: list[bytes]) -> list[tuple[str, str]]:
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
    )
    return [(e.event, e.data) for e in EventSource(response).iter_sse() if e.data]


def framed(chunks: list[bytes], cap: int = 1 << 20) -> list[tuple[str, str]]:
    framer = _Framer(cap)
    out: list[bytes | ServerSentEvent] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    out.extend(framer.close())
    pairs = [("message", f.decode()) if isinstance(f, bytes) else (f.event, f.data) for f in out]
    return [(event, data) for event, data in pairs if data]


@settings(max_examples=400, deadline=None)
@given(streams())
def test_framer_matches_httpx_sse(stream: tuple[bytes, list[int]]) -> None:
    chunks = chunked(*stream)
    assert framed(chunks) == reference(chunks)


def test_single_data_line_frames_skip_the_line_parser() -> None:
    framer = _Framer(1 << 20)
    out = framer.feed(b'data: {"a":1}\n\ndata:{"b":2}\n\nevent: ping\n\n')
    assert out[:2] == [b'{"a":1}', b'{"b":2}']
    assert isinstance(out[2], ServerSentEvent) and out[2].event == "ping"
    assert framer.feed(b'data: {"c"') == [] and framer.feed(b":3}\n\n") == [b'{"c":3}']


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_cap_counts_the_bytes_of_one_unfinished_event(ending: bytes) -> None:
    framer = _Framer(10)
    assert framer.feed(b"data: 12345" + ending + ending) != []  # 11 bytes, but finished
    framer.feed(b"data: 1234")  # 10 bytes so far: at the cap, not past it
    with pytest.raises(_EventTooLarge):
        framer.feed(b"5")


def test_chunks_of_whole_data_line_events_skip_the_line_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A transport that hands over everything buffered (aiohttp's readany) gives several
    # events per chunk; the line parser would cost about a third of an event's CPU.
    framer = _Framer(1 << 20)
    framer.feed(b"")  # past the byte order mark check
    framer.feed(b"data: {}\n\n")
    monkeypatch.setattr(_Framer, "_lines", lambda *_: pytest.fail("line parser entered"))
    assert framer.feed(b'data: {"a":1}\n\ndata:{"b":2}\n\ndata:\n\n') == [
        b'{"a":1}',
        b'{"b":2}',
        b"",
    ]
    monkeypatch.undo()
    # Anything else in such a chunk (a second data line, a comment, a blank line) still
    # takes the line parser, with the SSE rules.
    two_lines, single = framer.feed(b"data: a\ndata: b\n\ndata: c\n\n")
    assert isinstance(two_lines, ServerSentEvent) and two_lines.data == "a\nb"
    assert single == b"c"
    assert framer.feed(b"data: d\n\n: ping\n\n\n\ndata: e\n\n") == [b"d", b"e"]
