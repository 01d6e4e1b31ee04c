"""``AsyncClient(backend="aiohttp")`` under faults, on a real socket.

The same guarantees as the httpx clients: the retry matrix by failure phase (a POST the server
may have read is never sent again; a GET is retried exactly as configured), every failure a
typed ``DifyError`` without the key, TLS failures named and not retried, connections given
back on every path, a connection that read past its answer never reused, cancellation
propagated.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import pickle
import ssl
import subprocess
import time
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dify_oapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    DifyError,
    StreamInterruptedError,
)
from dify_oapi._transport._pool import _aiohttp_transport

from .conftest import KEY, WF, backoff_ok, client_options, client_sockets_to, eventually
from .server import (
    Exchange,
    FaultServer,
    backlogged,
    closed_port,
    frame,
    frames,
    garbage,
    reset,
    reset_mid_body,
    respond,
    short_body,
    sse,
    stall,
    stream_bytes,
)
from .test_retry_matrix import FAST, FAULTS, OPS, Fault, Op, _expected_attempts

pytest.importorskip("aiohttp")
pytestmark = pytest.mark.faults

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
PREVIEW = "/v1/files/f0000000-0000-4000-8000-000000000001/preview"
ASK: dict[str, Any] = {"query": "q", "user": "u"}
POOL2 = httpx.Limits(max_connections=2, max_keepalive_connections=2)


def aio(server: FaultServer | None = None, **overrides: Any) -> AsyncClient:
    if server is None:
        overrides.setdefault("base_url", f"http://127.0.0.1:{closed_port()}/v1")
        server = FaultServer(accept=False)
        server.close()
    return AsyncClient(**client_options(server, backend="aiohttp", **overrides))


class Counted(httpx.AsyncBaseTransport):
    """Counts the attempts that reach the aiohttp transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def counted(client: AsyncClient) -> Counted:
    counter = Counted(client._pool.http._transport)
    client._pool.http._transport = counter
    return counter


async def settled(predicate: Any, timeout: float = 3.0) -> bool:
    """Poll ``predicate`` (bounded) while the event loop runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())


def chain_of(error: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        seen = todo.pop()
        if seen is not None and all(seen is not e for e in out):
            out.append(seen)
            todo += [seen.__cause__, seen.__context__]
    return out


def assert_typed_without_key(error: BaseException) -> None:
    assert isinstance(error, DifyError), repr(error)
    texts = ["".join(traceback.format_exception(error))]
    for seen in chain_of(error):
        assert not type(seen).__module__.startswith("aiohttp"), repr(seen)
        texts += [str(seen), repr(seen), repr(seen.args)]
    for text in texts:
        assert KEY not in text and KEY[-12:] not in text, text
    assert KEY.encode() not in pickle.dumps(error)


@pytest.fixture
def tls_server(tls_files: tuple[str, str]) -> Iterator[FaultServer]:
    srv = FaultServer(tls=tls_files)
    srv.route("GET", INFO, respond(json={"name": "over tls"}))
    try:
        yield srv
    finally:
        srv.close()


# -- the retry matrix, as on the httpx clients ------------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.id)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
async def test_aiohttp_retry_matrix(
    request: pytest.FixtureRequest,
    server: FaultServer,
    sleeps: list[float],
    fault: Fault,
    op: Op,
) -> None:
    kwargs = dict(op.kwargs, **op.options)
    options: dict[str, Any] = {"timeout": FAST}
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
        server.route(op.method, op.path, stall(), read_body=False)
        kwargs[op.body_field] = "x" * (32 << 20)
    elif fault.id == "tls-verification":
        options["base_url"] = request.getfixturevalue("tls_server").base_url
        counted_on_server = False
    else:
        assert fault.handler is not None
        server.route(op.method, op.path, fault.handler())
    try:
        async with aio(server, **options) as client:
            attempts = counted(client)
            held = []
            if fault.id == "pool-timeout":
                held.append(
                    await client.workflow.stream_events(
                        workflow_run_id="b0000000-0000-4000-8000-00000000000b", user="u"
                    )
                )
            with pytest.raises(Exception) as info:
                await client.call(op.name, **kwargs)
            for stream in held:
                await stream.close()
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
    held_attempts = 1 if fault.id == "pool-timeout" else 0
    if fault.id != "pool-timeout":  # a pool wait ends before the transport is reached
        assert attempts.attempts == expected + held_attempts, (attempts.attempts, expected)
    assert len(sleeps) == expected - 1 and backoff_ok(sleeps), sleeps
    if counted_on_server:
        reached = [r for r in server.requests if r.path == op.path]
        assert len(reached) == (0 if fault.id == "pool-timeout" else expected)
    if fault.id == "tls-verification":
        tls = request.getfixturevalue("tls_server")
        assert tls.accepted == expected and tls.requests == []


def hang_up(ex: Exchange) -> None:
    """Read the request, then close cleanly (FIN) without a byte of answer."""
    ex.close()


def deaf(seconds: float = 5.0) -> Any:
    """Read the request head, then read nothing more: the client's writes block."""

    def handler(ex: Exchange) -> None:
        ex.server.stopping.wait(seconds)
        ex.abort()

    return handler


async def test_upload_the_server_stops_reading_ends_in_a_write_timeout(
    server: FaultServer, sleeps: list[float]
) -> None:
    server.route("POST", CHAT, deaf(), read_body=False)
    timeout = httpx.Timeout(10.0, connect=1.0, write=0.3)
    started = time.monotonic()
    async with aio(server, timeout=timeout, max_retries=3) as client:
        with pytest.raises(APITimeoutError, match="WriteTimeout") as info:
            await client.chat.send(query="x" * (32 << 20), user="u")
    assert time.monotonic() - started < 3
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []  # maybe sent: not again
    assert_typed_without_key(info.value)


@pytest.mark.parametrize(
    "handler",
    [reset(), hang_up, garbage(), stall()],
    ids=["reset", "hang-up", "not-http", "stall"],
)
async def test_post_the_server_may_have_read_is_sent_once(
    server: FaultServer, sleeps: list[float], handler: Any
) -> None:
    server.route("POST", CHAT, handler)
    async with aio(server, timeout=FAST, max_retries=3) as client:
        with pytest.raises(APIConnectionError):
            await client.chat.send(**ASK)
    assert len(server.requests_to(CHAT)) == 1 and sleeps == []


@pytest.mark.parametrize("retries", [1, 2, 3])
@pytest.mark.parametrize("handler", [reset(), hang_up], ids=["reset", "hang-up"])
async def test_get_is_retried_exactly_as_configured(
    server: FaultServer, sleeps: list[float], retries: int, handler: Any
) -> None:
    server.route("GET", INFO, handler)
    async with aio(server, timeout=FAST, max_retries=retries) as client:
        with pytest.raises(APIConnectionError):
            await client.dify.get_info()
    assert len(server.requests_to(INFO)) == retries + 1 and len(sleeps) == retries


# -- every failure is typed, and carries no key ----------------------------------------------

BODY = json.dumps({"name": "cut short"}).encode()
FAILURES: dict[str, Any] = {
    "reset": reset(),
    "hang-up": hang_up,
    "not-http": garbage(),
    "key-in-status-line": garbage(f"HTTP/1.1 2x0 Bearer {KEY}\r\n\r\n".encode()),
    "bad-header-line": garbage(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
    "huge-header": garbage(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"),
    "reset-mid-body": reset_mid_body(BODY, 5),
    "short-body": short_body(BODY, len(BODY) + 50),
    "bad-chunking": garbage(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\nzz\r\n\r\n'
    ),
    "stall-before-head": stall(),
    "stall-in-body": stall(head=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"),
}


@pytest.mark.parametrize("name", list(FAILURES))
async def test_every_failure_is_typed_and_keyless(
    server: FaultServer, sleeps: list[float], name: str
) -> None:
    server.route("GET", INFO, FAILURES[name])
    async with aio(server, timeout=FAST, max_retries=0) as client:
        with pytest.raises(Exception) as info:
            await client.dify.get_info()
    assert isinstance(info.value, APIConnectionError), repr(info.value)
    assert_typed_without_key(info.value)


@pytest.mark.parametrize("where", ["refused", "connect-timeout"])
async def test_connect_failures_are_typed_and_keyless(sleeps: list[float], where: str) -> None:
    jam = backlogged() if where == "connect-timeout" else None
    port = jam.port if jam is not None else closed_port()
    try:
        async with aio(base_url=f"http://127.0.0.1:{port}/v1", timeout=FAST) as client:
            with pytest.raises(Exception) as info:
                await client.dify.get_info()
    finally:
        if jam is not None:
            jam.close()
    expected = APITimeoutError if jam is not None else APIConnectionError
    assert type(info.value) is expected
    assert_typed_without_key(info.value)


@pytest.mark.parametrize("end", ["reset", "close"])
async def test_cut_stream_is_typed_and_keyless(server: FaultServer, end: str) -> None:
    first = {"event": "message", **WF, "answer": "half"}
    server.route("POST", CHAT, sse(frames([first]), end=end))
    async with aio(server, timeout=FAST) as client:
        stream = await client.chat.send(**ASK, stream=True)
        with pytest.raises(StreamInterruptedError) as info:
            async for _ in stream:
                pass
    assert info.value.partial is not None and info.value.partial.answer == "half"
    assert_typed_without_key(info.value)
    assert len(server.requests_to(CHAT)) == 1


async def test_batch_results_carry_typed_errors_without_the_key(
    server: FaultServer, sleeps: list[float]
) -> None:
    server.route("GET", INFO, FAILURES["key-in-status-line"])
    async with aio(server, timeout=FAST, max_retries=0) as client:
        results = await client.batch("dify.get_info", [{}, {}, {}], concurrency=2)
    assert [type(r.error) for r in results] == [APIConnectionError] * 3
    assert KEY not in repr(results) and KEY[-12:] not in repr(results)
    for result in results:
        assert result.error is not None
        assert_typed_without_key(result.error)


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A certificate of another issuer, to pass as the trusted CA bundle."""
    folder = tmp_path_factory.mktemp("other-ca")
    cert = folder / "other.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         str(folder / "other-key.pem"), "-out", str(cert), "-days", "1",
         "-subj", "/CN=other-ca"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("untrusted", "certificate verify failed"),
        ("other-ca", "certificate verify failed"),
        ("wrong-host", "Hostname mismatch"),
        ("plain-port", "TLS handshake"),
    ],
)
async def test_tls_failure_is_named_and_attempted_once(
    tls_server: FaultServer,
    tls_files: tuple[str, str],
    other_ca: str,
    sleeps: list[float],
    case: str,
    reason: str,
) -> None:
    options: dict[str, Any] = {"base_url": tls_server.base_url, "max_retries": 3}
    if case == "other-ca":
        options["verify"] = other_ca
    elif case == "wrong-host":
        options["base_url"] = f"https://localhost:{tls_server.port}/v1"
        options["verify"] = tls_files[0]
    plain = None
    if case == "plain-port":
        plain = FaultServer(greeting=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        options["base_url"] = f"https://127.0.0.1:{plain.port}/v1"
    try:
        async with aio(tls_server, **options) as client:
            with pytest.raises(Exception) as info:
                await client.dify.get_info()
        contacted = plain or tls_server
        assert eventually(lambda: contacted.accepted == 1)
        time.sleep(0.1)
        assert contacted.accepted == 1 and contacted.requests == []
    finally:
        if plain is not None:
            plain.close()
    assert type(info.value) is APIConnectionError, repr(info.value)
    assert "TLS" in str(info.value) and reason in str(info.value), str(info.value)
    assert sleeps == []
    assert_typed_without_key(info.value)


@pytest.mark.parametrize("verify", ["off", "path", "context"])
async def test_verify_is_honoured(
    tls_server: FaultServer, tls_files: tuple[str, str], verify: str
) -> None:
    given: Any = {
        "off": False,
        "path": tls_files[0],
        "context": ssl.create_default_context(cafile=tls_files[0]),
    }[verify]
    async with aio(tls_server, verify=given) as client:
        assert (await client.dify.get_info()).name == "over tls"
    assert [r.header("authorization") for r in tls_server.requests] == [f"Bearer {KEY}"]


# -- a connection that read past its answer is not reused ------------------------------------

POISON = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{"name": "poison"}'


def overlong(extra: bytes, delay: float) -> Any:
    """A well-framed answer followed by bytes nobody asked for (now or ``delay`` later)."""
    body = json.dumps({"name": "first"}).encode()

    def handler(ex: Exchange) -> None:
        items = [("Content-Length", str(len(body))), ("Content-Type", "application/json")]
        if not ex.head(200, items):
            return
        if delay:
            ex.send(body)
            time.sleep(delay)
            ex.send(extra)
        else:
            ex.send(body + extra)

    return handler


@pytest.mark.parametrize(
    ("extra", "delay"),
    [(POISON, 0.0), (POISON, 0.2), (b"junk after the body", 0.0), (b"junk", 0.2)],
    ids=["answer-same-write", "answer-later", "junk-same-write", "junk-later"],
)
async def test_bytes_past_the_answer_poison_no_later_call(
    server: FaultServer, extra: bytes, delay: float
) -> None:
    server.route("GET", INFO, overlong(extra, delay), respond(json={"name": "second"}))
    async with aio(server, max_retries=0) as client:
        if extra == POISON or delay:
            assert (await client.dify.get_info()).name == "first"
        else:
            # Junk in the same read as the answer fails aiohttp's parse of the whole read
            # (or not, when the answer was parsed from an earlier read): either way typed.
            with contextlib.suppress(APIConnectionError):
                assert (await client.dify.get_info()).name == "first"
        await asyncio.sleep(delay + 0.2)  # let the extra bytes land on the idle connection
        assert (await client.dify.get_info()).name == "second"
        assert (await client.dify.get_info()).name == "second"
    assert server.accepted == 2  # the poisoned connection was dropped, the next one reused


async def test_bad_chunking_closes_the_connection(server: FaultServer) -> None:
    server.route("GET", INFO, FAILURES["bad-chunking"], respond(json={"name": "second"}))
    async with aio(server, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.dify.get_info()
        assert (await client.dify.get_info()).name == "second"
    assert server.accepted == 2


# -- every way a response ends gives its connection back (a pool of 2) ------------------------

LONG = [{"event": "message", **WF, "answer": str(i)} for i in range(40)]


async def consume(client: AsyncClient) -> None:
    stream = await client.chat.send(**ASK, stream=True)
    assert len([e async for e in stream]) == len(LONG) + 1


async def leave_early(client: AsyncClient) -> None:
    async with await client.chat.send(**ASK, stream=True) as stream:
        async for _ in stream:
            break


async def close_unread(client: AsyncClient) -> None:
    stream = await client.chat.send(**ASK, stream=True)
    await stream.close()


async def drop_started(client: AsyncClient) -> None:
    stream = await client.chat.send(**ASK, stream=True)
    await stream.__anext__()
    del stream
    gc.collect()
    for _ in range(20):  # the loop runs the async generator's finaliser
        await asyncio.sleep(0)


async def cancel_reading(client: AsyncClient) -> None:
    async def read() -> None:
        async for _ in await client.chat.send(**ASK, stream=True):
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(read())
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.wait({task}, timeout=2)
    assert task.cancelled()


async def download_half(client: AsyncClient) -> None:
    download = await client.dify.preview_file(
        file_id="f0000000-0000-4000-8000-000000000001", stream=True
    )
    async for _ in download.iter_bytes():
        break
    await download.close()


async def download_unread(client: AsyncClient) -> None:
    download = await client.dify.preview_file(
        file_id="f0000000-0000-4000-8000-000000000001", stream=True
    )
    await download.close()


@pytest.mark.parametrize(
    "end",
    [consume, leave_early, close_unread, drop_started, cancel_reading, download_half,
     download_unread],
    ids=lambda f: f.__name__,
)  # fmt: skip
async def test_every_end_gives_the_connection_back(server: FaultServer, end: Any) -> None:
    finish = "complete" if end is consume else "stall"
    server.route("POST", CHAT, sse(frames([*LONG, {"event": "message_end", **WF}]), end=finish))
    server.route("GET", PREVIEW, stream_bytes(8 << 20))
    server.route("GET", INFO, respond(json={"name": "still works"}))
    timeout = httpx.Timeout(3.0, connect=1.0, pool=0.5)
    async with aio(server, limits=POOL2, timeout=timeout) as client:
        for _ in range(3):  # more rounds than the pool holds
            await end(client)
        assert (await client.dify.get_info()).name == "still works"
        assert client_sockets_to(server) <= 2
    assert eventually(lambda: client_sockets_to(server) == 0)
    assert eventually(lambda: server.open_connections == 0)


def sized_sse(pieces: list[bytes]) -> Any:
    """An event stream with a Content-Length, one write per event, kept alive."""

    def handler(ex: Exchange) -> None:
        items = [
            ("Content-Length", str(sum(map(len, pieces)))),
            ("Content-Type", "text/event-stream"),
        ]
        if ex.head(200, items):
            for piece in pieces:
                ex.send(piece)

    return handler


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_streams_read_to_their_end_share_one_connection(
    server: FaultServer, framing: str
) -> None:
    # The body says when it was read to its end: the connection goes back to the pool, so
    # calls one after another never open a second socket.
    pieces = frames([*LONG, {"event": "message_end", **WF}])
    server.route("POST", CHAT, sse(pieces) if framing == "chunked" else sized_sse(pieces))
    async with aio(server, limits=POOL2) as client:
        for _ in range(5):
            stream = await client.chat.send(**ASK, stream=True)
            events = [e async for e in stream]
            assert [getattr(e, "answer", None) for e in events[:-1]] == [str(i) for i in range(40)]
            assert stream.closed
        answer = (await client.chat.send(**ASK, stream=True, collect=True)).answer
        assert answer == "".join(str(i) for i in range(40))
    assert server.accepted == 1
    assert len(server.requests_to(CHAT)) == 6


# -- the read timeout bounds each wait for data, not the stream -------------------------------

READ = httpx.Timeout(3.0, connect=1.0, read=0.5)


async def test_a_stream_longer_than_the_read_timeout_is_not_cut(server: FaultServer) -> None:
    # An event every 0.2 s: the stream takes over three read timeouts, no wait one.
    pieces = frames([*LONG[:8], {"event": "message_end", **WF}])
    server.route("POST", CHAT, sse(pieces, pause=0.2))
    async with aio(server, timeout=READ) as client:
        started = time.monotonic()
        stream = await client.chat.send(**ASK, stream=True)
        events = [e async for e in stream]
        assert time.monotonic() - started > 3 * 0.5
    assert [getattr(e, "answer", None) for e in events] == [*map(str, range(8)), None]
    assert server.accepted == 1


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_a_consumer_slower_than_the_read_timeout_is_not_cut(
    server: FaultServer, backend: str
) -> None:
    # The server is silent for 0.8 s, longer than the read timeout, while the consumer is busy
    # with the first event for 1 s: its next read finds the next event waiting. The bound is on
    # how long a read waits, as on httpx's own transport, not on how long the server is quiet.
    def handler(ex: Exchange) -> None:
        head = [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]
        first, *rest = frames([*LONG[:3], {"event": "message_end", **WF}])
        if ex.head(200, head) and ex.chunk(first):
            time.sleep(0.8)
            for piece in rest:
                ex.chunk(piece)
            ex.end_chunks()

    server.route("POST", CHAT, handler)
    options = client_options(server, backend=backend, timeout=READ)
    async with AsyncClient(**options) as client:
        stream = await client.chat.send(**ASK, stream=True)
        answers = []
        async for event in stream:
            answers.append(getattr(event, "answer", None))
            if len(answers) == 1:
                await asyncio.sleep(1.0)
    assert answers == ["0", "1", "2", None]


async def test_a_stall_mid_stream_ends_one_read_timeout_after_the_last_data(
    server: FaultServer,
) -> None:
    server.route("POST", CHAT, sse(frames(LONG[:2]), end="stall"))
    server.route("GET", INFO, respond(json={"name": "still works"}))
    async with aio(server, timeout=READ, max_retries=0) as client:
        stream = await client.chat.send(**ASK, stream=True)
        answers = []
        last = time.monotonic()
        with pytest.raises(APITimeoutError, match="stalled") as info:
            async for event in stream:
                answers.append(event.answer)
                last = time.monotonic()
        waited = time.monotonic() - last
        assert answers == ["0", "1"] and info.value.partial is not None
        assert info.value.partial.answer == "01"
        assert 0.5 <= waited < 0.5 + 1.0, waited
        # The timed-out connection is dropped, not handed to the next call.
        assert (await client.dify.get_info()).name == "still works"
    assert server.accepted == 2


async def test_garbage_collected_responses_give_their_connection_back(
    server: FaultServer,
) -> None:
    # Below the SDK: responses dropped unread, never closed, collected by the GC.
    server.route("POST", CHAT, sse(frames(LONG), end="stall"))
    server.route("GET", INFO, respond(json={"name": "still works"}))
    transport = _aiohttp_transport(POOL2, True)
    timeout = httpx.Timeout(3.0, connect=0.5, pool=0.5)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
        for _ in range(3):
            response = await http.send(
                http.build_request("POST", server.base_url + "/chat-messages", json=ASK),
                stream=True,
            )
            del response
            gc.collect()
            await asyncio.sleep(0)
            # well before the read timeout (3 s) would end the stalled answer
            assert await settled(lambda: client_sockets_to(server) == 0, timeout=1.0)
        answer = await http.get(server.base_url + "/info")
        assert answer.json() == {"name": "still works"}
    assert eventually(lambda: client_sockets_to(server) == 0)


# -- cancellation propagates, in every phase --------------------------------------------------


@pytest.mark.parametrize("phase", ["connecting", "sending", "waiting", "reading"])
async def test_cancellation_propagates(server: FaultServer, phase: str) -> None:
    slow = httpx.Timeout(10.0, connect=10.0)
    jam = backlogged() if phase == "connecting" else None
    options: dict[str, Any] = {"timeout": slow, "limits": httpx.Limits(max_connections=1)}
    if jam is not None:
        options["base_url"] = f"http://127.0.0.1:{jam.port}/v1"
    kwargs: dict[str, Any] = dict(ASK)
    if phase == "sending":
        server.route("POST", CHAT, deaf(), read_body=False)
        kwargs["query"] = "x" * (32 << 20)
    elif phase == "waiting":
        server.route("POST", CHAT, stall())
    elif phase == "reading":
        server.route("POST", CHAT, sse(frames(LONG[:1]), end="stall"))
        kwargs["collect"] = True
    try:
        async with aio(server, **options) as client:
            task = asyncio.ensure_future(client.chat.send(**kwargs))
            # Cancelled once the request is on the wire (the SDK's slot wait is not this
            # test's business), or mid-connect.
            for _ in range(100):
                if jam is not None or server.requests_to(CHAT):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            started = time.monotonic()
            task.cancel()
            await asyncio.wait({task}, timeout=3)
            assert task.cancelled(), task
            assert time.monotonic() - started < 1
            if jam is None:  # the one slot came back: the next call is served
                server.route("GET", INFO, respond(json={"name": "after"}))
                assert (await client.dify.get_info()).name == "after"
                # and the cancelled exchange's connection is gone, not left flushing
                assert eventually(lambda: client_sockets_to(server) == 1)
    finally:
        if jam is not None:
            jam.close()
