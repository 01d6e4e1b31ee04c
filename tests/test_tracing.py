"""OpenTelemetry (extra ``otel``): one span per call, ``traceparent`` on the wire, metrics.

Every call goes to a real server on 127.0.0.1 (``tests/faults/server.py``); spans and
metrics are read from the OpenTelemetry SDK's in-memory exporter and reader.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from dify_oapi import AsyncClient, Client, InvalidArgumentsError, RateLimitError
from dify_oapi.tracing import instrument, uninstrument

from .faults.server import FaultServer, frames, respond, sse

KEY = "app-TRACINGSECRET0123456789"
IDS = {"task_id": "t-1", "message_id": "m-1", "conversation_id": "c-1"}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "latency": 0.25}
ANSWER = {**IDS, "event": "message", "answer": "hi", "metadata": {"usage": USAGE}}
STREAM = frames(
    [
        {"event": "message", **IDS, "answer": "h"},
        {"event": "ping"},
        {"event": "message", **IDS, "answer": "i"},
        {"event": "message_end", **IDS, "metadata": {"usage": USAGE}},
    ]
)


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, client: Any) -> None:
        instrument(client, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = [
                        (dict(p.attributes or {}), p.value) for p in metric.data.data_points
                    ]
        return found


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


def _traceparent(received: Any) -> str:
    values = [v for k, v in received.headers if k.lower() == "traceparent"]
    assert len(values) == 1, received.headers
    return values[0]


def _wire_id(span: Any) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def test_a_blocking_call_is_one_span_and_its_trace_continues_into_the_server(
    otel: Telemetry, server: FaultServer
) -> None:
    server.route("POST", "/v1/chat-messages", respond(json=ANSWER))
    with Client(api_key=KEY, base_url=server.base_url, max_retries=0) as client:
        otel.instrument(client)
        outer = otel.tracer_provider.get_tracer("test").start_span("user work")
        from opentelemetry import trace

        with trace.use_span(outer, end_on_exit=True):
            answer = client.chat.send(query="q", user="u")
    assert answer.answer == "hi"
    spans = [s for s in otel.finished() if s.name != "user work"]
    assert [s.name for s in spans] == ["chat.send"]
    span = spans[0]
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
    assert dict(span.attributes) == {
        "dify.operation": "chat.send",
        "http.request.method": "POST",
        "url.template": "/chat-messages",
        "server.address": "127.0.0.1",
        "http.response.status_code": 200,
        "dify.attempts": 1,
        "dify.task_id": "t-1",
        "dify.message_id": "m-1",
        "dify.conversation_id": "c-1",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 7,
        "dify.usage.total_tokens": 18,
        "dify.usage.latency": 0.25,
    }
    assert span.status.status_code is StatusCode.UNSET
    (received,) = server.requests_to("/v1/chat-messages")
    assert _traceparent(received) == _wire_id(span)
    assert otel.metrics()["dify.client.calls.in_flight"] == [({"dify.operation": "chat.send"}, 0)]


def test_a_retry_is_a_span_event_and_counted(
    otel: Telemetry, server: FaultServer, sleeps: list[float]
) -> None:
    busy = respond(503, json={"code": "busy", "message": "later"})
    server.route("GET", "/v1/info", busy, respond(json={"name": "app"}))
    with Client(api_key=KEY, base_url=server.base_url, max_retries=2) as client:
        otel.instrument(client)
        assert client.dify.get_info().name == "app"
    (span,) = otel.finished()
    assert span.name == "dify.get_info"
    assert span.attributes["dify.attempts"] == 2
    assert span.attributes["http.response.status_code"] == 200
    assert [(e.name, dict(e.attributes)) for e in span.events] == [
        (
            "retry",
            {
                "dify.retry.attempt": 1,
                "dify.retry.delay": sleeps[0],
                "dify.retry.reason": "HTTP 503",
            },
        )
    ]
    # Both attempts carry the one span's trace context.
    sent = [_traceparent(r) for r in server.requests_to("/v1/info")]
    assert sent == [_wire_id(span)] * 2
    assert otel.metrics()["dify.client.retries"] == [
        ({"dify.operation": "dify.get_info", "dify.retry.reason": "HTTP 503"}, 1)
    ]


def test_a_429_is_counted_and_the_span_records_the_error(
    otel: Telemetry, server: FaultServer
) -> None:
    capped = respond(429, json={"code": "too_many_requests", "message": "slow down"})
    server.route("GET", "/v1/info", capped)
    with Client(api_key=KEY, base_url=server.base_url, max_retries=0) as client:
        otel.instrument(client)
        with pytest.raises(RateLimitError):
            client.dify.get_info()
        with pytest.raises(RateLimitError):
            client.dify.get_info()
    spans = otel.finished()
    assert [s.attributes["http.response.status_code"] for s in spans] == [429, 429]
    assert spans[0].status.status_code is StatusCode.ERROR
    assert spans[0].attributes["error.type"] == "RateLimitError"
    assert [e.name for e in spans[0].events] == ["exception"]
    assert KEY not in str([e.attributes for s in spans for e in s.events])
    found = otel.metrics()
    assert found["dify.client.rate_limited"] == [({"dify.operation": "dify.get_info"}, 2)]
    assert found["dify.client.calls.in_flight"] == [({"dify.operation": "dify.get_info"}, 0)]


def test_a_stream_is_one_span_that_ends_with_the_stream(
    otel: Telemetry, server: FaultServer
) -> None:
    server.route("POST", "/v1/chat-messages", sse(STREAM))
    with Client(api_key=KEY, base_url=server.base_url) as client:
        otel.instrument(client)
        stream = client.chat.send(query="q", user="u", stream=True)
        first = next(stream)
        assert first.answer == "h" and otel.finished() == []  # open while the stream is
        assert otel.metrics()["dify.client.calls.in_flight"][0][1] == 1
        assert [type(e).__name__ for e in stream] == ["MessageEvent", "MessageEndEvent"]
        (span,) = otel.finished()
    attributes = dict(span.attributes)
    assert {
        k: attributes[k] for k in ("dify.task_id", "dify.message_id", "dify.conversation_id")
    } == {
        "dify.task_id": "t-1",
        "dify.message_id": "m-1",
        "dify.conversation_id": "c-1",
    }
    assert attributes["dify.events"] == 3  # the ping is not an event a caller sees
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["dify.usage.total_tokens"] == 18
    assert attributes["dify.usage.latency"] == 0.25
    (received,) = server.requests_to("/v1/chat-messages")
    assert _traceparent(received) == _wire_id(span)


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_async_calls_and_streams_are_traced_alike(
    otel: Telemetry, server: FaultServer, backend: str
) -> None:
    server.route("POST", "/v1/chat-messages", sse(STREAM))
    server.route("GET", "/v1/info", respond(json={"name": "app"}))
    async with AsyncClient(api_key=KEY, base_url=server.base_url, backend=backend) as client:
        otel.instrument(client)
        assert (await client.dify.get_info()).name == "app"
        stream = await client.chat.send(query="q", user="u", stream=True)
        assert [type(e).__name__ async for e in stream][-1] == "MessageEndEvent"
    info, chat = otel.finished()
    assert (info.name, chat.name) == ("dify.get_info", "chat.send")
    assert chat.attributes["dify.usage.total_tokens"] == 18
    assert chat.attributes["dify.message_id"] == "m-1"
    assert _traceparent(server.requests_to("/v1/info")[0]) == _wire_id(info)
    assert _traceparent(server.requests_to("/v1/chat-messages")[0]) == _wire_id(chat)


def test_a_stream_that_breaks_ends_its_span_with_the_error(
    otel: Telemetry, server: FaultServer
) -> None:
    server.route("POST", "/v1/chat-messages", sse(STREAM[:1], end="close"))
    with Client(api_key=KEY, base_url=server.base_url) as client:
        otel.instrument(client)
        stream = client.chat.send(query="q", user="u", stream=True)
        with pytest.raises(Exception, match="stream ended"):
            list(stream)
    (span,) = otel.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "StreamInterruptedError"
    assert span.attributes["dify.task_id"] == "t-1"


def test_a_call_refused_before_sending_still_has_a_span(otel: Telemetry) -> None:
    with Client(api_key=KEY, base_url="http://127.0.0.1:9/v1") as client:
        otel.instrument(client)
        with pytest.raises(InvalidArgumentsError):
            client.chat.send(user="u")
    (span,) = otel.finished()
    assert span.name == "chat.send" and span.attributes["error.type"] == "InvalidArgumentsError"
    assert "dify.attempts" not in span.attributes


def test_uninstrument_leaves_no_handler(otel: Telemetry, server: FaultServer) -> None:
    server.route("GET", "/v1/info", respond(json={"name": "app"}))
    with Client(api_key=KEY, base_url=server.base_url) as client:
        assert not client.hooks
        otel.instrument(client)
        otel.instrument(client)  # again: replaces, never doubles
        assert len(client.hooks.handlers("before-request", "dify.get_info")) == 1
        uninstrument(client)
        assert not client.hooks
        client.dify.get_info()
    assert otel.finished() == []
    assert all(k.lower() != "traceparent" for k, _ in server.requests_to("/v1/info")[0].headers)


def test_importing_the_sdk_never_imports_opentelemetry() -> None:
    code = (
        "import sys, dify_oapi\n"
        "c = dify_oapi.Client(api_key='app-x', base_url='http://127.0.0.1:9/v1')\n"
        "assert not c.hooks\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_workflow_stream_carries_its_run_id_and_token_count(
    otel: Telemetry, server: FaultServer
) -> None:
    run = {"task_id": "t-2", "workflow_run_id": "wr-2"}
    server.route(
        "POST",
        "/v1/workflows/run",
        sse(
            frames(
                [
                    {"event": "workflow_started", **run, "data": {"id": "wr-2"}},
                    {"event": "text_chunk", **run, "data": {"text": "ok"}},
                    {
                        "event": "workflow_finished",
                        **run,
                        "data": {
                            "id": "wr-2",
                            "status": "succeeded",
                            "total_tokens": 42,
                            "elapsed_time": 1.5,
                        },
                    },
                ]
            )
        ),
    )
    with Client(api_key=KEY, base_url=server.base_url) as client:
        otel.instrument(client)
        with client.workflow.run(inputs={}, user="u", stream=True) as stream:
            assert stream.collect().data.total_tokens == 42
    (span,) = otel.finished()
    assert span.name == "workflow.run"
    assert span.attributes["url.template"] == "/workflows/run"
    assert span.attributes["dify.workflow_run_id"] == "wr-2"
    assert span.attributes["dify.task_id"] == "t-2"
    assert span.attributes["dify.usage.total_tokens"] == 42
    assert span.attributes["dify.usage.latency"] == 1.5
    assert span.status.status_code is StatusCode.UNSET


def test_a_collected_stream_that_fails_keeps_the_ids_it_received(
    otel: Telemetry, server: FaultServer
) -> None:
    server.route("POST", "/v1/chat-messages", sse(STREAM[:1], end="close"))
    with Client(api_key=KEY, base_url=server.base_url) as client:
        otel.instrument(client)
        with pytest.raises(Exception, match="stream ended"):
            client.chat.send(query="q", user="u", collect=True)
    (span,) = otel.finished()
    assert span.attributes["error.type"] == "StreamInterruptedError"
    assert span.attributes["dify.message_id"] == "m-1"
    assert span.attributes["dify.events"] == 1
