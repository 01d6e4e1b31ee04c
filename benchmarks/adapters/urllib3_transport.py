"""A minimal httpx transport on urllib3, written here only to measure the idea (TRANSPORTS.md).

No maintained httpx transport on urllib3 is on PyPI. This one maps httpx's request onto
``PoolManager.urlopen`` (no retries, no redirects, no decoding: httpx decodes), streams the
body chunk by chunk as it arrives, and maps urllib3's failures onto httpx's by phase: a
failure to connect is ``ConnectError`` / ``ConnectTimeout``, a full pool ``PoolTimeout``,
anything after the connection is up (the request may have been read) a read-side error.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import urllib3
from urllib3 import exceptions as u3


def _mapped(exc: Exception) -> type[httpx.TransportError]:
    if isinstance(exc, u3.EmptyPoolError):
        return httpx.PoolTimeout
    if isinstance(exc, u3.ProxyError):
        return httpx.ProxyError
    if isinstance(exc, u3.NewConnectionError):  # before ConnectTimeoutError: a subclass of it
        return httpx.ConnectError
    if isinstance(exc, u3.ConnectTimeoutError):
        return httpx.ConnectTimeout
    if isinstance(exc, u3.ReadTimeoutError):
        return httpx.ReadTimeout
    if isinstance(exc, u3.SSLError):
        return httpx.ConnectError
    cause = exc.args[1] if len(exc.args) > 1 else exc.__context__
    if isinstance(cause, ConnectionResetError) and not isinstance(cause, ConnectionAbortedError):
        return httpx.ReadError
    return httpx.RemoteProtocolError


class _Body(httpx.SyncByteStream):
    """The response body as urllib3 receives it: each chunk as soon as it arrives."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        r = self._response
        try:
            if r.chunked and r.supports_chunked_reads():
                yield from r.read_chunked(decode_content=False)
            else:
                while chunk := r.read1(65536, decode_content=False):
                    yield chunk
            self._done = True
        except u3.HTTPError as exc:
            raise _mapped(exc)(str(exc)) from exc

    def close(self) -> None:
        r = self._response
        if not self._done:
            r.close()  # unread bytes: the connection cannot be reused
        r.release_conn()


class Urllib3Transport(httpx.BaseTransport):
    """``httpx.Client(transport=Urllib3Transport(limits=..., verify=..., proxy=...))``."""

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: bool | ssl.SSLContext = True,
        proxy: str | None = None,
    ) -> None:
        size = (limits.max_connections if limits is not None else None) or 10
        options: dict[str, Any] = {"maxsize": size, "block": True, "retries": False}
        if isinstance(verify, ssl.SSLContext):
            options["ssl_context"] = verify
        elif not verify:
            options.update(cert_reqs="CERT_NONE", assert_hostname=False)
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        headers = urllib3.HTTPHeaderDict()
        for name, value in request.headers.raw:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        try:
            response = self._pool.urlopen(
                request.method,
                str(request.url),
                body=request.read() or None,
                headers=headers,
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=timeout.get("connect"), read=timeout.get("read")),
                pool_timeout=timeout.get("pool"),
            )
        except u3.HTTPError as exc:
            raise _mapped(exc)(str(exc), request=request) from exc
        return httpx.Response(
            response.status,
            headers=[
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
            ],
            stream=_Body(response),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    def close(self) -> None:
        self._pool.clear()
