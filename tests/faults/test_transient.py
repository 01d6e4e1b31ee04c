"""Transient faults on a real socket, through the sync and the async client.

For each fault: is it retried, how often (the server's request log), with which waits (the
recorded sleeps), which typed error ends it, and does its message name the operation.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx
import pytest

from dify_oapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    InternalServerError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
)

from .conftest import IDS, Attempts, Caller, backoff_ok, error_body
from .server import (
    FaultServer,
    backlogged,
    closed_port,
    reset,
    reset_mid_body,
    respond,
    short_body,
    stall,
)

pytestmark = pytest.mark.faults

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
GET: tuple[str, dict[str, Any]] = ("dify.get_info", {})
POST: tuple[str, dict[str, Any]] = ("chat.send", {"query": "q", "user": "u"})
APP_INFO = {"name": "app", "description": "d", "tags": [], "mode": "chat"}
ANSWER = {"event": "message", **IDS, "id": "m-1", "mode": "chat", "answer": "ok", "metadata": {}}
BODY = json.dumps(APP_INFO).encode()


def expect_error(
    call: Caller, op: tuple[str, dict[str, Any]], cls: type[Exception], **kw: Any
) -> Any:
    with pytest.raises(cls) as info:
        call(op[0], **op[1], **kw)
    error = info.value
    assert type(error) is cls, repr(error)
    assert str(error).startswith(f"{op[0]}: "), str(error)
    assert error.operation == op[0]  # type: ignore[attr-defined]
    return error


# -- failures before any answer -------------------------------------------------------------


@pytest.mark.parametrize("op", [GET, POST], ids=["GET", "POST"])
def test_connection_refused_is_retried_for_every_method(
    call: Caller, sleeps: list[float], attempts: Attempts, op: tuple[str, dict[str, Any]]
) -> None:
    # Nothing listens: the request provably never reached Dify, so even a POST is retried.
    base = f"http://127.0.0.1:{closed_port()}/v1"
    error = expect_error(call, op, APIConnectionError, client_kwargs={"base_url": base})
    assert "ConnectError" in str(error)
    assert attempts.count == 3 and len(sleeps) == 2 and backoff_ok(sleeps)


@pytest.mark.parametrize("op", [GET, POST], ids=["GET", "POST"])
def test_connect_timeout_is_retried_for_every_method(
    call: Caller, sleeps: list[float], attempts: Attempts, op: tuple[str, dict[str, Any]]
) -> None:
    jam = backlogged()  # a listener whose accept queue is full: SYNs go unanswered
    try:
        options = {
            "base_url": f"http://127.0.0.1:{jam.port}/v1",
            "timeout": httpx.Timeout(2.0, connect=0.2),
        }
        error = expect_error(call, op, APITimeoutError, client_kwargs=options)
    finally:
        jam.close()
    assert "ConnectTimeout" in str(error)
    assert attempts.count == 3 and len(sleeps) == 2 and backoff_ok(sleeps)


def test_reset_before_any_answer_retries_a_get(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("GET", INFO, reset())
    error = expect_error(call, GET, APIConnectionError)
    assert not isinstance(error, APITimeoutError)
    assert len(server.requests_to(INFO)) == 3 and len(sleeps) == 2 and backoff_ok(sleeps)


def test_reset_before_any_answer_then_success(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("GET", INFO, reset(), respond(json=APP_INFO))
    assert call("dify.get_info").name == "app"
    assert len(server.requests_to(INFO)) == 2 and len(sleeps) == 1 and backoff_ok(sleeps)


def test_reset_before_any_answer_never_resends_a_post(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    # The POST reached the server: it may have started a (billed) generation.
    server.route("POST", CHAT, reset())
    expect_error(call, POST, APIConnectionError)
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


def test_reset_before_any_answer_resends_a_post_that_opted_in(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, reset(), respond(json=ANSWER))
    assert call(POST[0], **POST[1], retry_unsafe=True).answer == "ok"
    requests = server.requests_to(CHAT)
    assert len(requests) == 2 and len(sleeps) == 1
    assert requests[0].body == requests[1].body  # the same request, sent again unchanged


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(reset_mid_body(BODY, 10), id="reset-mid-json"),
        pytest.param(short_body(BODY[:10], len(BODY)), id="short-body"),
    ],
)
def test_broken_body_retries_a_get(
    call: Caller, server: FaultServer, sleeps: list[float], fault: Any
) -> None:
    server.route("GET", INFO, fault)
    expect_error(call, GET, APIConnectionError)
    assert len(server.requests_to(INFO)) == 3 and len(sleeps) == 2 and backoff_ok(sleeps)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(reset_mid_body(json.dumps(ANSWER).encode(), 10), id="reset-mid-json"),
        pytest.param(short_body(b'{"answer": "o', 200), id="short-body"),
    ],
)
def test_broken_body_never_resends_a_post(
    call: Caller, server: FaultServer, sleeps: list[float], fault: Any
) -> None:
    server.route("POST", CHAT, fault)
    expect_error(call, POST, APIConnectionError)
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


def test_broken_body_then_success_on_get(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("GET", INFO, short_body(BODY[:5], len(BODY)), respond(json=APP_INFO))
    assert call("dify.get_info").name == "app"
    assert len(server.requests_to(INFO)) == 2 and len(sleeps) == 1


SHORT_READ = {"timeout": httpx.Timeout(2.0, connect=1.0, read=0.3)}


def test_read_timeout_retries_a_get(call: Caller, server: FaultServer, sleeps: list[float]) -> None:
    server.route("GET", INFO, stall())
    error = expect_error(call, GET, APITimeoutError, client_kwargs=SHORT_READ)
    assert "ReadTimeout" in str(error)
    assert len(server.requests_to(INFO)) == 3 and len(sleeps) == 2 and backoff_ok(sleeps)


def test_read_timeout_never_resends_a_post(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, stall())
    expect_error(call, POST, APITimeoutError, client_kwargs=SHORT_READ)
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


def test_read_timeout_retries_a_safe_post(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    # knowledge.retrieve is a POST marked idempotent in its table row: a search, no writes.
    path = "/v1/datasets/d5000000-0000-4000-8000-000000000001/retrieve"
    server.route("POST", path, stall(), respond(json={"query": {"content": "q"}, "records": []}))
    result = call(
        "knowledge.retrieve",
        client_kwargs=SHORT_READ,
        dataset_id="d5000000-0000-4000-8000-000000000001",
        query="q",
    )
    assert result.records == []
    assert len(server.requests_to(path)) == 2 and len(sleeps) == 1


def test_per_call_timeout_overrides_the_client(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("GET", INFO, stall())
    expect_error(call, GET, APITimeoutError, timeout=0.3, max_retries=0)
    assert len(server.requests_to(INFO)) == 1 and sleeps == []


# -- error statuses ---------------------------------------------------------------------------


def too_many(headers: dict[str, str] | None = None, code: str = "too_many_requests") -> Any:
    return respond(429, json=error_body(429, code, "slow down"), headers=headers)


def test_429_retry_after_seconds_is_honoured_for_a_post(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    # Dify answers too_many_requests before any generation starts: safe to send again.
    server.route("POST", CHAT, too_many({"Retry-After": "7"}), respond(json=ANSWER))
    assert call("chat.send", **POST[1]).answer == "ok"
    assert sleeps == [7.0] and len(server.requests_to(CHAT)) == 2


def test_429_retry_after_http_date(call: Caller, server: FaultServer, sleeps: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 6, usegmt=True)
    server.route("POST", CHAT, too_many({"Retry-After": when}), respond(json=ANSWER))
    call("chat.send", **POST[1])
    assert len(sleeps) == 1 and 3.0 < sleeps[0] <= 6.0, sleeps
    assert len(server.requests_to(CHAT)) == 2


def test_429_without_retry_after_backs_off(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, too_many())
    error = expect_error(call, POST, RateLimitError)
    assert error.code == "too_many_requests" and error.status_code == 429
    assert len(server.requests_to(CHAT)) == 3 and len(sleeps) == 2 and backoff_ok(sleeps)


def test_retry_after_ms(call: Caller, server: FaultServer, sleeps: list[float]) -> None:
    server.route("GET", INFO, too_many({"retry-after-ms": "1500"}), respond(json=APP_INFO))
    call("dify.get_info")
    assert sleeps == [1.5]


@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": "61"}, {"retry-after-ms": "60001"}, {"Retry-After": "3600"}],
    ids=["61s", "60001ms", "1h"],
)
def test_retry_after_above_60s_raises_instead_of_sleeping(
    call: Caller, server: FaultServer, sleeps: list[float], headers: dict[str, str]
) -> None:
    server.route("POST", CHAT, too_many(headers))
    expect_error(call, POST, RateLimitError)
    assert sleeps == [] and len(server.requests_to(CHAT)) == 1


def test_retry_after_of_exactly_60s_is_slept(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, too_many({"Retry-After": "60"}), respond(json=ANSWER))
    call("chat.send", **POST[1])
    assert sleeps == [60.0]


@pytest.mark.parametrize("value", ["0", "-5", "soon", "Mon, 01 Jan 2001 00:00:00 GMT"], ids=str)
def test_unusable_retry_after_falls_back_to_backoff(
    call: Caller, server: FaultServer, sleeps: list[float], value: str
) -> None:
    server.route("GET", INFO, too_many({"Retry-After": value}), respond(json=APP_INFO))
    call("dify.get_info")
    assert len(sleeps) == 1 and backoff_ok(sleeps), sleeps


def test_quota_429_is_never_retried(call: Caller, server: FaultServer, sleeps: list[float]) -> None:
    server.route("GET", INFO, too_many({"Retry-After": "1"}, code="rate_limit_error"))
    error = expect_error(call, GET, RateLimitError)
    assert error.code == "rate_limit_error"
    assert sleeps == [] and len(server.requests_to(INFO)) == 1


def test_429_without_a_code_is_not_retried_for_a_post(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    # Without Dify's too_many_requests code nothing says the generation did not start.
    server.route("POST", CHAT, respond(429, body=b"slow down", content_type="text/plain"))
    expect_error(call, POST, RateLimitError)
    assert sleeps == [] and len(server.requests_to(CHAT)) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (408, APIStatusError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
    ],
)
def test_408_and_5xx_retry_a_get(
    call: Caller, server: FaultServer, sleeps: list[float], status: int, cls: type[Exception]
) -> None:
    server.route("GET", INFO, respond(status, json=error_body(status, "unavailable", "busy")))
    error = expect_error(call, GET, cls)
    assert error.status_code == status and error.code == "unavailable" and error.message == "busy"
    assert len(server.requests_to(INFO)) == 3 and len(sleeps) == 2 and backoff_ok(sleeps)


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_408_and_5xx_never_resend_a_post(
    call: Caller, server: FaultServer, sleeps: list[float], status: int
) -> None:
    server.route("POST", CHAT, respond(status, json=error_body(status, "unavailable")))
    with pytest.raises(APIStatusError) as info:
        call("chat.send", **POST[1])
    assert info.value.status_code == status
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_resends_a_post_that_opted_in(
    call: Caller, server: FaultServer, sleeps: list[float], status: int
) -> None:
    server.route("POST", CHAT, respond(status, json=error_body(status, "x")), respond(json=ANSWER))
    assert call("chat.send", **POST[1], retry_unsafe=True).answer == "ok"
    assert len(server.requests_to(CHAT)) == 2 and len(sleeps) == 1


@pytest.mark.parametrize(
    "body",
    [
        error_body(
            403,
            "forbidden",
            "Sorry, you have reached the knowledge base request rate limit of your subscription.",
        ),
        error_body(403, "rate_limit_error", "knowledge rate limit"),
    ],
    ids=["forbidden-rate-limit", "rate_limit_error"],
)
def test_knowledge_rate_limit_403_is_not_retried(
    call: Caller, server: FaultServer, sleeps: list[float], body: dict[str, Any]
) -> None:
    # Dify's knowledge API signals its rate limit with 403; a 403 is never retried.
    server.route("GET", "/v1/datasets", respond(403, json=body))
    with pytest.raises(PermissionDeniedError) as info:
        call("knowledge.list_datasets")
    error = info.value
    assert error.status_code == 403 and error.code == body["code"]
    assert "rate limit" in str(error) and str(error).startswith("knowledge.list_datasets: ")
    assert len(server.requests_to("/v1/datasets")) == 1 and sleeps == []


def test_retry_after_on_a_non_retryable_status_is_ignored(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route(
        "GET",
        INFO,
        respond(400, json=error_body(400, "invalid_param"), headers={"Retry-After": "1"}),
    )
    expect_error(call, GET, BadRequestError)
    assert sleeps == [] and len(server.requests_to(INFO)) == 1


# -- bad 200s and proxy pages -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"name": "app", "tags": [', "application/json"),  # malformed
        (BODY[: len(BODY) // 2], "application/json"),  # truncated, honestly framed
        (b'[{"name": "app"}]', "application/json"),  # wrong shape
        (b'{"name": 42}', "application/json"),  # wrong field type
        (BODY, "text/html; charset=utf-8"),  # JSON under the wrong content type
        (b"<html><body>Login required</body></html>", "text/html"),  # a captive portal
    ],
    ids=["malformed", "truncated", "array", "wrong-field-type", "html-type", "html-page"],
)
def test_bad_200_is_a_decode_error_and_not_retried(
    call: Caller, server: FaultServer, sleeps: list[float], body: bytes, content_type: str
) -> None:
    server.route("GET", INFO, respond(200, body=body, content_type=content_type))
    error = expect_error(call, GET, ResponseDecodeError)
    assert error.status_code == 200 and error.body == body
    assert len(server.requests_to(INFO)) == 1 and sleeps == []


def test_json_under_text_plain_still_decodes(call: Caller, server: FaultServer) -> None:
    # Lenient on purpose: some proxies rewrite the type of a valid JSON answer.
    server.route("GET", INFO, respond(200, body=BODY, content_type="text/plain"))
    assert call("dify.get_info").name == "app"


PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def test_proxy_html_502_is_retried_and_summarised(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("GET", INFO, respond(502, body=PROXY_PAGE, content_type="text/html"))
    error = expect_error(call, GET, InternalServerError)
    assert error.code is None and error.message == "Bad Gateway: 502 Bad Gateway"
    assert "<html>" not in str(error)
    assert len(server.requests_to(INFO)) == 3 and len(sleeps) == 2


def test_proxy_html_502_on_a_post_is_not_resent(
    call: Caller, server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, respond(502, body=PROXY_PAGE, content_type="text/html"))
    expect_error(call, POST, InternalServerError)
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []
