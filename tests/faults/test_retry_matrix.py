"""The retry matrix: every failure kind against every kind of operation.

Keyed on whether the request could have reached Dify and whether re-running the operation
is harmless:

* always retried: connect errors, connect and pool timeouts, 429 ``too_many_requests``;
* retried only for idempotent operations (GET, PATCH, DELETE, POSTs marked idempotent, or a
  call with ``retry_unsafe=True``): 408, 5xx, read and write timeouts, read and protocol
  errors;
* never retried: 400, 401, 403, 404, 409, 413, 415, 429 ``rate_limit_error``, TLS
  verification errors, and anything after the first SSE event.

Every case counts the attempts that reached the transport and the requests the server
received: an unexpected retry, or a missing one, cannot hide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dify_oapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    Client,
    ResponseDecodeError,
    StreamInterruptedError,
)
from dify_oapi._exceptions import status_error_class

from .conftest import IDS, Attempts, backoff_ok, client_options, error_body
from .server import (
    FaultServer,
    backlogged,
    closed_port,
    frame,
    garbage,
    reset,
    respond,
    sse,
    stall,
)

pytestmark = pytest.mark.faults


@dataclass(frozen=True)
class Op:
    id: str
    name: str
    method: str
    path: str
    kwargs: dict[str, Any]
    idempotent: bool
    body_field: str | None = None  # a field that can be made huge (write timeouts)
    options: dict[str, Any] = field(default_factory=dict)


OPS = [
    Op("GET", "dify.get_info", "GET", "/v1/info", {}, True),
    Op(
        "DELETE",
        "knowledge.delete_dataset",
        "DELETE",
        "/v1/datasets/d5000000-0000-4000-8000-000000000001",
        {"dataset_id": "d5000000-0000-4000-8000-000000000001"},
        True,
    ),
    Op(
        "PATCH",
        "knowledge.update_dataset",
        "PATCH",
        "/v1/datasets/d5000000-0000-4000-8000-000000000001",
        {"dataset_id": "d5000000-0000-4000-8000-000000000001", "name": "n"},
        True,
        "name",
    ),
    Op(
        "safe-POST",
        "knowledge.retrieve",
        "POST",
        "/v1/datasets/d5000000-0000-4000-8000-000000000001/retrieve",
        {"dataset_id": "d5000000-0000-4000-8000-000000000001", "query": "q"},
        True,
        "query",
    ),
    Op(
        "POST",
        "chat.send",
        "POST",
        "/v1/chat-messages",
        {"query": "q", "user": "u"},
        False,
        "query",
    ),
    Op(
        "POST-opt-in",
        "chat.send",
        "POST",
        "/v1/chat-messages",
        {"query": "q", "user": "u"},
        True,
        "query",
        {"retry_unsafe": True},
    ),
]


@dataclass(frozen=True)
class Fault:
    id: str
    policy: str  # "always" | "idempotent" | "never"
    error: type[Exception]
    status: int | None = None
    code: str | None = None
    handler: Callable[[], Any] | None = None


def _status(status: int, code: str = "some_code", policy: str = "never") -> Fault:
    return Fault(
        f"{status}-{code}",
        policy,
        status_error_class(status),
        status,
        code,
        lambda: respond(status, json=error_body(status, code)),
    )


FAULTS = [
    Fault("connect-refused", "always", APIConnectionError),
    Fault("connect-timeout", "always", APITimeoutError),
    Fault("pool-timeout", "always", APITimeoutError),
    _status(429, "too_many_requests", "always"),
    _status(429, "rate_limit_error", "never"),
    _status(408, "request_timeout", "idempotent"),
    _status(500, "internal_server_error", "idempotent"),
    _status(502, "bad_gateway", "idempotent"),
    _status(503, "service_unavailable", "idempotent"),
    _status(504, "gateway_timeout", "idempotent"),
    Fault("read-timeout", "idempotent", APITimeoutError, handler=stall),
    Fault("write-timeout", "idempotent", APITimeoutError),
    Fault("read-error", "idempotent", APIConnectionError, handler=reset),
    Fault("protocol-error", "idempotent", APIConnectionError, handler=garbage),
    _status(400, "invalid_param"),
    _status(401, "unauthorized"),
    _status(403, "forbidden"),
    _status(404, "not_found"),
    _status(409, "conflict"),
    _status(413, "file_too_large"),
    _status(415, "unsupported_file_type"),
    Fault("tls-verification", "never", APIConnectionError),
]

FAST = httpx.Timeout(2.0, connect=0.2, read=0.3, write=0.3, pool=0.2)


def _expected_attempts(fault: Fault, op: Op) -> int:
    if fault.policy == "always" or (fault.policy == "idempotent" and op.idempotent):
        return 3
    return 1


@pytest.fixture
def tls_server(tls_files: tuple[str, str]) -> Iterator[FaultServer]:
    srv = FaultServer(tls=tls_files)
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.id)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
def test_retry_matrix(
    request: pytest.FixtureRequest,
    server: FaultServer,
    sleeps: list[float],
    attempts: Attempts,
    fault: Fault,
    op: Op,
) -> None:
    kwargs = dict(op.kwargs, **op.options)
    options = client_options(server, timeout=FAST)
    held: list[Any] = []  # what the pool-timeout case holds open
    jam = None
    counted_on_server = True
    if fault.id == "connect-refused":
        options["base_url"] = f"http://127.0.0.1:{closed_port()}/v1"
        counted_on_server = False
    elif fault.id == "connect-timeout":
        jam = backlogged()
        options["base_url"] = f"http://127.0.0.1:{jam.port}/v1"
        counted_on_server = False
    elif fault.id == "pool-timeout":
        options["limits"] = httpx.Limits(max_connections=1)
        server.route(
            "GET",
            "/v1/workflow/b0000000-0000-4000-8000-00000000000b/events",
            sse([frame({"event": "ping"})], end="stall"),
        )
    elif fault.id == "write-timeout":
        if op.body_field is None:
            pytest.skip(f"{op.method} sends no body")
        # The server reads the head but never the body: the client's writes block.
        server.route(op.method, op.path, stall(), read_body=False)
        kwargs[op.body_field] = "x" * (32 << 20)
    elif fault.id == "tls-verification":
        tls = request.getfixturevalue("tls_server")
        options["base_url"] = tls.base_url
        counted_on_server = False
    else:
        assert fault.handler is not None
        server.route(op.method, op.path, fault.handler())
    try:
        with Client(**options) as client:
            if fault.id == "pool-timeout":
                held.append(
                    client.workflow.stream_events(
                        workflow_run_id="b0000000-0000-4000-8000-00000000000b", user="u"
                    )
                )
                attempts.count = 0
            with pytest.raises(Exception) as info:
                client.call(op.name, **kwargs)
            for stream in held:
                stream.close()
    finally:
        if jam is not None:
            jam.close()
    error = info.value
    assert type(error) is fault.error, repr(error)
    assert str(error).startswith(f"{op.name}: ")
    if fault.status is not None:
        assert isinstance(error, APIStatusError)
        assert (error.status_code, error.code) == (fault.status, fault.code)
    expected = _expected_attempts(fault, op)
    if fault.id != "pool-timeout":  # a pool wait may end before the transport is reached
        assert attempts.count == expected, (attempts.count, expected)
    assert len(sleeps) == expected - 1 and backoff_ok(sleeps), sleeps
    if counted_on_server:
        reached = [r for r in server.requests if r.path == op.path]
        assert len(reached) == (0 if fault.id == "pool-timeout" else expected)
    if fault.id == "tls-verification":
        tls = request.getfixturevalue("tls_server")
        assert tls.accepted == expected and tls.requests == []


# -- streams: nothing is retried once an event has arrived ---------------------------------

STREAM_OPS = [
    ("POST", "chat.send", "/v1/chat-messages", {"query": "q", "user": "u"}),
    (
        "POST-opt-in",
        "chat.send",
        "/v1/chat-messages",
        {"query": "q", "user": "u", "retry_unsafe": True},
    ),
    (
        "GET",
        "workflow.stream_events",
        "/v1/workflow/a0000000-0000-4000-8000-000000000001/events",
        {"workflow_run_id": "a0000000-0000-4000-8000-000000000001", "user": "u"},
    ),
]


@pytest.mark.parametrize("end", ["reset", "close"])
@pytest.mark.parametrize(
    ("op_id", "name", "path", "kwargs"), STREAM_OPS, ids=[s[0] for s in STREAM_OPS]
)
def test_nothing_is_retried_after_the_first_event(
    client: Client,
    server: FaultServer,
    sleeps: list[float],
    op_id: str,
    name: str,
    path: str,
    kwargs: dict[str, Any],
    end: str,
) -> None:
    method = "GET" if op_id == "GET" else "POST"
    first = {
        "event": "text_chunk",
        **IDS,
        "workflow_run_id": "a0000000-0000-4000-8000-000000000001",
        "data": {"text": "half"},
    }
    server.route(method, path, sse([frame(first)], end=end))
    stream = client.call(name, **kwargs, **({"stream": True} if method == "POST" else {}))
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for event in stream:
            received.append(event)
    assert len(received) == 1
    assert info.value.partial is not None and info.value.partial.answer == "half"
    assert len(server.requests_to(path)) == 1 and sleeps == []


# -- httpx_sse.SSEError is an httpx.TransportError: a JSON answer is not a network error -----


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/html",
        None,
        pytest.param(
            "application/json; profile=text/event-stream",
        ),
    ],
)
@pytest.mark.parametrize(
    ("op_id", "name", "path", "kwargs"), STREAM_OPS, ids=[s[0] for s in STREAM_OPS]
)
def test_json_answer_to_a_stream_is_not_a_network_error(
    client: Client,
    server: FaultServer,
    sleeps: list[float],
    op_id: str,
    name: str,
    path: str,
    kwargs: dict[str, Any],
    content_type: str | None,
) -> None:
    method = "GET" if op_id == "GET" else "POST"
    body = error_body(200, "app_unavailable", "App unavailable")
    server.route(method, path, respond(200, json=body, content_type=content_type))
    with pytest.raises(Exception) as info:
        stream = client.call(name, **kwargs, **({"stream": True} if method == "POST" else {}))
        list(stream)
    error = info.value
    assert type(error) is ResponseDecodeError, repr(error)
    assert not isinstance(error, (APIConnectionError, httpx.TransportError))
    assert str(error).startswith(f"{name}: ")
    assert error.status_code == 200 and b"app_unavailable" in error.body
    assert len(server.requests_to(path)) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("op_id", "name", "path", "kwargs"), STREAM_OPS, ids=[s[0] for s in STREAM_OPS]
)
def test_json_error_status_to_a_stream_is_typed_and_not_retried(
    client: Client,
    server: FaultServer,
    sleeps: list[float],
    op_id: str,
    name: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    method = "GET" if op_id == "GET" else "POST"
    server.route(method, path, respond(400, json=error_body(400, "invalid_param", "bad input")))
    with pytest.raises(APIStatusError) as info:
        client.call(name, **kwargs, **({"stream": True} if method == "POST" else {}))
    assert (info.value.status_code, info.value.code) == (400, "invalid_param")
    assert len(server.requests_to(path)) == 1 and sleeps == []
