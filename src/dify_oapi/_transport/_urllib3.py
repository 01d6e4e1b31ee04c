"""An httpx transport on urllib3: ``Client(backend="urllib3")``.

httpx keeps the request and response objects and the decoding (under the SDK's caps);
urllib3 carries the bytes, with fewer CPU cycles per streamed event than httpcore
(``benchmarks/TRANSPORTS.md``). urllib3 never retries, redirects or decodes here: the SDK's
retry policy is the only one. Every urllib3 failure becomes the httpx exception of its
phase, so that policy sees what it sees on httpx's own transport:

* not sent (DNS, refused, connect or pool timeout, TLS): ``ConnectError``, ``ConnectTimeout``,
  ``PoolTimeout``; a TLS failure is a ``ConnectError`` caused by the ``ssl.SSLError``;
* maybe sent (the connection was up and the request written, or being written):
  ``WriteTimeout``, ``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``;
* while reading the body: ``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``.

urllib3's exceptions are never chained: their text can quote the request's URL and the
proxy's credentials.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
from collections.abc import Iterator
from typing import Any, NoReturn, cast

import httpx
import urllib3
from httpx._utils import URLPattern, get_environment_proxies
from urllib3 import connection as u3conn
from urllib3 import exceptions as u3

from .._exceptions import ConfigurationError
from ._head import PASSED, SlowHeadTimer

__all__ = ["Urllib3Transport"]

_CHUNK = 64 * 1024


class Urllib3Transport(httpx.BaseTransport):
    """One urllib3 pool manager (and one per proxy) for every request.

    ``limits`` and ``verify`` mean what they mean to ``httpx.Client``: ``max_connections``
    is each host's pool size, waited for (up to the pool timeout) when all are busy;
    ``max_keepalive_connections`` and ``keepalive_expiry`` have no urllib3 counterpart (an
    idle connection the server closed is noticed, and replaced, before it is used). With
    ``trust_env`` the proxy variables (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``, any case) are read once, here, and matched as httpx matches them; an
    explicit ``proxy`` carries every request instead.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
        proxy: str | None = None,
    ) -> None:
        if not hasattr(urllib3.BaseHTTPResponse, "read1"):  # 1.x, or 2.0 and 2.1
            found = getattr(urllib3, "__version__", "?")
            raise ConfigurationError(
                f"backend='urllib3' needs urllib3>=2.2, found {found}: "
                "pip install 'dify-oapi2[urllib3]'"
            )
        limits = limits or httpx.Limits()
        try:
            context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"verify: cannot load CA bundle {verify!r}: {exc}") from None
        self._options: dict[str, Any] = {
            "maxsize": limits.max_connections or 100,
            "block": limits.max_connections is not None,
            "retries": False,
            "ssl_context": context,
        }
        if context.verify_mode == ssl.CERT_NONE:
            self._options["assert_hostname"] = False  # urllib3 would match names itself
        self._direct = urllib3.PoolManager(**self._options)
        self._direct.pool_classes_by_scheme = _POOLS
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._routes: list[tuple[URLPattern, str | None]] = []
        if proxy is not None:
            self._routes = [(URLPattern("all://"), proxy)]
        elif trust_env:
            found = get_environment_proxies()
            patterns = sorted((URLPattern(key), url) for key, url in found.items())
            self._routes = [(pattern, url) for pattern, url in patterns]
        self._timeouts: dict[tuple[Any, ...], urllib3.Timeout] = {}

    def _manager(self, url: httpx.URL) -> urllib3.PoolManager:
        for pattern, proxy in self._routes:
            if pattern.matches(url):
                if proxy is None:
                    break
                manager = self._proxied.get(proxy)
                if manager is None:
                    manager = self._proxied[proxy] = _proxy_manager(proxy, self._options)
                return manager
        return self._direct

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        try:
            body: Any = request.content or None
        except httpx.RequestNotRead:  # a streamed body (multipart files)
            body = request.stream
        timeout = request.extensions.get("timeout") or {}
        headers = urllib3.HTTPHeaderDict()
        for name, value in request.headers.raw:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        try:
            response = self._manager(url).urlopen(
                request.method,
                str(url),
                body=body,
                headers=headers,
                retries=False,
                redirect=False,  # the SDK follows redirects itself, never turning POST to GET
                assert_same_host=False,
                preload_content=False,
                decode_content=False,  # httpx decodes, under the SDK's caps
                release_conn=False,
                timeout=self._timeout(timeout),
                pool_timeout=timeout.get("pool"),
            )
        except (u3.HTTPError, OSError) as exc:
            error = _request_error(exc, url)
        else:
            network = _NetworkStream(cast(urllib3.HTTPResponse, response), timeout.get("read"))
            return httpx.Response(
                response.status,
                headers=list(_raw_headers(response)),
                stream=_Body(network, url),
                request=request,
                extensions={
                    "http_version": b"HTTP/1.0" if response.version == 10 else b"HTTP/1.1",
                    "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
                    "network_stream": network,
                },
            )
        _raise_alone(error)

    def _timeout(self, timeout: dict[str, float | None]) -> urllib3.Timeout:
        # urllib3 applies ``connect`` to connecting and to writing the request, ``read`` to
        # each wait for the answer's bytes; httpx's ``write`` has no separate place.
        key = (timeout.get("connect"), timeout.get("read"))
        known = self._timeouts.get(key)
        if known is None:
            known = urllib3.Timeout(connect=key[0], read=key[1])
            if len(self._timeouts) < 64:
                self._timeouts[key] = known
        return known

    def close(self) -> None:
        self._direct.clear()
        for manager in self._proxied.values():
            manager.clear()


class _NetworkStream:
    """The answer's connection as the SDK's core sees httpcore's: ``read`` with a timeout
    (bounded by the core while it drains a finished stream) and ``get_extra_info("socket")``
    (shut down to wake a read blocked in another thread)."""

    def __init__(self, response: urllib3.HTTPResponse, read_timeout: float | None) -> None:
        self._response = response
        connection = getattr(response, "connection", None)
        self._sock: Any = getattr(connection, "sock", None)
        self._timeout = read_timeout
        self._pieces: Iterator[bytes] | None = None

    def _next_piece(self) -> bytes:
        pieces = self._pieces
        if pieces is None:
            response = self._response
            if response.chunked and response.supports_chunked_reads():
                pieces = response.read_chunked(decode_content=False)
            else:
                pieces = iter(lambda: response.read1(_CHUNK, decode_content=False), b"")
            self._pieces = pieces
        return next(pieces, b"")

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """The next piece of the body (b"" at its end), waiting at most ``timeout``."""
        sock = self._sock
        if timeout is None or sock is None or timeout == self._timeout:
            return self._next_piece()
        sock.settimeout(timeout)
        try:
            return self._next_piece()
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self._timeout)

    def get_extra_info(self, name: str) -> Any:
        return self._sock if name == "socket" else None


class _Body(httpx.SyncByteStream):
    """The response body, each piece handed over as soon as it arrives."""

    def __init__(self, network: _NetworkStream, url: httpx.URL) -> None:
        self._network = network
        self._response = network._response
        self._where = url
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        network = self._network
        try:
            # Looked up on each piece: the core may bound the reads while iterating.
            while piece := network.read(_CHUNK):
                yield piece
        except (u3.HTTPError, OSError) as exc:
            error = _body_error(exc, _where(self._where))
        else:
            self._done = True
            return
        _raise_alone(error)

    def close(self) -> None:
        response = self._response
        if not self._done:
            response.close()  # unread bytes: this connection cannot carry another answer
        # Hands the slot back to the pool (a closed connection is reopened on its next use).
        response.release_conn()

    def __del__(self) -> None:
        # Dropped unclosed, its pool slot would be lost for good (the pool blocks when full).
        response = getattr(self, "_response", None)
        if response is not None and getattr(response, "_connection", None) is not None:
            with contextlib.suppress(Exception):
                self.close()


def _raw_headers(response: urllib3.BaseHTTPResponse) -> Iterator[tuple[bytes, bytes]]:
    for name, value in response.headers.iteritems():
        yield name.encode("latin-1"), value.encode("latin-1")


def _proxy_manager(proxy: str, options: dict[str, Any]) -> urllib3.ProxyManager:
    url = httpx.URL(proxy)
    if url.scheme not in ("http", "https"):
        shown = url.copy_with(username=None, password=None)
        raise ConfigurationError(f"backend='urllib3' supports http(s) proxies only, got {shown}")
    headers = None
    if url.username or url.password:
        headers = urllib3.make_headers(proxy_basic_auth=f"{url.username}:{url.password}")
    plain = str(url.copy_with(username=None, password=None))
    manager = urllib3.ProxyManager(plain, proxy_headers=headers, **options)
    manager.pool_classes_by_scheme = _POOLS
    return manager


# -- the head by the call's deadline ---------------------------------------------------------


def _head(conn: Any, read_head: Any) -> Any:
    """``read_head()``, ended by a timeout when the call's deadline passes first: http.client
    reads a head through one blocking socket that a trickling server keeps busy."""
    timer = SlowHeadTimer(conn.sock)
    try:
        return read_head()
    except BaseException:
        if timer.fired:
            raise TimeoutError(PASSED) from None  # urllib3's ReadTimeoutError, then httpx's
        raise
    finally:
        timer.cancel()


class _HTTPConnection(u3conn.HTTPConnection):
    def getresponse(self) -> Any:  # type: ignore[override]
        return _head(self, super().getresponse)


class _HTTPSConnection(u3conn.HTTPSConnection):
    def getresponse(self) -> Any:  # type: ignore[override]
        return _head(self, super().getresponse)


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: dict[str, type[urllib3.HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


# -- failures ------------------------------------------------------------------------------


def _where(url: httpx.URL) -> str:
    return f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def _raise_alone(error: httpx.TransportError) -> NoReturn:
    """Raise ``error`` without the urllib3 exception it replaces as its ``__context__``."""
    try:
        raise error
    finally:
        error.__context__ = None


def _request_error(exc: BaseException, url: httpx.URL) -> httpx.TransportError:
    """The httpx exception for a failure before the response head arrived."""
    where = _where(url)
    if isinstance(exc, u3.ProxyError):
        original = exc.original_error if hasattr(exc, "original_error") else None
        if isinstance(original, (u3.NewConnectionError, u3.ConnectTimeoutError)):
            return httpx.ConnectError(f"cannot connect to the proxy for {where}")
        if isinstance(original, (u3.SSLError, ssl.SSLError)):
            return _tls_error(original, where)
        # The tunnel was refused (or broke) before the request was written.
        return httpx.ProxyError(f"the proxy refused the tunnel to {where}")
    if isinstance(exc, u3.EmptyPoolError):
        return httpx.PoolTimeout(f"no free connection to {where} within the pool timeout")
    if isinstance(exc, u3.NewConnectionError):  # before ConnectTimeoutError: its subclass
        reason = _os_reason(exc)
        return httpx.ConnectError(f"cannot connect to {where}: {reason}")
    if isinstance(exc, u3.ConnectTimeoutError):
        return httpx.ConnectTimeout(f"connecting to {where} timed out")
    if isinstance(exc, u3.SSLError):
        return _tls_error(exc, where)
    if isinstance(exc, u3.ReadTimeoutError):
        return httpx.ReadTimeout(f"waiting for the answer from {where} timed out")
    if isinstance(exc, u3.ProtocolError):
        cause = exc.__cause__ or exc.__context__  # the socket's or http.client's own error
        if isinstance(cause, TimeoutError):  # the socket timed out writing the request
            return httpx.WriteTimeout(f"sending the request to {where} timed out")
        if isinstance(cause, http.client.RemoteDisconnected):
            return httpx.RemoteProtocolError(f"{where} closed the connection without an answer")
        if isinstance(cause, OSError):
            reason = cause.strerror or type(cause).__name__
            return httpx.ReadError(f"the connection to {where} failed: {reason}")
        if isinstance(cause, http.client.HTTPException):
            kind = type(cause).__name__
            return httpx.RemoteProtocolError(f"malformed answer from {where} ({kind})")
        return httpx.ReadError(f"the connection to {where} failed")
    if isinstance(exc, u3.LocationParseError):
        return httpx.ConnectError(f"cannot connect to {where}: bad address")
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return httpx.ReadError(f"the connection to {where} failed: {reason}")
    return httpx.TransportError(f"the exchange with {where} failed ({type(exc).__name__})")


def _body_error(exc: BaseException, where: str) -> httpx.TransportError:
    """The httpx exception for a failure while reading the response body."""
    if isinstance(exc, u3.ReadTimeoutError):
        return httpx.ReadTimeout(f"waiting for data from {where} timed out")
    if isinstance(exc, (u3.IncompleteRead, u3.InvalidChunkLength)):
        kind = type(exc).__name__
        return httpx.RemoteProtocolError(f"the answer body from {where} broke off ({kind})")
    if isinstance(exc, u3.ProtocolError):
        cause = exc.__cause__ or exc.__context__  # the socket's or http.client's own error
        if isinstance(cause, OSError):
            reason = cause.strerror or type(cause).__name__
            return httpx.ReadError(f"the connection to {where} failed: {reason}")
        kind = type(cause).__name__ if cause is not None else "incomplete"
        return httpx.RemoteProtocolError(f"the answer body from {where} broke off ({kind})")
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return httpx.ReadError(f"the connection to {where} failed: {reason}")
    return httpx.RemoteProtocolError(f"the answer body from {where} broke off")


def _os_reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return "connection failed"


def _tls_error(exc: BaseException, where: str) -> httpx.TransportError:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = nested or cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = f"certificate verify failed: {cause.verify_message}"
    elif isinstance(cause, ssl.SSLError):
        reason = cause.reason or str(cause)
    else:
        reason = type(exc).__name__
        cause = ssl.SSLError(reason)  # the retry policy tells TLS failures by this type
    error = httpx.ConnectError(f"TLS handshake with {where} failed: {reason}")
    cause.__traceback__ = cause.__context__ = None
    error.__cause__ = cause
    return error
