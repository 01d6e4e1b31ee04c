"""Secrets: the API key never shows in an exception, a repr or a log record; it never goes to
another host (redirects, absolute-URL path parameters); nothing logged at INFO or above
carries a user id or a query string; TLS verification is on unless turned off explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from dify_oapi import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    Client,
    DifyError,
)

from .conftest import IDS, KEY, client_options, error_body
from .server import FaultServer, closed_port, frames, redirect, respond, sse

pytestmark = pytest.mark.faults

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
USER = "u-secret-4242"


def texts_of_error(error: BaseException) -> list[str]:
    """Everything an exception could print: its text, repr, traceback, causes, payloads."""
    out = ["".join(traceback.format_exception(error))]
    seen: BaseException | None = error
    while seen is not None:
        out += [str(seen), repr(seen), repr(seen.args)]
        for attr in ("partial", "body", "message", "code", "request_id", "operation"):
            out.append(repr(getattr(seen, attr, None)))
        seen = seen.__cause__ or seen.__context__
    return out


def texts_of_records(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    out = []
    for record in records:
        out += [formatter.format(record), repr(record.args), str(record.msg)]
    return out


def assert_no_key(texts: list[str], key: str = KEY) -> None:
    for text in texts:
        assert key not in text, text
        assert key[-12:] not in text, text  # not even a tail of it


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx's and httpcore's
    yield caplog


# -- the key in errors, reprs and logs -------------------------------------------------------


def failing_calls(server: FaultServer) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    server.route("GET", INFO, respond(503, json=error_body(503, "busy")))
    server.route(
        "POST", CHAT, sse(frames([{"event": "message", **IDS, "answer": "x"}]), end="reset")
    )
    server.route(
        "GET", "/v1/site", respond(401, json=error_body(401, "unauthorized", "Invalid key"))
    )
    refused = f"http://127.0.0.1:{closed_port()}/v1"
    return [
        ("dify.get_info", {}, {}),  # 503, retried twice
        ("dify.get_site", {}, {}),  # 401
        ("dify.get_meta", {}, {"base_url": refused}),  # connection refused, retried
        ("chat.send", {"query": "q", "user": USER, "stream": True}, {}),  # cut stream
    ]


def test_key_in_no_error_repr_or_log_record(
    server: FaultServer, sleeps: list[float], debug_logs: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []
    for op, kwargs, options in failing_calls(server):
        with Client(**client_options(server, **options)) as client:
            texts += [repr(client), str(client), repr(client.with_options(max_retries=1))]
            with pytest.raises(DifyError) as info:
                result = client.call(op, **kwargs)
                texts += [repr(result), str(result), repr(result.response)]
                list(result)
            texts += texts_of_error(info.value)
    assert len(sleeps) >= 4  # the retried calls really were retried
    assert any(r.name.startswith("dify_oapi") for r in debug_logs.records)
    assert_no_key(texts + texts_of_records(debug_logs.records))


async def test_async_key_in_no_error_or_log_record(
    server: FaultServer, sleeps: list[float], debug_logs: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []
    for op, kwargs, options in failing_calls(server):
        async with AsyncClient(**client_options(server, **options)) as client:
            texts.append(repr(client))
            with pytest.raises(DifyError) as info:
                result = await client.call(op, **kwargs)
                texts.append(repr(result))
                async for _ in result:
                    pass
            texts += texts_of_error(info.value)
    assert_no_key(texts + texts_of_records(debug_logs.records))


def test_key_in_no_repr_of_results(server: FaultServer) -> None:
    server.route("GET", INFO, respond(json={"name": "app"}))
    server.route(
        "GET",
        "/v1/files/5a1e0000-0000-4000-8000-000000000003/preview",
        respond(body=b"data", content_type="image/png"),
    )
    with Client(**client_options(server)) as client:
        raw = client.dify.get_info(raw=True)
        binary = client.dify.preview_file(
            file_id="5a1e0000-0000-4000-8000-000000000003", stream=True
        )
        texts = [repr(raw), str(raw), repr(raw.data), repr(binary), repr(client.dify)]
        binary.close()
    assert_no_key(texts)


@pytest.mark.parametrize(
    "key", ["app-SECRÉTKEY123456789", "app-SECRET\u200bKEY123456789"], ids=repr
)
def test_unsendable_key_is_not_echoed_by_the_error(server: FaultServer, key: str) -> None:
    server.route("GET", INFO, respond(json={"name": "app"}))
    with pytest.raises(Exception) as info:
        Client(**client_options(server, api_key=key)).dify.get_info()
    assert_no_key(texts_of_error(info.value), key)
    assert server.requests == []


def test_key_echoed_by_a_server_is_not_repeated(server: FaultServer) -> None:
    # A debugging proxy that echoes the request headers back in its error message.
    def echo_headers(ex: Any) -> None:
        auth = ex.request.header("authorization")
        respond(400, json=error_body(400, "bad_request", f"rejected headers: {auth}"))(ex)

    server.route("GET", INFO, echo_headers)
    with Client(**client_options(server)) as client, pytest.raises(APIStatusError) as info:
        client.dify.get_info()
    assert info.value.status_code == 400
    assert_no_key([str(info.value), repr(info.value), repr(info.value.message)])


# -- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    ("method", "op", "path", "kwargs"),
    [("GET", "dify.get_info", INFO, {}), ("POST", "chat.send", CHAT, {"query": "q", "user": "u"})],
    ids=["GET", "POST"],
)
def test_redirects_are_not_followed_by_default(
    server: FaultServer,
    other_server: FaultServer,
    sleeps: list[float],
    status: int,
    method: str,
    op: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    server.route(method, path, redirect(other_server.base_url + "/info", status))
    with Client(**client_options(server)) as client, pytest.raises(APIStatusError) as info:
        client.call(op, **kwargs)
    assert info.value.status_code == status
    assert len(server.requests) == 1 and other_server.requests == [] and sleeps == []


@pytest.mark.parametrize("status", [302, 307])
def test_followed_redirect_never_carries_the_key_to_another_host(
    server: FaultServer, other_server: FaultServer, status: int
) -> None:
    other_server.route("GET", INFO, respond(json={"name": "elsewhere"}))
    other_server.route("POST", "/v1/chat-messages", respond(json={"answer": "elsewhere"}))
    other_server.route("GET", "/v1/chat-messages", respond(json={"answer": "elsewhere"}))
    server.route("GET", INFO, redirect(other_server.base_url + "/info", status))
    server.route("POST", CHAT, redirect(other_server.base_url + "/chat-messages", status))
    # Same IP, another host name: still another origin.
    server.route("GET", "/v1/site", redirect(f"http://localhost:{server.port}/v1/moved", status))
    server.route("GET", "/v1/moved", respond(json={"title": "moved"}))
    # Same origin: the key may go along.
    server.route("GET", "/v1/meta", redirect("/v1/meta-here", status))
    server.route("GET", "/v1/meta-here", respond(json={"tool_icons": {}}))
    with Client(**client_options(server, follow_redirects=True)) as client:
        assert client.dify.get_info().name == "elsewhere"
        if status == 307:  # the same method and body go along, without the key
            client.chat.send(query="q", user="u")
        else:  # a POST is never re-sent as a body-less GET, nor ends as an empty success
            with pytest.raises(APIStatusError, match="a POST is not re-sent as a GET") as info:
                client.chat.send(query="q", user="u")
            assert info.value.status_code == status
        assert client.dify.get_site().title == "moved"
        client.dify.get_meta()
    assert len(other_server.requests) == (2 if status == 307 else 1)
    assert all(r.header("authorization") is None for r in other_server.requests)
    (moved,) = server.requests_to("/v1/moved")
    assert moved.header("authorization") is None
    (here,) = server.requests_to("/v1/meta-here")
    assert here.header("authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/steal",
        "//127.0.0.1:{port}/steal",
        "127.0.0.1:{port}",
        "@127.0.0.1:{port}",
    ],
)
def test_absolute_url_as_a_path_parameter_stays_home(
    server: FaultServer, other_server: FaultServer, template: str
) -> None:
    value = template.format(port=other_server.port)
    # The server answers 404 for the encoded path: an error is fine, a visit elsewhere not.
    with Client(**client_options(server, max_retries=0)) as client, contextlib.suppress(DifyError):
        client.dify.get_end_user(end_user_id=value)
    assert other_server.requests == [] and other_server.accepted == 0
    (received,) = server.requests
    assert received.path.startswith("/v1/end-users/") and received.path.count("/") == 3


# -- what is logged at INFO and above ----------------------------------------------------------


def test_nothing_logged_at_info_or_above_carries_a_user_or_a_query(
    server: FaultServer, sleeps: list[float], debug_logs: pytest.LogCaptureFixture
) -> None:
    server.route("GET", "/v1/messages", respond(503, json=error_body(503, "busy")))
    server.route("POST", CHAT, respond(429, json=error_body(429, "too_many_requests")))
    with Client(**client_options(server)) as client:
        with pytest.raises(APIStatusError):
            client.chat.list_messages(
                conversation_id="5a1e0000-0000-4000-8000-000000000004", user=USER
            )
        with pytest.raises(APIStatusError):
            client.chat.send(query="private question", user=USER)
    assert len(sleeps) == 4
    ours = [r for r in debug_logs.records if r.name.split(".")[0] == "dify_oapi"]
    assert ours, "the retries should have been logged at DEBUG"
    loud = [r for r in ours if r.levelno >= logging.INFO]
    for text in texts_of_records(loud):
        assert (
            USER not in text
            and "5a1e0000-0000-4000-8000-000000000004" not in text
            and "?" not in text
        )
        assert "private question" not in text
    # Even at DEBUG, the SDK's own lines name the operation, not the user or the query.
    for text in texts_of_records(ours):
        assert USER not in text and "private question" not in text


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tls_files: tuple[str, str]) -> Iterator[FaultServer]:
    srv = FaultServer(tls=tls_files)
    srv.route("GET", INFO, respond(json={"name": "over tls"}))
    try:
        yield srv
    finally:
        srv.close()


def test_tls_verification_is_on_by_default(tls_server: FaultServer, sleeps: list[float]) -> None:
    with Client(**client_options(tls_server)) as client:
        context = client._pool.http._transport._pool._ssl_context  # type: ignore[attr-defined]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        with pytest.raises(APIConnectionError) as info:
            client.dify.get_info()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate" in str(info.value)
    # A verification failure is not retried: one handshake, no waits.
    assert tls_server.accepted == 1 and tls_server.requests == [] and sleeps == []


async def test_async_tls_verification_is_on_by_default(tls_server: FaultServer) -> None:
    async with AsyncClient(**client_options(tls_server)) as client:
        with pytest.raises(APIConnectionError):
            await client.dify.get_info()
    assert tls_server.accepted == 1 and tls_server.requests == []


def test_turning_verification_off_is_explicit(
    tls_server: FaultServer, tls_files: tuple[str, str]
) -> None:
    with Client(**client_options(tls_server, verify=False)) as client:
        assert client.dify.get_info().name == "over tls"
    with Client(**client_options(tls_server, verify=tls_files[0])) as client:  # a CA bundle
        assert client.dify.get_info().name == "over tls"
    assert [r.header("authorization") for r in tls_server.requests] == [f"Bearer {KEY}"] * 2


def test_plain_http_behind_an_https_url_is_not_retried(sleeps: list[float]) -> None:
    # The server answers the TLS hello in plain HTTP: an SSL error, never retried.
    with FaultServer(greeting=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as plain:
        base = f"https://127.0.0.1:{plain.port}/v1"
        with Client(api_key=KEY, base_url=base) as client, pytest.raises(APIConnectionError):
            client.dify.get_info()
        assert plain.accepted == 1 and sleeps == []
