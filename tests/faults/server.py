"""A small scriptable HTTP/1.1 server on 127.0.0.1 for the fault battery.

Written on raw sockets so a test can do what a well-behaved server never does: reset a
connection, stop in the middle of a body, stall, lie about ``Content-Length``, send a gzip
bomb or an endless SSE line. Every request it receives is recorded (method, raw target,
headers, body digest), as are accepted sockets and the peak number of open connections and
of requests being handled at once.

Routes are scripts: ``server.route("GET", "/v1/info", reset(), respond(json={...}))`` answers
the first request with a reset and every later one with JSON. Every wait is bounded and the
server stops at :meth:`FaultServer.close`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "Exchange",
    "FaultServer",
    "Handler",
    "Received",
    "closed_port",
    "dynamic",
    "endless",
    "frame",
    "frames",
    "garbage",
    "gzip_bomb",
    "redirect",
    "reset",
    "reset_mid_body",
    "respond",
    "short_body",
    "sse",
    "stall",
    "stream_bytes",
]

#: Request bodies above this size are spooled to disk instead of kept in memory.
KEEP_BODY = 1024 * 1024
#: The longest any single wait inside the server may take.
MAX_WAIT = 20.0
_POLL = 0.05
# The longest wait for the rest of a request that has started arriving.
_PARTIAL = 60.0

Handler = Callable[["Exchange"], None]


@dataclass
class Received:
    """One request as it arrived on the wire."""

    conn_id: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes | None = None  # None when spooled to ``body_file``
    body_len: int = 0
    body_sha256: str = ""
    body_file: str | None = None
    #: Response bytes the server managed to write before the peer went away.
    bytes_sent: int = 0
    #: Requests being handled on the server (this one included) when it arrived.
    in_flight: int = 0

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        assert self.body is not None, "body was spooled to disk"
        return json.loads(self.body)


class _PeerGone(Exception):
    pass


class Exchange:
    """One request and the means to answer it, well or badly."""

    def __init__(self, server: FaultServer, sock: socket.socket, request: Received) -> None:
        self.server = server
        self.sock = sock
        self.request = request
        self.keep_alive = True
        self.closed = False

    # -- writing ----------------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Write ``data``; False once the peer is gone or the server is stopping."""
        if self.closed:
            return False
        view = memoryview(data)
        deadline = time.monotonic() + MAX_WAIT
        while view:
            if self.server.stopping.is_set() or time.monotonic() > deadline:
                self.abort()
                return False
            try:
                n = self.sock.send(view)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                self.abort()
                return False
            view = view[n:]
            self.request.bytes_sent += n
        return True

    def head(
        self,
        status: int = 200,
        headers: Sequence[tuple[str, str]] | dict[str, str] = (),
        *,
        reason: str | None = None,
    ) -> bool:
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in items]
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def chunk(self, data: bytes) -> bool:
        """One chunk of a ``Transfer-Encoding: chunked`` body."""
        if not data:
            return True
        return self.send(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunks(self) -> bool:
        return self.send(b"0\r\n\r\n")

    # -- ending badly -----------------------------------------------------------------

    def reset(self) -> None:
        """Abort with a TCP reset (RST), whatever was or was not sent."""
        if not self.closed:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    def close(self) -> None:
        """Close cleanly (FIN) after what was sent."""
        if not self.closed:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        self.abort()

    def abort(self) -> None:
        self.keep_alive = False
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.close()

    def wait_for_peer_close(self, max_seconds: float = MAX_WAIT) -> bool:
        """Sit on the connection until the client closes it (or ``max_seconds``)."""
        deadline = time.monotonic() + min(max_seconds, MAX_WAIT)
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return True
            if not data:
                return True
        return False


@dataclass
class _Route:
    handlers: list[Handler]
    read_body: bool = True
    served: int = 0

    def next(self) -> Handler:
        handler = self.handlers[min(self.served, len(self.handlers) - 1)]
        self.served += 1
        return handler


@dataclass
class _Stats:
    accepted: int = 0
    open: int = 0
    max_open: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    tls_failures: int = 0


class _Reader:
    """Buffered reads from a socket, bounded in time, aware of the server stopping."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping
        self.buffer = bytearray()

    def _fill(self, idle: float | None = _PARTIAL) -> None:
        deadline = None if idle is None else time.monotonic() + idle
        while True:
            if self.stopping.is_set() or (deadline is not None and time.monotonic() > deadline):
                raise _PeerGone
            try:
                data = self.sock.recv(262144)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                raise _PeerGone from None
            if not data:
                raise _PeerGone
            self.buffer += data
            return

    def until(self, marker: bytes, limit: int = 1 << 20, idle: float | None = _PARTIAL) -> bytes:
        while True:
            index = self.buffer.find(marker)
            if index >= 0:
                out = bytes(self.buffer[: index + len(marker)])
                del self.buffer[: index + len(marker)]
                return out
            if len(self.buffer) > limit:
                raise _PeerGone
            self._fill(idle if not self.buffer else _PARTIAL)

    def exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def pieces(self, n: int) -> Iterator[bytes]:
        """``n`` bytes in the pieces they arrive in (for large bodies)."""
        while n > 0:
            if not self.buffer:
                self._fill()
            take = bytes(self.buffer[:n])
            del self.buffer[: len(take)]
            n -= len(take)
            yield take


class FaultServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose answers are scripted per route."""

    def __init__(
        self,
        *,
        tls: tuple[str, str] | None = None,
        backlog: int = 256,
        accept: bool = True,
        greeting: bytes | None = None,
    ) -> None:
        self.stopping = threading.Event()
        self.requests: list[Received] = []
        self.errors: list[str] = []
        self.stats = _Stats()
        #: Called with each request as it arrives, before its handler (e.g. to sample state).
        self.observe: Callable[[Received], None] | None = None
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._conn_ids = 0
        #: The client-side ports of every connection this server accepted.
        self.peer_ports: set[int] = set()
        self._spool = tempfile.mkdtemp(prefix="dify-faults-")
        self._tls: ssl.SSLContext | None = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(backlog)
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._accepting = accept
        #: Sent (then the socket closed) as soon as a connection is accepted, if set.
        self.greeting = greeting
        if accept:
            thread = threading.Thread(target=self._accept_loop, name="fault-accept", daemon=True)
            self._threads.append(thread)
            thread.start()

    # -- configuration ----------------------------------------------------------------

    @property
    def origin(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def route(self, method: str, path: str, *handlers: Handler, read_body: bool = True) -> None:
        """Answer ``method path`` with ``handlers`` in turn; the last one repeats."""
        assert handlers, "a route needs at least one handler"
        with self._lock:
            self._routes[(method.upper(), path)] = _Route(list(handlers), read_body)

    # -- what happened ----------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method.upper())
            ]

    @property
    def accepted(self) -> int:
        return self.stats.accepted

    @property
    def open_connections(self) -> int:
        return self.stats.open

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until the server has seen every connection close."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats.open == 0:
                return True
            time.sleep(0.01)
        return self.stats.open == 0

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5.0)
        for name in os.listdir(self._spool):
            os.unlink(os.path.join(self._spool, name))
        os.rmdir(self._spool)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return
            with self._lock:
                self.stats.accepted += 1
                self.stats.open += 1
                self.stats.max_open = max(self.stats.max_open, self.stats.open)
                self._conn_ids += 1
                conn_id = self._conn_ids
                self.peer_ports.add(peer[1])
                self._conns.add(sock)
                self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(
                target=self._serve, args=(sock, conn_id), name=f"fault-conn-{conn_id}", daemon=True
            )
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket, conn_id: int) -> None:
        sock = raw
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.greeting is not None:
                sock.sendall(self.greeting)
                time.sleep(0.05)
                return
            if self._tls is not None:
                sock.settimeout(5.0)
                try:
                    sock = self._tls.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    with self._lock:
                        self.stats.tls_failures += 1
                    return
                with self._lock:
                    self._conns.add(sock)
            sock.settimeout(_POLL)
            reader = _Reader(sock, self.stopping)
            while not self.stopping.is_set():
                try:
                    exchange = self._read_request(sock, reader, conn_id)
                except _PeerGone:
                    return
                if exchange is None:
                    return
                try:
                    self._handle(exchange)
                finally:
                    with self._lock:
                        self.stats.in_flight -= 1
                if not exchange.keep_alive or exchange.closed:
                    return
        except Exception as exc:  # a bug in a handler must show up in the test
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self.stats.open -= 1
                self._conns.discard(raw)
                self._conns.discard(sock)

    def _read_request(self, sock: socket.socket, reader: _Reader, conn_id: int) -> Exchange | None:
        # An idle keep-alive connection waits for its next request until the server stops: a
        # time-out here would close pooled connections in a slow test and count as excess.
        head = reader.until(b"\r\n\r\n", idle=None).decode("latin-1")
        lines = head.split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
        received = Received(conn_id, method, target, headers)
        with self._lock:
            route = self._routes.get((method, received.path))
        if route is None or route.read_body:
            self._read_body(reader, received)
        with self._lock:
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            received.in_flight = self.stats.in_flight
            self.requests.append(received)
        if self.observe is not None:
            self.observe(received)
        exchange = Exchange(self, sock, received)
        if (received.header("connection") or "").lower() == "close":
            exchange.keep_alive = False
        exchange.route = route  # type: ignore[attr-defined]
        return exchange

    def _read_body(self, reader: _Reader, received: Received) -> None:
        digest = hashlib.sha256()
        kept = bytearray()
        spool = None
        total = 0

        def take(piece: bytes) -> None:
            nonlocal spool, total
            digest.update(piece)
            total += len(piece)
            if spool is None and len(kept) + len(piece) > KEEP_BODY:
                fd, path = tempfile.mkstemp(dir=self._spool)
                spool = os.fdopen(fd, "wb")
                received.body_file = path
                spool.write(kept)
                kept.clear()
            if spool is not None:
                spool.write(piece)
            else:
                kept.extend(piece)

        length = received.header("content-length")
        if length is not None:
            for piece in reader.pieces(int(length)):
                take(piece)
        elif "chunked" in (received.header("transfer-encoding") or "").lower():
            while True:
                size = int(reader.until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    reader.until(b"\r\n")  # no trailers are sent by httpx
                    break
                for piece in reader.pieces(size):
                    take(piece)
                reader.exact(2)
        if spool is not None:
            spool.close()
        else:
            received.body = bytes(kept)
        received.body_len = total
        received.body_sha256 = digest.hexdigest()

    def _handle(self, exchange: Exchange) -> None:
        route: _Route | None = exchange.route  # type: ignore[attr-defined]
        if route is None:
            request = exchange.request
            respond(
                404,
                json={
                    "code": "not_found",
                    "message": f"no route for {request.method} {request.path}",
                    "status": 404,
                },
            )(exchange)
            return
        with self._lock:
            handler = route.next()
        handler(exchange)


# -- handlers ---------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_MISSING: Any = object()


def _body_of(json_body: Any, body: bytes) -> bytes:
    return body if json_body is _MISSING else json.dumps(json_body).encode()


def respond(
    status: int = 200,
    *,
    json: Any = _MISSING,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
) -> Handler:
    """A complete, well-formed answer with ``Content-Length``."""
    payload = _body_of(json, body)
    ctype = content_type or ("application/json" if json is not _MISSING else None)

    def handler(ex: Exchange) -> None:
        items = [("Content-Length", str(len(payload)))]
        if ctype:
            items.append(("Content-Type", ctype))
        items += list((headers or {}).items())
        if ex.head(status, items):
            ex.send(payload)

    return handler


def dynamic(answer: Callable[[Received], tuple[int, Any]]) -> Handler:
    """A JSON answer computed from the request: ``answer(request) -> (status, json)``."""

    def handler(ex: Exchange) -> None:
        status, payload = answer(ex.request)
        respond(status, json=payload)(ex)

    return handler


def reset() -> Handler:
    """Read the request, then reset the connection before any answer."""
    return lambda ex: ex.reset()


def garbage(data: bytes = b"NOT-HTTP garbage\r\n\r\n") -> Handler:
    """Answer something that is not HTTP (a protocol error), then close."""

    def handler(ex: Exchange) -> None:
        ex.send(data)
        ex.close()

    return handler


def reset_mid_body(body: bytes, sent: int, *, status: int = 200) -> Handler:
    """Announce the full body, send its first ``sent`` bytes, then reset."""

    def handler(ex: Exchange) -> None:
        items = [("Content-Length", str(len(body))), ("Content-Type", "application/json")]
        if ex.head(status, items) and ex.send(body[:sent]):
            time.sleep(0.02)  # let the first bytes reach the client before the RST
        ex.reset()

    return handler


def short_body(body: bytes, declared: int, *, status: int = 200) -> Handler:
    """Declare ``Content-Length: declared`` but send only ``body``, then close cleanly."""

    def handler(ex: Exchange) -> None:
        items = [("Content-Length", str(declared)), ("Content-Type", "application/json")]
        if ex.head(status, items):
            ex.send(body)
        ex.close()

    return handler


def stall(
    max_seconds: float = 10.0, *, head: bytes | None = None, then: Handler | None = None
) -> Handler:
    """Send nothing (or only ``head``) and wait for the client to give up."""

    def handler(ex: Exchange) -> None:
        if head is not None:
            ex.send(head)
        if ex.wait_for_peer_close(max_seconds):
            ex.abort()
        elif then is not None:
            then(ex)
        else:
            ex.close()

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return respond(status, body=b"", headers={"Location": location})


def frame(event: dict[str, Any] | str, newline: str = "\n") -> bytes:
    """One SSE frame: a dict becomes ``data: <json>``, a string is sent as raw lines."""
    text = event if isinstance(event, str) else "data: " + json.dumps(event)
    return (text.replace("\n", newline) + newline + newline).encode()


def frames(events: Iterable[dict[str, Any] | str], newline: str = "\n") -> list[bytes]:
    return [frame(e, newline) for e in events]


def _write_body(
    ex: Exchange,
    status: int,
    headers: Sequence[tuple[str, str]],
    pieces: Iterable[bytes],
    *,
    chunked: bool,
    end: str,
    pause: float = 0.0,
) -> None:
    items = list(headers)
    items.append(("Transfer-Encoding", "chunked") if chunked else ("Connection", "close"))
    if not ex.head(status, items):
        return
    write = ex.chunk if chunked else ex.send
    for piece in pieces:
        if not write(piece):
            return
        if pause:
            time.sleep(pause)
    if end == "complete":
        if chunked:
            ex.end_chunks()
        else:
            ex.close()
    elif end == "close":
        ex.close()
    elif end == "reset":
        time.sleep(0.02)
        ex.reset()
    elif end == "stall":
        ex.wait_for_peer_close()
        ex.abort()
    else:  # pragma: no cover - a typo in a test
        raise ValueError(f"unknown end {end!r}")


SSE_TYPE = "text/event-stream; charset=utf-8"


def sse(
    pieces: Iterable[bytes] | Callable[[], Iterable[bytes]],
    *,
    chunked: bool = True,
    end: str = "complete",
    pause: float = 0.0,
    status: int = 200,
    content_type: str = SSE_TYPE,
    headers: dict[str, str] | None = None,
) -> Handler:
    """An event stream written piece by piece (one TCP write, and one chunk, per piece).

    ``end``: ``complete`` (a proper end), ``close`` (FIN mid-body: with chunking the
    body is incomplete), ``reset`` (RST) or ``stall`` (hold the socket until the
    client gives up).
    """

    def handler(ex: Exchange) -> None:
        source = pieces() if callable(pieces) else pieces
        items = [("Content-Type", content_type), ("Cache-Control", "no-cache")]
        items += list((headers or {}).items())
        _write_body(ex, status, items, source, chunked=chunked, end=end, pause=pause)

    return handler


def stream_bytes(
    total: int,
    *,
    piece: int = 65536,
    content_type: str = "application/octet-stream",
    chunked: bool = False,
    pattern: Callable[[int, int], bytes] | None = None,
) -> Handler:
    """A large body generated on the fly (``pattern(offset, size)`` gives each piece)."""
    make = pattern or _pattern

    def handler(ex: Exchange) -> None:
        items = [("Content-Type", content_type)]
        if not chunked:
            items.append(("Content-Length", str(total)))

        def pieces() -> Iterator[bytes]:
            offset = 0
            while offset < total:
                size = min(piece, total - offset)
                yield make(offset, size)
                offset += size

        if chunked:
            _write_body(ex, 200, items, pieces(), chunked=True, end="complete")
        elif ex.head(200, items):
            for data in pieces():
                if not ex.send(data):
                    return

    return handler


def _pattern(offset: int, size: int) -> bytes:
    """Deterministic, position-dependent bytes: a shifted piece shows up in a digest."""
    block = hashlib.sha256(offset.to_bytes(8, "big")).digest()
    return (block * (size // len(block) + 1))[:size]


def pattern_digest(total: int, piece: int = 65536) -> str:
    digest = hashlib.sha256()
    offset = 0
    while offset < total:
        size = min(piece, total - offset)
        digest.update(_pattern(offset, size))
        offset += size
    return digest.hexdigest()


def endless(prefix: bytes, filler: bytes, limit: int, *, content_type: str = SSE_TYPE) -> Handler:
    """``prefix`` then ``filler`` repeated up to ``limit`` bytes, chunked, then a clean end."""

    def handler(ex: Exchange) -> None:
        def pieces() -> Iterator[bytes]:
            yield prefix
            sent = len(prefix)
            while sent < limit:
                yield filler
                sent += len(filler)

        _write_body(
            ex, 200, [("Content-Type", content_type)], pieces(), chunked=True, end="complete"
        )

    return handler


_BOMBS: dict[tuple[int, bytes], bytes] = {}
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
_BLOCK = 1 << 20


def _deflate_flushed(data: bytes) -> bytes:
    """Raw deflate of ``data`` ending in a full flush: blocks that can be concatenated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def _bomb_pieces(inflated: int, prefix: bytes) -> Iterator[bytes]:
    """gzip of ``prefix`` then zeros up to ``inflated`` bytes, produced as it is sent.

    A full flush resets the compressor, so the deflate of one MiB of zeros can be repeated
    as is; only the CRC has to be computed over the whole inflated body (at the end, so a
    client that gives up early costs nothing).
    """
    zeros_block = _deflate_flushed(bytes(_BLOCK))
    count, rest = divmod(inflated - len(prefix), _BLOCK)
    yield _GZIP_HEADER + _deflate_flushed(prefix)
    group = zeros_block * 64
    left = count
    while left >= 64:
        yield group
        left -= 64
    if left:
        yield zeros_block * left
    if rest:
        yield _deflate_flushed(bytes(rest))
    crc = zlib.crc32(prefix)
    zeros = bytes(_BLOCK)
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    yield b"\x03\x00" + struct.pack("<II", crc, inflated & 0xFFFFFFFF)  # empty final block


def bomb_bytes(inflated: int, prefix: bytes = b'{"name": "') -> bytes:
    """A complete gzip bomb (cached): about a thousandth of ``inflated``."""
    key = (inflated, prefix)
    if key not in _BOMBS:
        _BOMBS[key] = b"".join(_bomb_pieces(inflated, prefix))
    return _BOMBS[key]


def gzip_bomb(
    inflated: int,
    *,
    prefix: bytes = b'{"name": "',
    declare_length: bool = True,
    content_type: str = "application/json",
    encoding: str = "gzip",
    status: int = 200,
) -> Handler:
    """A gzip body inflating to ``inflated`` bytes (zeros after ``prefix``).

    With ``declare_length`` the whole (small) compressed body is sent with an honest
    ``Content-Length``; otherwise it is generated while sending, chunked.
    """

    def handler(ex: Exchange) -> None:
        items = [("Content-Type", content_type), ("Content-Encoding", encoding)]
        if declare_length:
            data = bomb_bytes(inflated, prefix)
            if encoding.count("gzip") == 2:
                data = gzip.compress(data, 9)
            items.append(("Content-Length", str(len(data))))
            if ex.head(status, items):
                ex.send(data)
        else:
            _write_body(
                ex, status, items, _bomb_pieces(inflated, prefix), chunked=True, end="complete"
            )

    return handler


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@dataclass
class Backlogged:
    """A listener that never accepts, its backlog full: connecting times out."""

    listener: socket.socket
    fillers: list[socket.socket] = field(default_factory=list)

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


def backlogged() -> Backlogged:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    jam = Backlogged(listener)
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", jam.port))
        jam.fillers.append(s)
    time.sleep(0.05)  # let the handshakes fill the queue
    return jam
