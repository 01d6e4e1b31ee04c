"""Typed errors by status, and the retry rules: what is re-sent, how often, after which wait."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import httpx
import pytest

from dify_oapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from dify_oapi._retry import RetryPolicy, retry_after_seconds

from .conftest import BASE, KEY
from .httpx_mock import HTTPXMock

CHAT = f"{BASE}/chat-messages"
INFO = f"{BASE}/info"


def error_body(status: int, code: str, message: str = "nope") -> dict[str, Any]:
    return {"status": status, "code": code, "message": message}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
        (415, UnsupportedMediaTypeError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (418, APIStatusError),
    ],
)
def test_status_errors_are_typed(
    client: Client, httpx_mock: HTTPXMock, status: int, cls: type[APIStatusError]
) -> None:
    httpx_mock.add_response(
        url=CHAT,
        status_code=status,
        json=error_body(status, "some_code", "went wrong"),
        headers={"x-request-id": "req-42"},
    )
    with pytest.raises(cls) as info:
        client.chat.send(query="q", user="u")
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.code, error.message) == (status, "some_code", "went wrong")
    assert error.request_id == "req-42" and error.operation == "chat.send"
    assert str(error) == f"chat.send: HTTP {status} some_code: went wrong (request id req-42)"
    assert len(httpx_mock.get_requests()) == 1  # a POST that may have run is never re-sent


def test_html_error_page_gives_a_useful_message(client: Client, httpx_mock: HTTPXMock) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"
    httpx_mock.add_response(
        url=INFO,
        status_code=502,
        content=page,
        headers={"content-type": "text/html"},
        is_reusable=True,
    )
    with pytest.raises(InternalServerError) as info:
        client.dify.get_info(max_retries=0)
    assert info.value.code is None
    assert info.value.message == "Bad Gateway: 502 Bad Gateway"
    assert "<html>" not in str(info.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"name": ', "application/json"),
        (b'{"name": 5}', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"<html>hi</html>", "text/html"),
    ],
)
def test_bad_2xx_bodies_are_decode_errors(
    client: Client, httpx_mock: HTTPXMock, body: bytes, content_type: str
) -> None:
    httpx_mock.add_response(url=INFO, content=body, headers={"content-type": content_type})
    with pytest.raises(ResponseDecodeError) as info:
        client.dify.get_info()
    assert info.value.operation == "dify.get_info" and info.value.status_code == 200


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_idempotent_get_is_retried_with_backoff(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float], status: int
) -> None:
    httpx_mock.add_response(url=INFO, status_code=status, json=error_body(status, "x"))
    httpx_mock.add_response(url=INFO, status_code=status, json=error_body(status, "x"))
    httpx_mock.add_response(url=INFO, json={"name": "ok"})
    assert client.dify.get_info().name == "ok"
    assert len(httpx_mock.get_requests()) == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_retries_are_bounded_then_the_last_error_is_raised(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_response(
        url=INFO, status_code=503, json=error_body(503, "busy"), is_reusable=True
    )
    with pytest.raises(InternalServerError):
        client.dify.get_info()
    assert len(httpx_mock.get_requests()) == 3 and len(sleeps) == 2
    with pytest.raises(InternalServerError):
        client.dify.get_info(max_retries=5)
    assert len(httpx_mock.get_requests()) == 3 + 6


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_post_generation_is_not_resent_on_server_errors(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float], status: int
) -> None:
    httpx_mock.add_response(url=CHAT, status_code=status, json=error_body(status, "x"))
    with pytest.raises(APIStatusError):
        client.chat.send(query="q", user="u")
    assert len(httpx_mock.get_requests()) == 1 and sleeps == []


def test_post_is_retried_on_too_many_requests(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_response(
        url=CHAT,
        status_code=429,
        json=error_body(429, "too_many_requests"),
        headers={"retry-after": "3"},
    )
    httpx_mock.add_response(url=CHAT, json={"answer": "ok"})
    assert client.chat.send(query="q", user="u").answer == "ok"
    assert sleeps == [3.0]


def test_quota_rate_limit_is_never_retried(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_response(url=INFO, status_code=429, json=error_body(429, "rate_limit_error"))
    with pytest.raises(RateLimitError) as info:
        client.dify.get_info()
    assert info.value.code == "rate_limit_error" and sleeps == []


def test_retry_after_http_date_and_ms(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    httpx_mock.add_response(url=INFO, status_code=503, headers={"retry-after": when}, json={})
    httpx_mock.add_response(url=INFO, status_code=503, headers={"retry-after-ms": "1500"}, json={})
    httpx_mock.add_response(url=INFO, json={"name": "ok"})
    client.dify.get_info()
    assert 8 <= sleeps[0] <= 10.5 and sleeps[1] == 1.5


def test_long_retry_after_raises_instead_of_sleeping(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_response(url=INFO, status_code=503, headers={"retry-after": "600"}, json={})
    with pytest.raises(InternalServerError):
        client.dify.get_info()
    assert sleeps == [] and len(httpx_mock.get_requests()) == 1


def test_connect_errors_are_retried_even_for_post(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("connection refused"), url=CHAT)
    httpx_mock.add_exception(httpx.ConnectTimeout("connect timed out"), url=CHAT)
    httpx_mock.add_response(url=CHAT, json={"answer": "ok"})
    assert client.chat.send(query="q", user="u").answer == "ok"
    assert len(sleeps) == 2


def test_read_timeout_on_post_is_not_resent(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), url=CHAT)
    with pytest.raises(APITimeoutError) as info:
        client.chat.send(query="q", user="u")
    assert "chat.send" in str(info.value)
    assert len(httpx_mock.get_requests()) == 1 and sleeps == []


def test_read_timeout_on_get_is_retried(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), url=INFO)
    httpx_mock.add_exception(httpx.RemoteProtocolError("reset"), url=INFO)
    httpx_mock.add_response(url=INFO, json={"name": "ok"})
    assert client.dify.get_info().name == "ok"
    assert len(sleeps) == 2


def test_retry_unsafe_opt_in_accepts_duplicates(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), url=CHAT)
    httpx_mock.add_response(url=CHAT, status_code=502, json={})
    httpx_mock.add_response(url=CHAT, json={"answer": "ok"})
    assert client.chat.send(query="q", user="u", retry_unsafe=True).answer == "ok"
    assert len(httpx_mock.get_requests()) == 3


def test_connection_error_after_retries_is_typed(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=INFO, is_reusable=True)
    with pytest.raises(APIConnectionError) as info:
        client.dify.get_info()
    assert not isinstance(info.value, APITimeoutError)
    assert str(info.value).startswith("dify.get_info: ConnectError")
    assert len(httpx_mock.get_requests()) == 3


def test_non_client_errors_are_not_retried(
    client: Client, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    for status in (400, 401, 403, 404, 409, 413, 415):
        httpx_mock.add_response(url=INFO, status_code=status, json=error_body(status, "c"))
        with pytest.raises(APIStatusError):
            client.dify.get_info()
    assert len(httpx_mock.get_requests()) == 7 and sleeps == []


def test_retries_are_logged_at_debug_without_secrets(
    client: Client, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/messages/a1000000-0000-4000-8000-0000000000a1/suggested?user=secret-user",
        status_code=503,
        json={},
    )
    httpx_mock.add_response(
        url=f"{BASE}/messages/a1000000-0000-4000-8000-0000000000a1/suggested?user=secret-user",
        json={"data": []},
    )
    with caplog.at_level(logging.DEBUG, logger="dify_oapi"):
        client.chat.get_suggested(
            message_id="a1000000-0000-4000-8000-0000000000a1", user="secret-user"
        )
    records = [r for r in caplog.records if r.name == "dify_oapi"]
    assert [r.levelno for r in records] == [logging.DEBUG]
    assert "chat.get_suggested: retry 1 of 2" in records[0].getMessage()
    text = caplog.text
    assert KEY not in text and "secret-user" not in text


def test_backoff_is_jittered_and_capped() -> None:
    policy = RetryPolicy(max_retries=10, base_delay=0.5, max_delay=8.0)
    delays = [policy.backoff(n) for n in range(1, 11)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert max(delays[6:]) <= 8.0 and min(delays[6:]) >= 4.0


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "garbage"}) is None
    assert retry_after_seconds({}) is None
    stamp = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds({"retry-after": stamp}, now=1_000_000) == 30


async def test_async_retries_and_errors(
    aclient: AsyncClient, httpx_mock: HTTPXMock, sleeps: list[float]
) -> None:
    httpx_mock.add_response(url=INFO, status_code=503, json={})
    httpx_mock.add_response(url=INFO, json={"name": "ok"})
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=CHAT)
    assert (await aclient.dify.get_info()).name == "ok"
    with pytest.raises(APITimeoutError):
        await aclient.chat.send(query="q", user="u")
    assert len(sleeps) == 1 and len(httpx_mock.get_requests()) == 3
