"""Fuzzing with hypothesis: random bytes and odd-but-valid JSON fed to the SSE decoding path
and to every operation's response decoding end in a result or in one of the SDK's own
errors (a :class:`DifyError`), never another exception type and never a hang.

Answers come from an in-memory transport (no sockets): thousands of examples run in
seconds. Each example runs under a watchdog alarm, so a hang fails the test instead of
stalling the run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import typing
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dify_oapi import AsyncClient, Client, DifyError
from dify_oapi._table import Endpoint
from dify_oapi.types import events as ev
from dify_oapi.types._base import FileMarker

pytestmark = pytest.mark.faults

# Shrinking a failure costs most of the time of a failing run; the cases the fuzzers found
# are pinned below in minimal form. DIFY_FAULTS_SHRINK=1 turns shrinking back on.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + (
    [Phase.shrink] if os.environ.get("DIFY_FAULTS_SHRINK") else []
)
FUZZ = settings(
    max_examples=300,
    phases=PHASES,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Hang(BaseException):
    """Raised by the watchdog; a BaseException so nothing in the SDK can swallow it."""


@contextmanager
def watchdog(seconds: float = 10.0) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds}s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk


class Scripted:
    """The answer the in-memory transport gives next: status, headers, body pieces."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(self.status, headers=self.headers, stream=Chunks(list(self.chunks)))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


# -- strategies -----------------------------------------------------------------------------

EVENT_CLASSES = [c for c in ev.Event.__subclasses__() if isinstance(c.__struct_config__.tag, str)]
TAGS = [str(c.__struct_config__.tag) for c in EVENT_CLASSES]
EVENT_FIELDS = sorted({f.name for c in EVENT_CLASSES for f in msgspec.structs.fields(c)})

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)

ODD_JSON = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-0",
    "123456789012345678901234567890",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '{"a": 1, "a": 2}',
    "\ufeff{}",
    "[" * 2000 + "]" * 2000,
    '{"x":' * 500 + "1" + "}" * 500,
    '"' + "\\u0000" * 50 + '"',
    "{}",
    "[]",
    "null",
    "true",
    '""',
    " ",
]


@st.composite
def event_objects(draw: st.DrawFn, fields: list[str] = EVENT_FIELDS) -> str:
    """A JSON object shaped like an event (a real tag or not) with randomly typed fields."""
    obj: dict[str, Any] = {}
    if draw(st.booleans()):
        obj["event"] = draw(st.sampled_from(TAGS) | st.text(max_size=10) | json_values)
    for name in draw(st.lists(st.sampled_from(fields), max_size=6)):
        obj[name] = draw(json_values)
    return json.dumps(obj)


json_texts = (
    st.sampled_from(ODD_JSON) | json_values.map(json.dumps) | event_objects() | st.text(max_size=60)
)


@st.composite
def sse_bodies(draw: st.DrawFn) -> bytes:
    """SSE framing with random fields, line endings, comments and payloads."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(
            st.sampled_from(
                ["data", "data", "data", "event", "id", "retry", "comment", "junk", "blank"]
            )
        )
        if kind == "data":
            payload = draw(json_texts)
            lines += ["data: " + part for part in payload.replace("\r", "").split("\n")]
        elif kind == "event":
            lines.append(
                "event: " + draw(st.sampled_from([*TAGS, "ping", ""]) | st.text(max_size=8))
            )
        elif kind == "id":
            lines.append("id: " + draw(st.text(max_size=8)))
        elif kind == "retry":
            lines.append(
                "retry: " + draw(st.sampled_from(["10", "-1", "x", "99999999999999999999"]))
            )
        elif kind == "comment":
            lines.append(": " + draw(st.text(max_size=12)))
        elif kind == "junk":
            lines.append(draw(st.text(max_size=12)))
        if kind == "blank" or draw(st.booleans()):
            lines.append("")
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))
    return text.encode("utf-8", "surrogatepass")


cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=6)


# -- the SSE path ---------------------------------------------------------------------------

STREAM_OPS = [
    ("chat.send", {"query": "q", "user": "u"}),
    ("completion.send", {"user": "u"}),
    ("workflow.run", {"user": "u"}),
    (
        "workflow.stream_events",
        {"workflow_run_id": "00000000-0000-4000-8000-0000000000aa", "user": "u"},
    ),
]


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[Scripted, Client]]:
    script = Scripted()
    client = Client(
        api_key="app-fuzz",
        base_url="http://fuzz.test/v1",
        transport=httpx.MockTransport(script),
        max_retries=0,
    )
    yield script, client
    client.close()


def run_stream(client: Client, op: str, kwargs: dict[str, Any]) -> None:
    with watchdog():
        try:
            extra = {"stream": True} if op != "workflow.stream_events" else {}
            stream = client.call(op, **kwargs, **extra)
            for event in stream:
                assert event is not None
        except DifyError:
            pass


@FUZZ
@given(body=st.binary(max_size=3000), cuts=cuts, op=st.sampled_from(STREAM_OPS))
def test_random_bytes_as_an_event_stream(
    scripted: tuple[Scripted, Client], body: bytes, cuts: list[int], op: tuple[str, dict[str, Any]]
) -> None:
    script, client = scripted
    script.status, script.headers = 200, {"content-type": "text/event-stream"}
    script.chunks = split(body, cuts)
    run_stream(client, *op)


@FUZZ
@given(body=sse_bodies(), cuts=cuts, op=st.sampled_from(STREAM_OPS))
def test_random_sse_frames(
    scripted: tuple[Scripted, Client], body: bytes, cuts: list[int], op: tuple[str, dict[str, Any]]
) -> None:
    script, client = scripted
    script.status, script.headers = 200, {"content-type": "text/event-stream; charset=utf-8"}
    script.chunks = split(body, cuts)
    run_stream(client, *op)


# -- what the fuzzers found, pinned as plain cases ------------------------------------------

DEEP_OBJECT = '{"x":' * 3000 + "1" + "}" * 3000
DEEP_ARRAY = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("[1, 2]", id="array"),
        pytest.param("5", id="number"),
        pytest.param('"text"', id="string"),
        pytest.param("null", id="null"),
        pytest.param("true", id="bool"),
        pytest.param("1e999", id="number-out-of-range"),
        pytest.param('{"event": "x", "n": 1e999}', id="unknown-event-with-1e999"),
        pytest.param(
            '{"event": "message", "answer": "x", "n": ' + DEEP_ARRAY + "}",
            id="deep-unknown-field",
        ),
        pytest.param(
            '{"event": "new_thing", "n": ' + DEEP_OBJECT + "}",
            id="deep-unknown-event",
        ),
        pytest.param(DEEP_ARRAY, id="deep-array"),
        pytest.param("NaN", id="NaN"),
        pytest.param('{"event": "message", "answer": "\\ud800"}', id="lone-surrogate-escape"),
    ],
)
def test_odd_event_data_is_a_typed_error(scripted: tuple[Scripted, Client], payload: str) -> None:
    script, client = scripted
    script.status, script.headers = 200, {"content-type": "text/event-stream"}
    script.chunks = [f"data: {payload}\n\n".encode()]
    with watchdog(), suppress(DifyError):
        list(client.chat.send(query="q", user="u", stream=True))


@pytest.mark.parametrize(
    ("op", "kwargs", "status", "body"),
    [
        pytest.param("dify.get_info", {}, 400, DEEP_ARRAY, id="error-body-deep-array"),
        pytest.param("dify.get_info", {}, 503, DEEP_OBJECT, id="5xx-body-deep-object"),
        pytest.param(
            "workflow.get_run",
            {"workflow_run_id": "00000000-0000-4000-8000-0000000000aa"},
            200,
            '{"outputs": ' + DEEP_OBJECT + "}",
            id="answer-deep-in-an-any-field",
        ),
        pytest.param("dify.get_info", {}, 200, DEEP_ARRAY, id="answer-deep-array"),
        pytest.param("dify.get_info", {}, 400, "1e999", id="error-body-1e999"),
    ],
)
def test_odd_answers_are_typed_errors(
    scripted: tuple[Scripted, Client], op: str, kwargs: dict[str, Any], status: int, body: str
) -> None:
    script, client = scripted
    script.status, script.headers = status, {"content-type": "application/json"}
    script.chunks = [body.encode()]
    with watchdog(), suppress(DifyError):
        client.call(op, **kwargs)


@settings(FUZZ, max_examples=100)
@given(body=sse_bodies(), cuts=cuts)
def test_async_random_sse_frames(body: bytes, cuts: list[int]) -> None:
    script = Scripted()
    script.headers = {"content-type": "text/event-stream"}
    script.chunks = split(body, cuts)

    async def run() -> None:
        async with AsyncClient(
            api_key="app-fuzz",
            base_url="http://fuzz.test/v1",
            transport=httpx.MockTransport(script),
            max_retries=0,
        ) as client:
            try:
                stream = await client.chat.send(query="q", user="u", stream=True)
                async for _ in stream:
                    pass
            except DifyError:
                pass

    with watchdog():
        asyncio.run(run())


# -- every response decoder ----------------------------------------------------------------


def minimal(tp: Any) -> Any:
    """A valid value for a required field of type ``tp``."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        if FileMarker in tp.__metadata__:
            return ("a.txt", b"x")
        if any(isinstance(m, msgspec.Meta) and m.pattern for m in tp.__metadata__):
            return "00000000-0000-4000-8000-000000000000"  # the only patterns are UUIDs
        return minimal(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return typing.get_args(tp)[0]
    if origin in (list, tuple, set):
        return []
    if origin is dict or tp is dict:
        return {}
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return minimal(typing.get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return {
            f.name: minimal(f.type)
            for f in msgspec.structs.fields(tp)
            if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT
        }
    return {str: "x", int: 1, float: 1.0, bool: True}.get(tp, "x")


def all_endpoints(client: Client) -> list[tuple[str, Endpoint]]:
    seen: dict[int, tuple[str, Endpoint]] = {}
    for name in client.operations:
        ep = client._endpoint(name)
        seen.setdefault(id(ep), (f"{ep.service}.{ep.name}", ep))
    return sorted(seen.values(), key=lambda item: item[0])


def arguments(ep: Endpoint) -> dict[str, Any]:
    if ep.request is None:
        return {}
    fields = {f.name: f for f in msgspec.structs.fields(ep.request)}
    return {name: minimal(fields[name].type) for name in ep.required}


@pytest.fixture(scope="module")
def decoders(scripted: tuple[Scripted, Client]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """Every operation with a JSON answer, with arguments that pass validation."""
    script, client = scripted
    out = []
    for name, ep in all_endpoints(client):
        if ep.response in (None, bytes):
            continue
        kwargs = arguments(ep)
        listed = typing.get_origin(ep.response) is list
        script.status, script.headers = 200, {"content-type": "application/json"}
        script.chunks = [b"[]" if listed else b"{}"]
        client.call(name, **kwargs)  # the arguments are valid: only the answer will vary
        item = typing.get_args(ep.response)[0] if listed else ep.response
        out.append((name, kwargs, [f.name for f in msgspec.structs.fields(item)]))
    return out


def test_every_json_operation_is_fuzzed(
    scripted: tuple[Scripted, Client], decoders: list[tuple[str, dict[str, Any], list[str]]]
) -> None:
    _, client = scripted
    json_ops = [n for n, ep in all_endpoints(client) if ep.response not in (None, bytes)]
    assert [d[0] for d in decoders] == json_ops and len(json_ops) > 100


@st.composite
def answers(draw: st.DrawFn, names: list[str]) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "shaped", "odd", "odd", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=500))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":  # nesting deeper than a recursive decoder can follow
        depth = draw(st.integers(min_value=500, max_value=5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"x":', "}")]))
        inner = opener * depth + "1" + closer * depth
        return (f'{{"{draw(st.sampled_from(names))}": {inner}}}' if names else inner).encode()
    if kind == "shaped" and names:
        obj = {n: draw(json_values) for n in draw(st.lists(st.sampled_from(names), max_size=6))}
        return json.dumps([obj] if draw(st.booleans()) else obj).encode()
    return draw(st.sampled_from(ODD_JSON)).encode("utf-8", "surrogatepass")


@settings(FUZZ, max_examples=800)
@given(data=st.data())
def test_every_response_decoder(
    scripted: tuple[Scripted, Client],
    decoders: list[tuple[str, dict[str, Any], list[str]]],
    data: st.DataObject,
) -> None:
    script, client = scripted
    name, kwargs, names = data.draw(st.sampled_from(decoders))
    script.status = data.draw(
        st.sampled_from([200, 200, 200, 201, 204, 400, 404, 429, 500, 503, 418])
    )
    content_type = data.draw(
        st.sampled_from(
            ["application/json", "text/html", "text/plain", "application/json; charset=utf-8", ""]
        )
    )
    script.headers = {"content-type": content_type} if content_type else {}
    if data.draw(st.booleans()):
        script.headers["retry-after"] = data.draw(
            st.sampled_from(["1", "-1", "x", "99999", "Wed, 21 Oct 2015 07:28:00 GMT"])
        )
    body = data.draw(answers(names))
    script.chunks = split(body, data.draw(cuts))
    with watchdog(), suppress(DifyError):
        client.call(name, **kwargs)
