"""Fixtures of the fault battery: a scriptable local server, clients with short timeouts,
recorded retry sleeps, and probes into the connection pool and the process's sockets."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import dify_oapi._client as client_module
from dify_oapi import AsyncClient, Client

from .server import FaultServer

KEY = "app-FAULTSECRET0123456789abcdef"
OTHER_KEY = "dataset-OTHERSECRET987654321"
IDS = {"task_id": "t-1", "message_id": "m-1", "conversation_id": "c-1", "created_at": 1}
WF = {**IDS, "workflow_run_id": "wr-1"}
#: Short timeouts: every fault ends in well under a second of waiting.
TIMEOUT = httpx.Timeout(3.0, connect=1.0, pool=2.0)
#: Scale of the load tests (1.0 = the issue's numbers); DIFY_FAULTS_LOAD=0.1 for a quick run.
LOAD = float(os.environ.get("DIFY_FAULTS_LOAD", "1.0"))


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits, recorded instead of slept (sync and async), in every battery test."""
    recorded: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", recorded.append)
    monkeypatch.setattr(client_module, "_async_sleep", fake_async_sleep)
    return recorded


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer()
    try:
        yield srv
    finally:
        srv.close()
    assert srv.errors == [], f"the test server failed: {srv.errors}"


@pytest.fixture
def make_kit(server: FaultServer) -> Iterator[Callable[..., Any]]:
    """``make_kit(kind, **client_options)``: a :class:`.kit.Kit`, closed after the test,
    which then fails if the kit's event loop reported an error."""
    from .kit import Kit

    made: list[Kit] = []

    def make(kind: str, **options: Any) -> Kit:
        kit = Kit(kind, server, **options)
        made.append(kit)
        return kit

    yield make
    for kit in made:
        kit.close()
    for kit in made:
        assert kit.loop_errors == [], f"the event loop reported: {kit.loop_errors}"


@pytest.fixture
def other_server() -> Iterator[FaultServer]:
    """A second origin (another port): where a key must never travel."""
    srv = FaultServer()
    try:
        yield srv
    finally:
        srv.close()
    assert srv.errors == []


def client_options(server: FaultServer, **overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": server.base_url,
        "timeout": TIMEOUT,
        "max_retries": 2,
    }
    options.update(overrides)
    return options


@pytest.fixture
def client(server: FaultServer, sleeps: list[float]) -> Iterator[Client]:
    with Client(**client_options(server)) as c:
        yield c


@pytest.fixture
async def aclient(server: FaultServer, sleeps: list[float]) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(**client_options(server)) as c:
        yield c


class Caller:
    """One call through the sync or the async client, with the same arguments.

    The async client is created and closed inside ``asyncio.run`` for each call, so sync
    tests can run every fault through both clients.
    """

    def __init__(self, kind: str, server: FaultServer) -> None:
        self.kind = kind
        self.server = server

    def __call__(self, op: str, client_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        options = client_options(self.server, **(client_kwargs or {}))
        if self.kind in ("sync", "urllib3"):
            if self.kind == "urllib3":
                options["backend"] = "urllib3"
            with Client(**options) as c:
                return c.call(op, **kwargs)

        async def run() -> Any:
            async with AsyncClient(**options) as c:
                return await c.call(op, **kwargs)

        return asyncio.run(run())

    def __repr__(self) -> str:
        return self.kind


@pytest.fixture(params=["sync", "urllib3", "async"])
def call(request: pytest.FixtureRequest, server: FaultServer, sleeps: list[float]) -> Caller:
    """``call("dify.get_info", ...)``: the sync client (on httpx's transport and on the
    urllib3 backend) and the async client in turn."""
    return Caller(request.param, server)


# -- observing the client side -----------------------------------------------------------


class _ObservedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, inner: Any, sizes: list[int]) -> None:
        self.inner = inner
        self.sizes = sizes

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.sizes.append(len(chunk))
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.sizes.append(len(chunk))
            yield chunk

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


class ObservingTransport(httpx.BaseTransport):
    """Wraps a real transport: counts attempts and records the raw chunk sizes read."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.attempts = 0
        self.chunk_sizes: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        response = self.inner.handle_request(request)
        response.stream = _ObservedStream(response.stream, self.chunk_sizes)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncObservingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.attempts = 0
        self.chunk_sizes: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        response = await self.inner.handle_async_request(request)
        response.stream = _ObservedStream(response.stream, self.chunk_sizes)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def pool_of(client: Client | AsyncClient) -> Any:
    """The httpcore connection pool behind a client that owns its pool."""
    return client._pool.http._transport._pool  # type: ignore[union-attr]


def pool_idle(client: Client | AsyncClient) -> bool:
    """No request holds or waits for a connection, and no connection is mid-exchange."""
    pool = pool_of(client)
    return not pool._requests and all(c.is_idle() or c.is_closed() for c in pool.connections)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def client_sockets(server: FaultServer) -> list[tuple[int, str]]:
    """This process's open sockets on the client side of ``server``'s connections, as
    (local port, TCP state): only connections this server accepted, so a socket another test
    left open to an earlier server on the same port number is not counted."""
    mine = _socket_inodes()
    # By inode: the kernel prints the table a page per read, and a socket that moves in its
    # hash table between two reads is printed twice.
    found: dict[str, tuple[int, str]] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            remote_port = int(parts[2].rsplit(":", 1)[1], 16)
            state, inode = parts[3], parts[9]
            # 06 is TIME_WAIT: no fd, no longer ours.
            if (
                remote_port == server.port
                and local_port in server.peer_ports
                and inode in mine
                and state != "06"
            ):
                found[inode] = (local_port, state)
    return sorted(found.values())


def client_sockets_to(server: FaultServer) -> int:
    """How many sockets :func:`client_sockets` finds."""
    return len(client_sockets(server))


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` (bounded) for effects that land on another thread."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover
        pytest.skip(f"cannot make a test certificate with openssl: {exc}")
    return str(cert), str(key)


class Attempts:
    """How many requests the client handed to its transport (real network attempts)."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> Attempts:
    counter = Attempts()
    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def counted(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        counter.count += 1
        return sync_send(self, request)

    async def acounted(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        counter.count += 1
        return await async_send(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", counted)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", acounted)
    try:
        from dify_oapi._transport._urllib3 import Urllib3Transport
    except ImportError:  # pragma: no cover - the urllib3 extra is not installed
        return counter
    urllib3_send = Urllib3Transport.handle_request

    def counted_urllib3(self: Urllib3Transport, request: httpx.Request) -> httpx.Response:
        counter.count += 1
        return urllib3_send(self, request)

    monkeypatch.setattr(Urllib3Transport, "handle_request", counted_urllib3)
    return counter


def backoff_ok(sleeps: list[float]) -> bool:
    """Each wait is the SDK's jittered exponential backoff: in [c/2, c], c = 0.5 * 2**k."""
    return all(min(8.0, 0.5 * 2**k) / 2 <= s <= min(8.0, 0.5 * 2**k) for k, s in enumerate(sleeps))


def error_body(status: int, code: str, message: str = "went wrong") -> dict[str, Any]:
    return {"status": status, "code": code, "message": message}
