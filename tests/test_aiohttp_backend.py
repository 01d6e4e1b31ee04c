"""AsyncClient(backend="aiohttp") over a real socket on 127.0.0.1: the request on the wire is
the one httpx sends, environment proxies are honoured as httpx honours them, a client works
across event loops."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import re
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from dify_oapi import APIConnectionError, AsyncClient, ConfigurationError, DifyError

from .conftest import KEY
from .faults.server import FaultServer, closed_port, respond, sse

pytest.importorskip("aiohttp")


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.seen.append((self.command, self.path, self.headers["authorization"], body))
        if json.loads(body)["response_mode"] == "streaming":
            payload = (
                b'data: {"event": "message", "answer": "hi ", "task_id": "t"}\n\n'
                b'data: {"event": "message_end", "task_id": "t"}\n\n'
            )
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
        else:
            payload = json.dumps({"answer": "blocking", "task_id": "t"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


async def test_aiohttp_backend_blocking_and_streaming(server: str) -> None:
    Handler.seen.clear()
    async with AsyncClient(api_key=KEY, base_url=server, backend="aiohttp") as client:
        answer = await client.chat.send(query="q", user="u")
        stream = await client.chat.send(query="q", user="u", stream=True)
        events = [event async for event in stream]
    assert answer.answer == "blocking"
    assert stream.answer == "hi " and len(events) == 2
    assert [(m, p, a) for m, p, a, _ in Handler.seen] == [
        ("POST", "/v1/chat-messages", f"Bearer {KEY}")
    ] * 2
    assert Handler.seen[0][3] == b'{"query":"q","user":"u","inputs":{},"response_mode":"blocking"}'


def test_backend_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="backend must be"):
        AsyncClient(api_key=KEY, backend="curl")


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


# -- the request on the wire is the one httpx sends ------------------------------------------

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("chat.send", {"query": 'héllo "q"', "user": "u", "inputs": {"n": 1}}),
    ("chat.send", {"query": "q", "user": "u", "stream": True}),
    (
        "chat.list_messages",
        {
            "conversation_id": "5a1e0000-0000-4000-8000-000000000005",
            "user": "ü &x=1/../x?y",
            "limit": 5,
        },
    ),
    (
        "chat.delete_conversation",
        {"conversation_id": "5a1e0000-0000-4000-8000-000000000006", "user": "u"},
    ),
    ("dify.get_info", {"extra_headers": {"X-Trace-Id": "t-1"}}),
]


@pytest.mark.parametrize(("op", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
async def test_the_request_on_the_wire_is_the_one_httpx_sends(
    fault_server: FaultServer, op: str, kwargs: dict[str, Any]
) -> None:
    for backend in ("httpx", "aiohttp"):
        async with AsyncClient(
            api_key=KEY, base_url=fault_server.base_url, backend=backend, max_retries=0
        ) as client:
            with contextlib.suppress(DifyError):  # the server answers 404
                await client.call(op, **kwargs)
    by_httpx, by_aiohttp = fault_server.requests
    assert (by_aiohttp.method, by_aiohttp.target) == (by_httpx.method, by_httpx.target)
    assert by_aiohttp.body == by_httpx.body
    assert by_aiohttp.headers == by_httpx.headers  # names, values and order


def multipart_normalised(request: Any) -> tuple[list[tuple[str, str]], bytes]:
    content_type = request.header("content-type")
    boundary = content_type.split("boundary=", 1)[1].encode()
    headers = [(k, v.replace(boundary.decode(), "B")) for k, v in request.headers]
    return headers, request.body.replace(boundary, b"B")


async def test_a_streamed_upload_is_the_one_httpx_sends(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    path = tmp_path / "doc.bin"
    path.write_bytes(bytes(range(256)) * (3 * 1024))  # 768 KiB: a streamed body, kept whole
    fault_server.route(
        "POST",
        "/v1/files/upload",
        respond(201, json={"id": "f0000000-0000-4000-8000-000000000001"}),
    )
    for backend in ("httpx", "aiohttp"):
        async with AsyncClient(
            api_key=KEY, base_url=fault_server.base_url, backend=backend
        ) as client:
            assert (
                await client.dify.upload_file(file=path, user="u")
            ).id == "f0000000-0000-4000-8000-000000000001"
    by_httpx, by_aiohttp = fault_server.requests_to("/v1/files/upload")
    assert by_aiohttp.body_len == by_httpx.body_len > 768 * 1024
    assert multipart_normalised(by_aiohttp) == multipart_normalised(by_httpx)


# -- environment proxies ---------------------------------------------------------------------

PROXY_VARIABLES = [
    name for scheme in ("http", "https", "all", "no") for name in (f"{scheme}_proxy",
    f"{scheme.upper()}_PROXY")
]  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def proxy() -> Iterator[FaultServer]:
    """A forward proxy: answers absolute-form requests itself, recording each."""
    with FaultServer() as srv:
        yield srv


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_the_environment_proxy_carries_the_request(
    env: pytest.MonkeyPatch, proxy: FaultServer, variable: str
) -> None:
    origin = f"http://127.0.0.1:{closed_port()}"  # nothing listens: only the proxy answers
    proxy.route("GET", origin + "/v1/info", respond(json={"name": "via proxy"}))
    env.setenv(variable, proxy.origin)
    async with AsyncClient(api_key=KEY, base_url=origin + "/v1", backend="aiohttp") as client:
        assert (await client.dify.get_info()).name == "via proxy"
    (seen,) = proxy.requests
    assert (seen.method, seen.target) == ("GET", origin + "/v1/info")  # absolute form
    assert seen.header("host") == origin.removeprefix("http://")
    assert seen.header("authorization") == f"Bearer {KEY}"


def routed(proxy: FaultServer, server: FaultServer) -> tuple[int, int]:
    return len(proxy.requests), len(server.requests)


ENVIRONMENTS: list[dict[str, str]] = [
    {"HTTP_PROXY": "{proxy}"},
    {"http_proxy": "{proxy}", "HTTP_PROXY": "http://127.0.0.1:9"},  # lower case wins
    {"HTTPS_PROXY": "{proxy}"},  # not for http
    {"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1"},
    {"HTTP_PROXY": "{proxy}", "no_proxy": "example.com, 127.0.0.1:{port}"},
    {"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1:1"},  # another port: still proxied
    {"HTTP_PROXY": "{proxy}", "NO_PROXY": "*"},
    {"ALL_PROXY": "{proxy}", "NO_PROXY": "http://127.0.0.1"},
    {"HTTP_PROXY": "{bare}"},  # no scheme: http
]


@pytest.mark.parametrize(
    "variables", ENVIRONMENTS, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items())
)
async def test_proxy_choice_is_httpx_s(
    env: pytest.MonkeyPatch,
    proxy: FaultServer,
    fault_server: FaultServer,
    variables: dict[str, str],
) -> None:
    fault_server.route("GET", "/v1/info", respond(json={"name": "direct"}))
    proxy.route("GET", fault_server.base_url + "/info", respond(json={"name": "via proxy"}))
    for name, value in variables.items():
        env.setenv(
            name,
            value.format(proxy=proxy.origin, bare=proxy.origin[7:], port=fault_server.port),
        )
    answers = {}
    for backend in ("httpx", "aiohttp"):
        before = routed(proxy, fault_server)
        async with AsyncClient(
            api_key=KEY, base_url=fault_server.base_url, backend=backend, max_retries=0
        ) as client:
            answers[backend] = (await client.dify.get_info()).name
        after = routed(proxy, fault_server)
        assert sum(after) - sum(before) == 1
    assert answers["aiohttp"] == answers["httpx"], answers


async def test_https_through_a_proxy_is_a_connect_tunnel(
    env: pytest.MonkeyPatch, proxy: FaultServer
) -> None:
    authority = f"127.0.0.1:{closed_port()}"
    proxy.route("CONNECT", authority, respond(407, headers={"Proxy-Authenticate": "Basic"}))
    env.setenv("HTTPS_PROXY", proxy.origin)
    async with AsyncClient(
        api_key=KEY, base_url=f"https://{authority}/v1", backend="aiohttp", max_retries=2
    ) as client:
        with pytest.raises(APIConnectionError, match="407") as info:
            await client.dify.get_info()
    (seen,) = proxy.requests  # refused by the proxy: not retried
    assert (seen.method, seen.target) == ("CONNECT", authority)
    assert seen.header("authorization") is None  # the key never goes to the proxy
    assert KEY not in repr(info.value) and KEY not in str(info.value.__cause__)


async def test_proxy_credentials_are_sent_and_never_shown(
    env: pytest.MonkeyPatch, proxy: FaultServer
) -> None:
    origin = f"http://127.0.0.1:{closed_port()}"
    proxy.route("GET", origin + "/v1/info", respond(json={"name": "via proxy"}))
    env.setenv("HTTP_PROXY", f"http://user:pr0xy-pw@127.0.0.1:{proxy.port}")
    async with AsyncClient(api_key=KEY, base_url=origin + "/v1", backend="aiohttp") as client:
        assert (await client.dify.get_info()).name == "via proxy"
    expected = "Basic " + base64.b64encode(b"user:pr0xy-pw").decode()
    assert proxy.requests[0].header("proxy-authorization") == expected

    env.setenv("HTTP_PROXY", f"http://user:pr0xy-pw@127.0.0.1:{closed_port()}")
    async with AsyncClient(
        api_key=KEY, base_url=origin + "/v1", backend="aiohttp", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError, match="proxy") as info:
            await client.dify.get_info()
    seen: BaseException | None = info.value
    while seen is not None:
        assert "pr0xy-pw" not in f"{seen} {seen!r} {seen.args!r}"
        seen = seen.__cause__ or seen.__context__


def test_an_unsupported_proxy_is_a_configuration_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("ALL_PROXY", "socks5://user:s0cks-pw@127.0.0.1:1080")
    with pytest.raises(ConfigurationError, match="socks5") as info:
        AsyncClient(api_key=KEY, backend="aiohttp")
    assert "s0cks-pw" not in str(info.value)


# -- NO_PROXY rules, entry by entry, against httpx's own reading -------------------------------

RULE_ENVIRONMENTS = [
    {"HTTP_PROXY": "http://p:1"},
    {"http_proxy": "p:2", "HTTPS_PROXY": "http://p:3", "ALL_PROXY": "http://p:4"},
    {
        "ALL_PROXY": "http://p:4",
        "NO_PROXY": "example.com,.internal,10.1.2.3,::1,localhost,host:8080,"
        "http://only-http.org, 192.168.0.0/16",
    },
    {"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"},
]
RULE_URLS = [
    "http://example.com",
    "http://www.example.com",
    "http://wwwexample.com",
    "http://internal",
    "http://a.internal",
    "http://10.1.2.3:5000",
    "http://[::1]:80",
    "http://localhost",
    "http://host:8080",
    "http://host:9090",
    "http://only-http.org",
    "https://only-http.org",
    "http://192.168.0.0",
    "http://192.168.3.4",
    "https://example.org",
    "http://other.org",
]


def httpx_choice(client: httpx.AsyncClient, url: str) -> str | None:
    """The proxy httpx's own client picks for ``url`` (from its mounted transports)."""
    transport = client._transport_for_url(httpx.URL(url))
    if transport is client._transport:
        return None
    proxy_url = transport._pool._proxy_url  # type: ignore[attr-defined]
    return f"{proxy_url.host.decode()}:{proxy_url.port}"


@pytest.mark.parametrize("variables", RULE_ENVIRONMENTS, ids=lambda e: ",".join(e))
def test_proxy_rules_match_httpx(env: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    from dify_oapi._transport._aiohttp import _EnvProxies

    for name, value in variables.items():
        env.setenv(name, value)
    rules = _EnvProxies.read()
    reference = httpx.AsyncClient()
    for url in RULE_URLS:
        chosen = rules.choose(httpx.URL(url)) if rules is not None else None
        mine = f"{chosen.host}:{chosen.port}" if chosen is not None else None
        assert mine == httpx_choice(reference, url), url


# -- one client, several event loops ---------------------------------------------------------


def _asking(server: FaultServer) -> tuple[AsyncClient, Any]:
    """An aiohttp client of ``server`` and a coroutine function asking for the app's name."""
    server.route("GET", "/v1/info", respond(json={"name": "again"}))
    client = AsyncClient(api_key=KEY, base_url=server.base_url, backend="aiohttp")

    async def ask() -> str:
        return (await client.dify.get_info()).name

    return client, ask


def test_one_client_in_two_event_loops(
    fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    client, ask = _asking(fault_server)
    gc.collect()  # what earlier tests left for the collector is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            assert asyncio.run(ask()) == "again"  # a new session in each loop
            # asyncio.run() finished the loop's session before closing the loop: its pooled
            # socket is closed then, not left open until a garbage collection.
            assert fault_server.wait_idle(timeout=2.0), fault_server.open_connections
        asyncio.run(client.close())
        gc.collect()
    assert len(fault_server.requests) == 2
    assert fault_server.accepted == 2
    # Only this test's: a socket to this server, or an aiohttp session or connector.
    marks = (f":{fault_server.port}", f", {fault_server.port})", "Unclosed", "connector")
    ours = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and any(m in str(w.message) for m in marks)
    ]
    assert ours == []
    assert "Unclosed" not in caplog.text


def test_a_loop_closed_by_hand_leaves_no_error_behind(
    fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A loop closed without finishing its async generators cannot close the session it
    # holds; the next loop's first call lets it go, and nothing tries to use the closed loop.
    client, ask = _asking(fault_server)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(ask()) == "again"
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(ask()) == "again"
        asyncio.run(client.close())
        gc.collect()
    assert "Event loop is closed" not in caplog.text
    assert not [w for w in caught if "Event loop is closed" in str(w.message)]
    assert len(fault_server.requests) == 2


async def test_a_full_pool_is_a_pool_timeout_and_a_slow_connect_a_connect_timeout(
    fault_server: FaultServer,
) -> None:
    # Below the SDK (whose own slots make the pool wait): aiohttp reports both as one error.
    from dify_oapi._transport._pool import _aiohttp_transport

    fault_server.route("GET", "/v1/held", sse([b"data: {}\n\n"], end="stall"))
    fault_server.route("GET", "/v1/free", respond(json={"x": 1}))
    transport = _aiohttp_transport(httpx.Limits(max_connections=1), True)
    timeout = httpx.Timeout(2.0, connect=0.2, pool=0.3)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
        held = await http.send(
            http.build_request("GET", fault_server.base_url + "/held"), stream=True
        )
        started = time.monotonic()
        with pytest.raises(httpx.PoolTimeout):
            await http.get(fault_server.base_url + "/free")
        assert 0.3 <= time.monotonic() - started < 1.5
        await held.aclose()
        assert (await http.get(fault_server.base_url + "/free")).json() == {"x": 1}
    from .faults.server import backlogged

    jam = backlogged()
    try:
        transport = _aiohttp_transport(httpx.Limits(max_connections=1), True)
        async with httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(2.0, connect=0.2)
        ) as http:
            with pytest.raises(httpx.ConnectTimeout):
                await http.get(f"http://127.0.0.1:{jam.port}/")
    finally:
        jam.close()


def test_header_spelling_is_kept() -> None:
    from dify_oapi._transport._aiohttp import _header_args

    raw = [(b"X-Trace-Id", b"a"), (b"x-trace-id", b"b"), (b"Transfer-Encoding", b"chunked")]
    assert list(_header_args(raw, False, False)["headers"].items()) == [
        ("X-Trace-Id", "a"),
        ("x-trace-id", "b"),
        ("Transfer-Encoding", "chunked"),
    ]
    assert not re.search("transfer", str(list(_header_args(raw, True, False)["headers"])), re.I)


async def test_a_bare_request_gets_no_header_from_aiohttp(fault_server: FaultServer) -> None:
    # A request built by hand, without httpx's client defaults: nothing is added to it
    # (aiohttp would advertise encodings and a content type of its own).
    from dify_oapi._transport._pool import _aiohttp_transport

    transport = _aiohttp_transport(httpx.Limits(), True)
    request = httpx.Request("POST", fault_server.base_url + "/x", content=b"abc")
    response = await transport.handle_async_request(request)
    await response.aclose()
    await transport.aclose()
    (seen,) = fault_server.requests
    assert seen.headers == [("host", f"127.0.0.1:{fault_server.port}"), ("content-length", "3")]
