"""Client(backend="urllib3") over real sockets on 127.0.0.1: the request on the wire is the
one httpx sends, every failure phase is retried exactly as on httpx's own transport (a
generation POST never twice), and the pool, TLS, proxy, cap and stream-release rules hold."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from dify_oapi import (
    APIConnectionError,
    APITimeoutError,
    Client,
    ConfigurationError,
    DifyError,
    ResponseTooLargeError,
    StreamInterruptedError,
)
from dify_oapi.types import events as ev

from .faults.conftest import KEY, TIMEOUT, WF, sleeps, tls_files  # noqa: F401 (fixtures)
from .faults.server import (
    FaultServer,
    closed_port,
    frames,
    gzip_bomb,
    reset,
    reset_mid_body,
    respond,
    sse,
    stall,
)

pytest.importorskip("urllib3")

CHAT = "/v1/chat-messages"
INFO = "/v1/info"
RUN = [
    {"event": "message", **WF, "answer": "Hél"},
    {"event": "message", **WF, "answer": "lo"},
    {"event": "message_end", **WF, "id": "m-1", "metadata": {}},
]


def client(server: FaultServer, **options: Any) -> Client:
    given: dict[str, Any] = {
        "api_key": KEY,
        "base_url": server.base_url,
        "timeout": TIMEOUT,
        "max_retries": 2,
        "backend": "urllib3",
    }
    given.update(options)
    return Client(**given)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv
    assert srv.errors == []


# -- the request and the answer ----------------------------------------------------------------


def test_blocking_and_streaming_calls(server: FaultServer) -> None:
    server.route("POST", CHAT, respond(json={"answer": "blocking", **WF}), sse(frames(RUN)))
    with client(server) as c:
        answer = c.chat.send(query="q", user="u")
        stream = c.chat.send(query="q", user="u", stream=True)
        events = list(stream)
    assert answer.answer == "blocking" and answer.task_id == "t-1"
    assert events == [msgspec.convert(e, ev.ChatEvent) for e in RUN]
    assert stream.answer == "Héllo" and stream.message_id == "m-1"
    first, second = server.requests_to(CHAT)
    assert (first.method, first.target) == ("POST", "/v1/chat-messages")
    assert first.header("authorization") == f"Bearer {KEY}"
    assert first.header("content-type") == "application/json"
    assert first.body == b'{"query":"q","user":"u","inputs":{},"response_mode":"blocking"}'
    assert second.json()["response_mode"] == "streaming"
    assert second.conn_id == first.conn_id  # the connection was kept and reused


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("chat.send", {"query": 'héllo "q"', "user": "u", "inputs": {"n": 1}}),
    (
        "chat.list_messages",
        {"conversation_id": "3f0c5a4e-8b1d-4c2a-9e7f-1a2b3c4d5e6f", "user": "ü &x=1/../y?z"},
    ),
    ("chat.delete_conversation", {"conversation_id": "3f0c5a4e-8b1d-4c2a-9e7f-1a2b3c4d5e6f"}),
    ("dify.get_info", {"extra_headers": {"X-Trace-Id": "t-1"}}),
]


@pytest.mark.parametrize(("op", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
def test_the_request_on_the_wire_is_the_one_httpx_sends(
    server: FaultServer, op: str, kwargs: dict[str, Any]
) -> None:
    for backend in ("httpx", "urllib3"):
        with (
            client(server, backend=backend, max_retries=0) as c,
            pytest.raises(DifyError),
        ):  # nothing is routed: the server answers 404
            c.call(op, **kwargs)
    by_httpx, by_urllib3 = server.requests
    assert (by_urllib3.method, by_urllib3.target) == (by_httpx.method, by_httpx.target)
    assert by_urllib3.body == by_httpx.body
    assert by_urllib3.headers == by_httpx.headers  # names, values and order


def test_a_streamed_upload_is_sent_whole(server: FaultServer, tmp_path: Any) -> None:
    path = tmp_path / "doc.bin"
    data = bytes(range(256)) * (3 * 1024)
    path.write_bytes(data)
    server.route("POST", "/v1/files/upload", respond(201, json={"id": "f-1"}))
    with client(server) as c:
        assert c.dify.upload_file(file=path, user="u").id == "f-1"
    (seen,) = server.requests_to("/v1/files/upload")
    assert seen.body_len > len(data) and seen.header("content-type").startswith("multipart/")


# -- options -----------------------------------------------------------------------------------


def test_backend_pairing_is_checked() -> None:
    from dify_oapi import AsyncClient

    with pytest.raises(ConfigurationError, match="backend='aiohttp' is for AsyncClient"):
        Client(api_key=KEY, backend="aiohttp")  # type: ignore[typeddict-item]
    with pytest.raises(ConfigurationError, match="backend='urllib3' is for Client"):
        AsyncClient(api_key=KEY, backend="urllib3")  # type: ignore[typeddict-item]
    with pytest.raises(ConfigurationError, match="Client: backend must be 'httpx' or 'urllib3'"):
        Client(api_key=KEY, backend="curl")  # type: ignore[typeddict-item]
    with pytest.raises(ConfigurationError, match="makes its own transport"):
        Client(api_key=KEY, backend="urllib3", transport=httpx.MockTransport(lambda r: None))  # type: ignore[arg-type,return-value]


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "urllib3", None)  # import urllib3 now fails
    monkeypatch.delitem(sys.modules, "dify_oapi._transport._urllib3", raising=False)
    with pytest.raises(ConfigurationError, match=r"pip install 'dify-oapi2\[urllib3\]'"):
        Client(api_key=KEY, backend="urllib3")


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="verify"):
        Client(api_key=KEY, backend="urllib3", verify=str(tmp_path / "none.pem"))


# -- the retry matrix: what the server saw, per failure phase ----------------------------------


def refused_client(**options: Any) -> Client:
    return Client(
        api_key=KEY,
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        timeout=TIMEOUT,
        backend="urllib3",
        **options,
    )


def test_refused_is_retried_for_any_call(sleeps: list[float]) -> None:  # noqa: F811
    with (
        refused_client(max_retries=2) as c,
        pytest.raises(APIConnectionError, match="ConnectError"),
    ):
        c.chat.send(query="q", user="u")
    assert len(sleeps) == 2  # not sent: even a generation is tried again


PHASES = {
    "reset before the answer": (reset(), APIConnectionError, "ReadError"),
    "read timeout": (stall(5.0), APITimeoutError, "ReadTimeout"),
    "drop mid-body": (
        reset_mid_body(b'{"answer": "' + b"x" * 4000 + b'"}', 100),
        APIConnectionError,
        "ReadError",
    ),
}
READ_SHORT = httpx.Timeout(3.0, connect=1.0, read=0.3)


@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize(
    ("method", "path", "op", "kwargs", "tries"),
    [
        ("GET", INFO, "dify.get_info", {}, 3),
        ("POST", CHAT, "chat.send", {"query": "q", "user": "u"}, 1),
    ],
    ids=["GET", "generation POST"],
)
def test_retry_matrix(
    server: FaultServer,
    sleeps: list[float],  # noqa: F811
    phase: str,
    method: str,
    path: str,
    op: str,
    kwargs: dict[str, Any],
    tries: int,
) -> None:
    handler, error, kind = PHASES[phase]
    server.route(method, path, handler)
    with client(server, timeout=READ_SHORT, max_retries=2) as c, pytest.raises(error, match=kind):
        c.call(op, **kwargs)
    assert len(server.requests_to(path, method)) == tries
    assert len(sleeps) == tries - 1


def test_a_retried_get_then_succeeds(server: FaultServer, sleeps: list[float]) -> None:  # noqa: F811
    server.route("GET", INFO, reset(), respond(json={"name": "app"}))
    with client(server) as c:
        assert c.dify.get_info().name == "app"
    assert len(server.requests_to(INFO)) == 2 and len(sleeps) == 1


def test_read_timeout_mid_stream_keeps_the_partial(server: FaultServer) -> None:
    server.route("POST", CHAT, sse(frames(RUN[:2]), end="stall"))
    with client(server, timeout=READ_SHORT) as c:
        stream = c.chat.send(query="q", user="u", stream=True)
        received = []
        with pytest.raises(APITimeoutError) as info:
            for event in stream:
                received.append(event)
    partial = info.value.partial
    assert partial is not None and partial.events == received and len(received) == 2
    assert partial.answer == "Héllo" and partial.task_id == "t-1"
    assert len(server.requests_to(CHAT)) == 1


def test_a_stream_cut_mid_body_keeps_the_partial(server: FaultServer) -> None:
    server.route("POST", CHAT, sse(frames(RUN[:1]), end="reset"))
    with client(server) as c:
        stream = c.chat.send(query="q", user="u", stream=True)
        with pytest.raises(StreamInterruptedError) as info:
            list(stream)
    assert info.value.partial is not None and info.value.partial.answer == "Hél"
    assert len(server.requests_to(CHAT)) == 1


# -- the pool ------------------------------------------------------------------------------------


def test_pool_limit_holds_under_threads(server: FaultServer) -> None:
    def slow(ex: Any) -> None:
        time.sleep(0.1)
        respond(json={"name": "app"})(ex)

    server.route("GET", INFO, slow)
    names: list[str] = []
    with client(server, limits=httpx.Limits(max_connections=2)) as c:
        threads = [
            threading.Thread(target=lambda: names.append(c.dify.get_info().name)) for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert names == ["app"] * 6
    assert server.stats.max_open <= 2 and server.stats.max_in_flight == 2
    assert len(server.requests_to(INFO)) == 6


def test_a_stream_closed_early_gives_its_connection_back(server: FaultServer) -> None:
    server.route("POST", CHAT, sse(frames(RUN), end="stall"))
    server.route("GET", INFO, respond(json={"name": "app"}))
    with client(server, limits=httpx.Limits(max_connections=1)) as c:
        stream = c.chat.send(query="q", user="u", stream=True)
        assert next(iter(stream)).answer == "Hél"
        stream.close()
        assert c.dify.get_info().name == "app"
    (info,) = server.requests_to(INFO)
    assert info.conn_id != server.requests_to(CHAT)[0].conn_id  # the cut one was not reused


# -- TLS, proxies, caps ----------------------------------------------------------------------------


# verify=False is the caller's choice; urllib3 says so with its own warning on each request.
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_self_signed_is_refused_then_accepted_with_its_ca(
    tls_files: tuple[str, str],  # noqa: F811
    sleeps: list[float],  # noqa: F811
) -> None:
    with FaultServer(tls=tls_files) as tls:
        tls.route("GET", INFO, respond(json={"name": "secure"}))
        with client(tls) as c, pytest.raises(APIConnectionError, match="certificate verify failed"):
            c.dify.get_info()
        assert sleeps == []  # a certificate does not fix itself: not retried
        with client(tls, verify=tls_files[0]) as c:
            assert c.dify.get_info().name == "secure"
        with client(tls, verify=False) as c:
            assert c.dify.get_info().name == "secure"
        assert len(tls.requests_to(INFO)) == 2


PROXY_VARIABLES = [
    name for scheme in ("http", "https", "all", "no") for name in (f"{scheme}_proxy",
    f"{scheme.upper()}_PROXY")
]  # fmt: skip


def test_the_environment_proxy_carries_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    origin = f"http://127.0.0.1:{closed_port()}"  # nothing listens: only the proxy answers
    with FaultServer() as proxy:
        proxy.route("GET", origin + "/v1/info", respond(json={"name": "via proxy"}))
        monkeypatch.setenv("HTTP_PROXY", proxy.origin)
        with Client(api_key=KEY, base_url=origin + "/v1", backend="urllib3") as c:
            assert c.dify.get_info().name == "via proxy"
        (seen,) = proxy.requests
        assert (seen.method, seen.target) == ("GET", origin + "/v1/info")  # absolute form
        assert seen.header("authorization") == f"Bearer {KEY}"
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with (
            Client(api_key=KEY, base_url=origin + "/v1", backend="urllib3") as c,
            pytest.raises(APIConnectionError, match="ConnectError"),
        ):
            c.dify.get_info()
        assert len(proxy.requests) == 1  # bypassed: straight to the closed port


def test_a_gzip_bomb_is_capped(server: FaultServer) -> None:
    server.route("GET", INFO, gzip_bomb(64 << 20))
    with client(server, max_json_bytes=1 << 20) as c, pytest.raises(ResponseTooLargeError):
        c.dify.get_info()
    assert server.requests_to(INFO)[0].header("accept-encoding") == "gzip, deflate"
