"""An httpx transport on aiohttp: ``AsyncClient(backend="aiohttp")``.

httpx keeps the request and response objects, redirects and decoding; aiohttp carries the
bytes. Every aiohttp failure becomes the httpx exception of its phase, so the retry rule
(:mod:`dify_oapi._retry`) sees exactly what it sees on httpx's own transport:

* not sent (DNS, refused, connect or pool timeout, TLS): ``ConnectError``, ``ConnectTimeout``,
  ``PoolTimeout``; a TLS failure is a ``ConnectError`` caused by the ``ssl.SSLError``;
* maybe sent (the request was or may have been written): ``ReadError``, ``WriteTimeout``,
  ``ReadTimeout``, ``RemoteProtocolError``;
* while reading the body: ``ReadError``, ``ReadTimeout``, ``RemoteProtocolError``.

No aiohttp exception is chained or kept: theirs carry the request's headers (the API key)
and the proxy's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import ssl
import time
import urllib.request
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextvars import ContextVar
from typing import Any, NoReturn

import aiohttp
import httpx
from aiohttp.client_exceptions import ConnectionTimeoutError
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict
from yarl import URL

from .._exceptions import ConfigurationError

__all__ = ["AiohttpTransport"]

# aiohttp never waits on the socket for a body up to its write buffer's high-water mark, so
# only larger bodies need the write timeout, applied per piece.
_UPLOAD_PIECE = 64 * 1024
# Headers aiohttp adds when a request has none. httpx's clients always send the first
# three; when one is missing aiohttp is told to skip it (a slower path, so only then): the
# request goes out as httpx built it (no encoding advertised that httpx does not decode, no
# invented content type).
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_FAILURES = (aiohttp.ClientError, HttpProcessingError, OSError, asyncio.TimeoutError)
# The upload of the request being connected, for the connector to hand its connection to.
_UPLOADING: ContextVar[_Upload | None] = ContextVar("dify_oapi_uploading", default=None)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (made in the first running loop) for every request.

    ``limits`` and ``verify`` mean what they mean to ``httpx.AsyncClient``; with
    ``trust_env`` the proxy variables (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``, any case) are read once, here, and applied as httpx applies them.
    ``max_keepalive_connections`` has no aiohttp counterpart: every idle connection is kept
    until ``keepalive_expiry``.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
    ) -> None:
        limits = limits or httpx.Limits()
        self._limit = limits.max_connections or 0
        self._keepalive = limits.keepalive_expiry
        self._ssl = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        self._proxies = _EnvProxies.read() if trust_env else None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    async def _open(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        # A session belongs to its loop; a client used in a later asyncio.run() gets a new one
        # (the old loop's sockets cannot be used, or closed, from here). The old closer is
        # dropped: the interpreter hands it to its loop if that is still open, which closes
        # the old session; a loop closed without finishing it leaves the sockets to the
        # garbage collector.
        connector = _Connector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=self._keepalive,
            ssl=self._ssl,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            auto_decompress=False,  # httpx decodes, under the SDK's caps
            trust_env=False,  # proxies are chosen here, once, not per request in a thread
        )
        # aiohttp re-sends an idempotent request once on a dropped connection by itself; the
        # SDK's retry policy is the only one, so a GET is retried exactly as configured.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        closer = _closed_with_loop(session)
        await closer.__anext__()  # now the loop's: it is finished before the loop closes
        self._session, self._loop, self._closer = session, loop, closer
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        session = self._session if self._loop is loop else None
        if session is None:
            session = await self._open(loop)
        url = request.url
        upload: _Upload | None = None
        try:
            data: Any = request.content or None
        except httpx.RequestNotRead:  # a streamed body (multipart files)
            upload = data = _Upload(request.stream, _write_timeout(request))
            chunked = True
        else:
            chunked = False
            if data is not None and len(data) > _UPLOAD_PIECE:
                upload = data = _Upload(data, _write_timeout(request))
        proxy = self._proxies.choose(url) if self._proxies is not None else None
        uploading = _UPLOADING.set(upload) if upload is not None else None
        timeout = request.extensions.get("timeout")
        try:
            response = await session.request(
                request.method,
                URL(str(url), encoded=True),  # exactly as httpx encoded it
                # Not bound to a local: a traceback printer that shows locals never sees
                # the Authorization header.
                **_header_args(request.headers.raw, chunked, data is not None),
                data=data,
                allow_redirects=False,  # httpx follows redirects itself when asked
                proxy=proxy,
                timeout=self._timeout(timeout),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except _FAILURES as exc:
            error = _request_error(exc, url, upload, session)
        except asyncio.CancelledError:
            if upload is not None:
                upload.abort()  # a half-written body: drop its buffer, do not flush it
            raise
        else:
            return httpx.Response(
                response.status,
                headers=response.raw_headers,
                stream=_Body(response, timeout.get("read") if timeout else None, loop),
                request=request,
                extensions={"http_version": _http_version(response.version)},
            )
        finally:
            if uploading is not None:
                _UPLOADING.reset(uploading)
        _raise_alone(error)

    def _timeout(self, timeout: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
        timeout = timeout or {}
        connect, read, pool = timeout.get("connect"), timeout.get("read"), timeout.get("pool")
        key = (connect, read, pool)
        known = self._timeouts.get(key)
        if known is None:
            # aiohttp's ``connect`` covers the wait for a pooled connection and making one;
            # ``sock_connect`` the connecting alone; ``sock_read`` each wait for data. The
            # pool wait is exact when it is the longer (the usual case), and making a
            # connection is never cut below its own timeout.
            budget = None if pool is None else max(pool, connect or 0.0)
            known = aiohttp.ClientTimeout(
                total=None, connect=budget, sock_connect=connect, sock_read=read
            )
            if len(self._timeouts) < 64:
                self._timeouts[key] = known
        return known

    async def aclose(self) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        closer, same_loop = self._closer, running is self._loop
        self._session = self._closer = None
        if closer is not None and same_loop:
            await closer.aclose()  # closes the session


async def _closed_with_loop(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Waits at its ``yield`` until the client closes, or its loop finishes its async
    generators, as ``asyncio.run()`` does before closing the loop: either way the session
    is closed while its loop still runs, and its sockets with it."""
    try:
        yield
    finally:
        if not session.closed:
            await session.close()


class _Connector(aiohttp.TCPConnector):
    """A pool that never hands out a connection holding bytes nobody asked for."""

    async def connect(self, req: Any, traces: Any, timeout: aiohttp.ClientTimeout) -> Any:
        # A response that ran past its framing (more bytes than Content-Length) leaves a
        # parsed "next answer" on the idle connection: reused, it would be the next
        # request's answer. aiohttp marks such a protocol ``should_close``; drop it and take
        # another. Each pass removes one pooled connection, so the loop ends.
        for _ in range((self.limit or 100) + 1):
            conn = await super().connect(req, traces, timeout)
            protocol = conn.protocol
            if protocol is None or not protocol.should_close:
                break
            conn.close()
        upload = _UPLOADING.get()
        if upload is not None:
            upload.transport = conn.transport
        return conn


class _Body(httpx.AsyncByteStream):
    """The response body as aiohttp buffers it, handed over without copies.

    Its own iterator: a stream reads each chunk with one coroutine call, not through a
    generator (a sixth of the SDK's own work per event, measured in-process).

    It bounds each wait for data by the read timeout itself, with one timer for the whole
    body: aiohttp's own bound (``sock_read``) cancels and re-arms a timer on every chunk
    that arrives, which took 9% to half of the client's work per event of a token stream
    (measured). The bound is httpx's: the time one read waits, so a slow consumer is never
    timed out.
    """

    __slots__ = ("_read", "_response", "_since", "_timer", "ended")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        read_timeout: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._response = response
        self._read = response.content.readany
        #: The body was read to its end (aiohttp has given the connection back).
        self.ended = False
        # When the read now waiting began (time.monotonic()); 0.0 between reads.
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        connection = response.connection
        protocol = connection.protocol if connection is not None else None
        if read_timeout is not None and protocol is not None and not response.content.is_eof():
            protocol.read_timeout = None  # set again by aiohttp for the connection's next request
            protocol.start_timeout()  # with no timeout: cancels the one armed for the head
            ref = weakref.ref(self)
            self._timer = loop.call_later(read_timeout, _watch, ref, read_timeout, loop)

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        self._since = _clock()
        try:
            chunk = await self._read()
        except _FAILURES as exc:
            error = _body_error(exc, self._response.url)
        else:
            self._since = 0.0
            if chunk:
                return chunk
            self.ended = True
            if self._timer is not None:
                self._timer.cancel()
            raise StopAsyncIteration
        _raise_alone(error)

    def expire(self) -> None:
        """End the read waiting for data: it waited the read timeout (on the loop's thread)."""
        exc = aiohttp.ServerTimeoutError("timeout on reading data from socket")
        connection = self._response.connection
        if connection is not None and connection.protocol is not None:
            connection.protocol.set_exception(exc)  # never back to the pool
        self._response.content.set_exception(exc)

    async def aclose(self) -> None:
        # Back to the pool if the body was read to its end and framed well, else closed.
        if self._timer is not None:
            self._timer.cancel()
        self._response.release()

    def __del__(self) -> None:
        # Dropped unclosed: aiohttp's response is kept alive by its own connection (the
        # protocol holds its end-of-body callback), so it is never collected on its own;
        # only this wrapper's collection can give the connection back.
        response = getattr(self, "_response", None)
        if response is None or response.closed or self.abandon():
            return
        with contextlib.suppress(Exception):  # the loop closed just now
            response.release()

    def socket(self) -> Any:
        """The connection's socket (asyncio's view), to wake a read from another thread."""
        connection = self._response.connection
        transport = connection.transport if connection is not None else None
        return transport.get_extra_info("socket") if transport is not None else None

    def wake(self) -> None:
        """End a read waiting for more (on the loop's thread): the connection is cut."""
        content = self._response.content
        if not content.is_eof() and content.exception() is None:
            content.set_exception(aiohttp.ClientConnectionError("connection closed"))

    def close_now(self) -> None:
        """Close on the loop's own thread without awaiting (aiohttp's close is sync)."""
        self._response.close()

    def abandon(self) -> bool:
        """True if the response's loop has closed; it is then marked closed untouched.

        Nothing can be scheduled on a closed loop: releasing the response (here, or in
        aiohttp's own finalizer, which tries the same) would raise "Event loop is closed"
        during garbage collection. The connection goes with its loop.
        """
        loop = getattr(self._response, "_loop", None)
        if loop is None or not loop.is_closed():
            return False
        with contextlib.suppress(AttributeError):
            self._response._closed = True
        return True


_clock = time.monotonic  # asyncio's loop.time() reads this clock


def _watch(ref: weakref.ref[_Body], timeout: float, loop: asyncio.AbstractEventLoop) -> None:
    """The read timeout of one body: expire its read, or look again when one could be due."""
    body = ref()
    if body is None or body.ended or body._response.closed:
        return  # weakly held: a body dropped unclosed is still collected
    since, now = body._since, _clock()
    if since and now - since >= timeout:
        body.expire()
        return
    body._timer = loop.call_at((since or now) + timeout, _watch, ref, timeout, loop)


class _Upload:
    """A large or streamed request body, each piece written within the write timeout.

    aiohttp has no write timeout; when a piece's write outlasts it, the connection is
    aborted (a graceful close would wait for a peer that does not read) and the failure is
    reported as ``WriteTimeout``.
    """

    __slots__ = ("expired", "source", "timeout", "transport")

    def __init__(self, source: Any, timeout: float | None) -> None:
        self.source = source
        self.timeout = timeout
        self.expired = False
        # The socket's transport, set by _Connector.connect: aiohttp's cleanup forgets it
        # when it starts a graceful close, which is what must be cut short.
        self.transport: asyncio.Transport | None = None

    async def __aiter__(self) -> AsyncIterator[bytes | memoryview]:
        if isinstance(self.source, bytes):
            view = memoryview(self.source)
            for start in range(0, len(view), _UPLOAD_PIECE):
                async for piece in self._timed(view[start : start + _UPLOAD_PIECE]):
                    yield piece
        else:
            async for chunk in self.source:
                async for piece in self._timed(chunk):
                    yield piece

    async def _timed(self, piece: bytes | memoryview) -> AsyncIterator[bytes | memoryview]:
        if self.timeout is None:
            yield piece
            return
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)
        try:
            yield piece  # aiohttp resumes us once the piece is written
        finally:
            timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _http_version(version: Any) -> bytes:
    return b"HTTP/1.0" if version is not None and version[1] == 0 else b"HTTP/1.1"


def _write_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    return timeout.get("write") if timeout else None


def _header_args(raw: Iterable[tuple[bytes, bytes]], streamed: bool, body: bool) -> dict[str, Any]:
    headers: CIMultiDict[str] = CIMultiDict(
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
    )
    if streamed:
        # aiohttp frames a streamed body itself and refuses a chunked header beside it.
        headers.popall("Transfer-Encoding", None)
    if (
        "Accept" in headers
        and "Accept-Encoding" in headers
        and "User-Agent" in headers
        and (not body or "Content-Type" in headers)
    ):
        return {"headers": headers}
    return {"headers": headers, "skip_auto_headers": _SKIP_AUTO_HEADERS}


# -- failures ------------------------------------------------------------------------------


def _raise_alone(error: httpx.TransportError) -> NoReturn:
    """Raise ``error`` without the aiohttp exception it replaces as its ``__context__``.

    Raised outside the handler; Python 3.10 still attaches the handled exception of an
    awaiting frame, so the context is also cut here.
    """
    try:
        raise error
    finally:
        error.__context__ = None


def _request_error(
    exc: BaseException, url: httpx.URL, upload: _Upload | None, session: aiohttp.ClientSession
) -> httpx.TransportError:
    """The httpx exception for a failure before the response head arrived."""
    where = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return _tls_error(exc, where)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return _caused(httpx.ConnectError(f"cannot connect to the proxy for {where}"), exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return _caused(httpx.ConnectError(f"cannot connect to {where}: {reason}"), exc)
    if isinstance(exc, ConnectionTimeoutError):
        if _pool_full(session.connector):
            return httpx.PoolTimeout(f"no free connection to {where} within the pool timeout")
        return httpx.ConnectTimeout(f"connecting to {where} timed out")
    if upload is not None and upload.expired:
        return httpx.WriteTimeout(f"sending the request body to {where} timed out")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(f"the proxy refused the tunnel to {where}: HTTP {exc.status}")
    if isinstance(exc, aiohttp.ClientResponseError):
        # A malformed status line or header. aiohttp's own text can quote the server's bytes.
        kind = type(exc.__cause__).__name__ if exc.__cause__ is not None else "bad response"
        return httpx.RemoteProtocolError(f"malformed answer from {where} ({kind})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(f"{where} closed the connection without an answer")
    return _io_error(exc, where)


def _body_error(exc: BaseException, url: URL) -> httpx.TransportError:
    """The httpx exception for a failure while reading the response body."""
    where = f"{url.host}:{url.port}"
    if isinstance(exc, aiohttp.ClientPayloadError):
        # Cut short, bad chunking, or a broken content coding: a framing error.
        kind = type(exc.__cause__).__name__ if exc.__cause__ is not None else "incomplete"
        return httpx.RemoteProtocolError(f"the answer body from {where} broke off ({kind})")
    return _io_error(exc, where)


def _io_error(exc: BaseException, where: str) -> httpx.TransportError:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return httpx.ReadTimeout(f"waiting for data from {where} timed out")
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return httpx.ReadError(f"the connection to {where} failed: {reason}")
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx.ReadError(f"the connection to {where} failed")
    if isinstance(exc, HttpProcessingError):  # aiohttp wraps these; in case it does not
        return httpx.RemoteProtocolError(f"malformed answer from {where} ({type(exc).__name__})")
    return httpx.TransportError(f"the exchange with {where} failed ({type(exc).__name__})")


def _tls_error(exc: aiohttp.ClientSSLError, where: str) -> httpx.TransportError:
    cause = getattr(exc, "certificate_error", None) or exc.os_error
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = f"certificate verify failed: {cause.verify_message}"
    elif isinstance(cause, ssl.SSLError):
        reason = cause.reason or str(cause)
    else:
        reason = type(cause).__name__
    error = httpx.ConnectError(f"TLS handshake with {where} failed: {reason}")
    # Chained to the ssl error itself: the retry policy tells TLS failures by their type.
    cause.__traceback__ = cause.__context__ = None
    error.__cause__ = cause
    return error


def _caused(error: httpx.TransportError, exc: aiohttp.ClientConnectorError) -> httpx.TransportError:
    """Chain the operating system's error (errno and text only), never aiohttp's own."""
    os_error = exc.os_error
    if not type(os_error).__module__.startswith("aiohttp"):
        os_error.__traceback__ = os_error.__context__ = None
        error.__cause__ = os_error
    return error


def _pool_full(connector: aiohttp.BaseConnector | None) -> bool:
    # aiohttp reports a pool wait and a slow connect with one exception; its count of
    # connections in use tells them apart (ours was already given back on a slow connect).
    acquired = getattr(connector, "_acquired", None)
    limit = connector.limit if connector is not None else 0
    return bool(limit) and acquired is not None and len(acquired) >= limit


# -- proxies from the environment ------------------------------------------------------------


class _EnvProxies:
    """httpx's reading of the proxy variables: a proxy per scheme (or ``all``) and the
    ``NO_PROXY`` hosts (``*``, ``host``, ``.domain``, ``host:port``, ``scheme://host``,
    IP addresses) that bypass it."""

    def __init__(self, proxies: dict[str, URL], bypass: list[_Bypass]) -> None:
        self._proxies = proxies
        self._bypass = bypass
        self._chosen: dict[tuple[str, str, int | None], URL | None] = {}

    @classmethod
    def read(cls) -> _EnvProxies | None:
        found = urllib.request.getproxies()
        proxies: dict[str, URL] = {}
        for scheme in ("http", "https", "all"):
            value = found.get(scheme)
            if value:
                proxies[scheme] = _proxy_url(scheme, value)
        bypass = []
        for entry in (e.strip() for e in found.get("no", "").split(",")):
            if entry == "*":
                return None
            if entry:
                bypass.append(_Bypass(entry))
        return cls(proxies, bypass) if proxies else None

    def choose(self, url: httpx.URL) -> URL | None:
        key = (url.scheme, url.host, url.port)
        try:
            return self._chosen[key]
        except KeyError:
            pass
        chosen: URL | None = None
        if not any(rule.matches(url) for rule in self._bypass):
            chosen = self._proxies.get(url.scheme) or self._proxies.get("all")
        if len(self._chosen) < 1024:
            self._chosen[key] = chosen
        return chosen


class _Bypass:
    """One ``NO_PROXY`` entry, matched like httpx's mount patterns."""

    __slots__ = ("host", "port", "scheme")
    host: re.Pattern[str] | None

    def __init__(self, entry: str) -> None:
        if "://" not in entry:
            address = entry.split("/")[0]
            if _ip_version(address) == 4 or entry.lower() == "localhost":
                entry = f"all://{entry}"
            elif _ip_version(address) == 6:
                entry = f"all://[{entry}]"
            else:
                entry = f"all://*{entry}"
        try:
            pattern = httpx.URL(entry)
        except httpx.InvalidURL:
            self.scheme, self.host, self.port = "-", None, None  # matches nothing
            return
        self.scheme = "" if pattern.scheme == "all" else pattern.scheme
        host = pattern.host
        self.port = pattern.port
        if not host or host == "*":
            self.host = None
        elif host.startswith("*."):
            self.host = re.compile(rf"^.+\.{re.escape(host[2:])}$")
        elif host.startswith("*"):
            self.host = re.compile(rf"^(.+\.)?{re.escape(host[1:])}$")
        else:
            self.host = re.compile(rf"^{re.escape(host)}$")

    def matches(self, url: httpx.URL) -> bool:
        if self.scheme and self.scheme != url.scheme:
            return False
        if self.host is not None and not self.host.match(url.host):
            return False
        return self.port is None or self.port == url.port


def _ip_version(text: str) -> int:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return 0


def _proxy_url(scheme: str, value: str) -> URL:
    url = URL(value if "://" in value else f"http://{value}")
    if url.scheme not in ("http", "https"):
        shown = url.with_user(None).with_password(None) if url.host else "?"
        raise ConfigurationError(
            f"backend='aiohttp' supports http(s) proxies only; the {scheme} proxy from the "
            f"environment is {shown}"
        )
    return url
