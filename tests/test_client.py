"""Client configuration, pool sharing, closing, and keeping the API key secret."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from dify_oapi import (
    AsyncClient,
    AuthenticationError,
    Client,
    ClientClosedError,
    ConfigurationError,
)

from .conftest import BASE, KEY
from .httpx_mock import HTTPXMock


def test_env_configuration(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    monkeypatch.setenv("DIFY_API_KEY", "app-from-env")
    monkeypatch.setenv("DIFY_BASE_URL", "http://self-hosted.local/v1/")
    httpx_mock.add_response(url="http://self-hosted.local/v1/info", json={"name": "x"})
    with Client() as client:
        assert client.base_url == "http://self-hosted.local/v1"
        client.dify.get_info()
    assert httpx_mock.get_requests()[0].headers["authorization"] == "Bearer app-from-env"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFY_BASE_URL", raising=False)
    client = Client(api_key="k")
    assert client.base_url == "https://api.dify.ai/v1"
    assert client.max_retries == 2
    assert client.timeout.connect == 5.0 and client.timeout.read == 120.0
    pool = client._pool.http._transport._pool  # type: ignore[attr-defined]
    assert (pool._max_connections, pool._max_keepalive_connections, pool._keepalive_expiry) == (
        100,
        20,
        30.0,
    )
    assert client._pool.http.follow_redirects is False
    client.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://dify.example.com/v1", "https://dify.example.com/v1"),
        ("https://dify.example.com/v1/", "https://dify.example.com/v1"),
        ("https://dify.example.com", "https://dify.example.com/v1"),
        ("https://dify.example.com/", "https://dify.example.com/v1"),
        ("http://localhost:5001/api/v1", "http://localhost:5001/api/v1"),
    ],
)
def test_base_url_normalization(given: str, expected: str) -> None:
    assert Client(api_key="k", base_url=given).base_url == expected


@pytest.mark.parametrize(
    "bad", ["dify.example.com/v1", "ftp://x/v1", "https:///v1", "https://x/v1?a=1"]
)
def test_bad_base_urls(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        Client(api_key="k", base_url=bad)


@pytest.mark.parametrize("bad", ["", "   ", " app-key", "app-key ", "app\nkey", "app key"])
def test_bad_api_keys(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Client(api_key=bad)
    assert bad.strip() not in str(info.value) or not bad.strip()


def test_missing_key_fails_before_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    with pytest.raises(ConfigurationError, match="no API key: pass api_key= or set DIFY_API_KEY"):
        Client(transport=transport)
    assert sent == []


def test_with_options_shares_the_pool(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"name": "a"}, is_reusable=True)
    base = Client(api_key=KEY, base_url=BASE)
    dataset = base.with_options(api_key="dataset-key", max_retries=0, timeout=3)
    assert dataset._pool.http is base._pool.http
    assert (dataset.max_retries, dataset.timeout.read) == (0, 3.0)
    assert (base.max_retries, base.timeout.read) == (2, 120.0)
    base.dify.get_info()
    dataset.dify.get_info()
    first, second = httpx_mock.get_requests()
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert second.headers["authorization"] == "Bearer dataset-key"
    dataset.close()  # a copy never closes the shared pool
    assert not base._pool.http.is_closed
    base.dify.get_info()
    with pytest.raises(ClientClosedError):
        dataset.dify.get_info()
    base.close()
    base.close()  # harmless twice
    assert base._pool.http.is_closed
    with pytest.raises(ClientClosedError):
        base.dify.get_info()


def test_user_http_client_is_not_closed(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"name": "a"})
    mine = httpx.Client(headers={"X-Mine": "1"})
    with Client(api_key=KEY, base_url=BASE, http_client=mine) as client:
        client.dify.get_info()
    assert not mine.is_closed
    assert httpx_mock.get_requests()[0].headers["x-mine"] == "1"
    mine.close()


def test_two_clients_do_not_share_pools() -> None:
    a, b = Client(api_key="k"), Client(api_key="k")
    assert a._pool.http is not b._pool.http
    a.close()
    assert not b._pool.http.is_closed
    b.close()


def test_default_headers_and_custom_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"name": "x"})

    client = Client(
        api_key=KEY,
        base_url=BASE,
        transport=httpx.MockTransport(handler),
        default_headers={"X-Tenant": "t1"},
    )
    client.dify.get_info()
    assert seen[0].headers["x-tenant"] == "t1"
    with pytest.raises(ConfigurationError):
        Client(api_key=KEY, default_headers={"X-Bad": "a\nb"})


def test_headers_on_the_wire_are_merged_once_case_insensitively() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"name": "x"}, headers={"Set-Cookie": "lb=node-2; Path=/"})

    client = Client(
        api_key=KEY,
        base_url=BASE,
        transport=httpx.MockTransport(handler),
        default_headers={"user-agent": "mine/1", "X-Tenant": "t1"},
    )
    client.dify.get_info(extra_headers={"x-tenant": "t2", "accept": "application/json"})
    # The second call goes through httpx's merging: the pool now holds a cookie to send back.
    client.with_options(default_headers={"X-Tenant": "t3"}).dify.get_info()
    first, second = seen
    assert first.headers.raw == [
        (b"Host", b"dify.test"),
        (b"Accept", b"application/json"),
        (b"Accept-Encoding", b"gzip, deflate"),
        (b"Connection", b"keep-alive"),
        (b"User-Agent", b"mine/1"),
        (b"x-tenant", b"t2"),
        # The key joins the headers last, when the request is built.
        (b"Authorization", f"Bearer {KEY}".encode()),
    ]
    assert first.extensions["timeout"] == client.timeout.as_dict()
    assert second.headers["x-tenant"] == "t3"
    assert second.headers["cookie"] == "lb=node-2"
    assert second.headers.get_list("user-agent") == ["mine/1"]
    assert second.headers["authorization"] == f"Bearer {KEY}"


async def test_async_client_lifecycle(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"name": "a"}, is_reusable=True)
    client = AsyncClient(api_key=KEY, base_url=BASE)
    other = client.with_options(api_key="other")
    assert (await other.dify.get_info()).name == "a"
    assert httpx_mock.get_requests()[0].headers["authorization"] == "Bearer other"
    await client.aclose()
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.dify.get_info()


def test_key_never_in_repr_errors_or_logs(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    httpx_mock.add_response(status_code=503, json={"code": "x", "message": "m"})
    httpx_mock.add_response(
        status_code=401, json={"code": "unauthorized", "message": "Access token is invalid"}
    )
    client = Client(api_key=KEY, base_url=BASE)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as info:
        client.dify.get_info()
    error = info.value
    texts = [
        repr(client),
        str(client),
        str(error),
        repr(error),
        caplog.text,
        repr(client.chat),
        repr(error.response),
        repr(error.response.request),
        repr(error.response.request.headers),
        repr(client.with_options(timeout=2)),
    ]
    for text in texts:
        assert KEY not in text and KEY[4:] not in text
    assert error.status_code == 401 and "Access token is invalid" in str(error)


def test_import_adds_no_handler_and_no_env() -> None:
    code = (
        "import logging, os; before = dict(os.environ); "
        "root = list(logging.getLogger().handlers); import dify_oapi; "
        "assert logging.getLogger().handlers == root; "
        "assert logging.getLogger('dify_oapi').handlers == []; "
        "assert dict(os.environ) == before; print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "ok", done.stderr


def test_operations_listing_and_dir() -> None:
    client = Client(api_key="k")
    names = client.operations
    assert (
        "chat.send" in names
        and "chat.chat" in names
        and "knowledge.document.create_by_text" in names
    )
    # The founding spelling still works with call(), but is listed as its attribute path.
    assert "chat.chat.chat" not in names
    assert client._endpoint("chat.chat.chat") is client._endpoint("chat.chat")
    assert {"chat", "knowledge", "workflow"} <= set(dir(client))
    assert "send" in dir(client.chat)
    with pytest.raises(AttributeError):
        client.nonexistent  # noqa: B018
    client.close()


def test_generated_method_signature_and_doc() -> None:
    import inspect

    sig = inspect.signature(Client.__dict__.get("chat") or Client(api_key="k").chat.send)
    params: dict[str, Any] = dict(sig.parameters)
    assert list(params)[:3] == ["request", "query", "user"]
    assert params["query"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "stream" in params and "api_key" in params
    assert "POST /chat-messages" in (Client(api_key="k").chat.send.__doc__ or "")


def test_in_flight_requests_are_bounded_by_the_pool(sleeps: list[float]) -> None:
    import threading
    import time

    lock = threading.Lock()
    active = peak = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        return httpx.Response(200, json={"name": "x"})

    client = Client(
        api_key=KEY,
        base_url=BASE,
        transport=httpx.MockTransport(handler),
        limits=httpx.Limits(max_connections=3),
    )
    threads = [threading.Thread(target=client.dify.get_info) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 3


def test_waiting_for_a_slot_honours_the_pool_timeout(httpx_mock: HTTPXMock) -> None:
    from dify_oapi import APITimeoutError

    from .conftest import SSE_HEADERS, sse

    httpx_mock.add_response(headers=SSE_HEADERS, content=sse([{"event": "message", "answer": "x"}]))
    client = Client(
        api_key=KEY,
        base_url=BASE,
        limits=httpx.Limits(max_connections=1),
        timeout=httpx.Timeout(5.0, pool=0.05),
        max_retries=0,
    )
    stream = client.chat.send(query="q", user="u", stream=True)  # holds the only slot
    with pytest.raises(APITimeoutError):
        client.dify.get_info()
    stream.close()  # gives the slot back
    httpx_mock.add_response(json={"name": "x"})
    assert client.dify.get_info().name == "x"


def test_a_blocking_call_imports_no_stream_batch_or_waiter_code() -> None:
    script = """
import sys, httpx, dify_oapi
seen = []
def handler(request):
    seen.append((request.method, str(request.url), request.content))
    return httpx.Response(200, json={"answer": "hi", "id": "m-1"})
client = dify_oapi.Client(api_key="app-k", base_url="http://h/v1", transport=httpx.MockTransport(handler))
print(client.chat.send(query="q", user="u").answer, seen)
mods = ("_streaming", "_batch", "_waiters", "_pagination")
print(sorted(m for m in mods if "dify_oapi." + m in sys.modules), "httpx_sse" in sys.modules)
print(dify_oapi.Stream.__name__, dify_oapi.WaiterFailedError.__mro__[2].__name__)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    body = b'{"query":"q","user":"u","inputs":{},"response_mode":"blocking"}'
    assert out == [
        f"hi [('POST', 'http://h/v1/chat-messages', {body!r})]",
        "[] False",
        "Stream DifyError",
    ]
