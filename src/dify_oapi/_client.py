"""The clients: configuration, the one send path with retries, and result handling.

``Client._call`` and ``AsyncClient._call`` are the only places a request is sent. Every
generated operation method ends there.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import _services
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    ConfigurationError,
    InvalidArgumentsError,
    RequestValidationError,
    ResponseDecodeError,
    ResponseTooLargeError,
)
from ._request import Prepared, check_header_value, prepare
from ._response import RawResponse, decode_body, status_error
from ._retry import MAX_RETRY_AFTER, RetryPolicy, retry_after_seconds
from ._services import AsyncServiceAttributes, Service, ServiceAttributes
from ._table import CALL_OPTIONS, Endpoint
from ._version import __version__

if TYPE_CHECKING:
    from ._batch import BatchResult
    from ._streaming import StreamState
    from .types import DocumentIndexingStatus

__all__ = ["AsyncClient", "Client"]

logger = logging.getLogger("dify_oapi")

DEFAULT_BASE_URL = "https://api.dify.ai/v1"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=60.0, pool=30.0)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
)
DEFAULT_MAX_RETRIES = 2
MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024
MAX_EVENT_BYTES = 8 * 1024 * 1024
MAX_BINARY_BYTES = 256 * 1024 * 1024
# Header names the SDK sets or replaces per call, in the spelling it sends.
_CANONICAL = {
    name.lower(): name for name in ("Accept", "Authorization", "Content-Type", "User-Agent")
}

# Tests replace these to record waits instead of sleeping.
_sleep = time.sleep


async def _async_sleep(seconds: float) -> None:
    import asyncio  # only async users pay for importing asyncio

    await asyncio.sleep(seconds)


C = TypeVar("C", bound="_BaseClient")
TimeoutTypes = float | httpx.Timeout | None


class _Options:
    """Per-call options popped from the keyword arguments of an operation."""

    __slots__ = (
        "api_key",
        "extra_headers",
        "max_retries",
        "raw",
        "retry_unsafe",
        "stream",
        "timeout",
    )

    def __init__(self, kwargs: dict[str, Any]) -> None:
        pop = kwargs.pop
        self.stream: bool | None = pop("stream", None)
        self.raw: bool = bool(pop("raw", False))
        self.api_key: str | None = pop("api_key", None)
        self.timeout: TimeoutTypes = pop("timeout", None)
        self.max_retries: int | None = pop("max_retries", None)
        self.extra_headers: Mapping[str, str] | None = pop("extra_headers", None)
        self.retry_unsafe: bool = bool(pop("retry_unsafe", False))


def _normalize_base_url(url: str) -> str:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"base_url is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"base_url must be an absolute http(s) URL such as {DEFAULT_BASE_URL!r}, got {url!r}"
        )
    if parsed.query or parsed.fragment:
        raise ConfigurationError("base_url must not have a query or fragment")
    text = str(parsed.copy_with(query=None, fragment=None)).rstrip("/")
    # The Service API always lives under /v1; a bare host means its default location.
    if parsed.path in ("", "/"):
        text += "/v1"
    return text


def _check_api_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError("api_key must be a non-empty string")
    if not all(33 <= ord(c) < 127 for c in key):
        # Only printable ASCII can be sent in a header; anything else would fail inside
        # httpx with an error whose text holds the whole key.
        raise ConfigurationError("api_key must be printable ASCII without spaces")
    return key


class _Body:
    """A body gathered chunk by chunk (decoded): refused past ``cap`` bytes, or cut at ``cap``
    when ``truncate``."""

    __slots__ = ("cap", "chunks", "op", "size", "truncate")

    def __init__(self, response: httpx.Response, cap: int, op: str, truncate: bool) -> None:
        _check_encoding(response, op)
        declared = response.headers.get("content-length")
        if not truncate and declared and declared.isdigit() and int(declared) > cap:
            raise ResponseTooLargeError(f"answer of {declared} bytes exceeds {cap}", operation=op)
        self.cap, self.op, self.truncate = cap, op, truncate
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; True once a truncated body is full."""
        if self.truncate:
            chunk = chunk[: self.cap - self.size]
        self.size += len(chunk)
        if self.size > self.cap:
            raise ResponseTooLargeError(f"answer exceeds {self.cap} bytes", operation=self.op)
        self.chunks.append(chunk)
        return self.truncate and self.size >= self.cap


def _read_capped(response: httpx.Response, cap: int, op: str, truncate: bool = False) -> bytes:
    body = _Body(response, cap, op, truncate)
    for chunk in response.iter_bytes():
        if body.add(chunk):
            break
    return b"".join(body.chunks)


async def _aread_capped(
    response: httpx.Response, cap: int, op: str, truncate: bool = False
) -> bytes:
    body = _Body(response, cap, op, truncate)
    async for chunk in response.aiter_bytes():
        if body.add(chunk):
            break
    return b"".join(body.chunks)


def _check_encoding(response: httpx.Response, op: str) -> None:
    # Stacked codings ("gzip, gzip") multiply: 2 KB can inflate to a gigabyte inside httpx,
    # in one step, before any size cap can look at it. One coding is bounded per chunk.
    if "," in response.headers.get("content-encoding", ""):
        raise ResponseTooLargeError(
            "refusing an answer with more than one content coding (a decompression bomb)",
            operation=op,
        )


def _transport_error(op: str, exc: Exception) -> Exception:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{type(exc).__name__}: request timed out", operation=op)
    if isinstance(exc, RuntimeError) and "closed" in str(exc):
        return ClientClosedError(f"{op}: the client's connection pool is closed")
    return APIConnectionError(f"{type(exc).__name__}: {exc}", operation=op)


class _BaseClient:
    """Configuration shared by :class:`Client` and :class:`AsyncClient`."""

    _is_async: bool

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        limits: httpx.Limits | None = None,
        verify: bool | str = True,
        follow_redirects: bool = False,
        extra_endpoints: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
        max_json_bytes: int = MAX_JSON_BYTES,
        max_error_bytes: int = MAX_ERROR_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_binary_bytes: int = MAX_BINARY_BYTES,
    ) -> None:
        self._api_key = _check_api_key(api_key if api_key is not None else _env("DIFY_API_KEY"))
        self.base_url = _normalize_base_url(base_url or _env("DIFY_BASE_URL") or DEFAULT_BASE_URL)
        self.timeout = _timeout(timeout) if timeout is not None else DEFAULT_TIMEOUT
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError("max_retries must be an int >= 0")
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})
        for name, value in self.default_headers.items():
            check_header_value(name, value, "client")
        self.max_json_bytes = max_json_bytes
        self.max_error_bytes = max_error_bytes
        self.max_event_bytes = max_event_bytes
        self.max_binary_bytes = max_binary_bytes
        self._limits = limits or DEFAULT_LIMITS
        # A CA bundle path becomes an SSL context (httpx deprecates passing the path).
        self._verify: Any = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._follow_redirects = follow_redirects
        self._closed = False
        self._services: dict[str, Service] = {}
        paths = (
            [extra_endpoints]
            if isinstance(extra_endpoints, (str, os.PathLike))
            else list(extra_endpoints)
        )
        self._registry = (
            _services.Registry(_services.load_tables(Path(p) for p in paths))
            if paths
            else _services.SHIPPED
        )

    # -- services ------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        registry = self.__dict__.get("_registry")
        if registry is not None and name in registry.names:
            service = self._services.get(name)
            if service is None:
                cls = registry.service_class(name, self._is_async)
                service = self._services[name] = cls(self)
            return service
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> Iterable[str]:
        return [*super().__dir__(), *self._registry.names]

    @property
    def operations(self) -> list[str]:
        """Every name ``call`` accepts: ``service.operation`` and the aliases."""
        return self._registry.all_names()

    def _endpoint(self, name: str) -> Endpoint:
        ep = self._registry.endpoint(name)
        if ep is None:
            import difflib

            close = difflib.get_close_matches(name, self._registry.all_names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InvalidArgumentsError(f"unknown operation {name!r}{hint}")
        return ep

    # -- configuration ---------------------------------------------------------------

    def with_options(
        self: C,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> C:
        """A copy with other settings that shares this client's connection pool.

        Closing the copy does not close the pool; closing the original does.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._services = {}
        clone._owns_http = False  # type: ignore[attr-defined]
        clone._closed = False
        if api_key is not None:
            clone._api_key = _check_api_key(api_key)
        if base_url is not None:
            clone.base_url = _normalize_base_url(base_url)
        if timeout is not None:
            clone.timeout = _timeout(timeout)
        if max_retries is not None:
            clone.max_retries = max_retries
        if default_headers is not None:
            for name, value in default_headers.items():
                check_header_value(name, value, "client")
            clone.default_headers = {**self.default_headers, **default_headers}
        clone._refresh_headers()
        return clone

    def __repr__(self) -> str:
        # Never show the key, not even a prefix.
        key = "set" if self._api_key else "missing"
        return f"<{type(self).__name__} base_url={self.base_url!r} api_key={key}>"

    def _refresh_headers(self) -> None:
        """Merge the pool's, the SDK's and the user's headers once, not on every call."""
        merged = httpx.Headers(self._http.headers)
        merged["User-Agent"] = f"dify-oapi2/{__version__}"
        merged.update(self.default_headers)
        if self._api_key is not None:
            merged["Authorization"] = f"Bearer {self._api_key}"
        # Canonical spelling for the names set per call, so a plain dict update replaces them.
        self._base_headers = {
            _CANONICAL.get(name.lower(), name): value
            for name, value in ((k.decode("latin-1"), v.decode("latin-1")) for k, v in merged.raw)
        }

    def _headers(self, op: str, opts: _Options) -> dict[str, str]:
        headers = self._base_headers.copy()
        if opts.api_key is not None:
            headers["Authorization"] = f"Bearer {_check_api_key(opts.api_key)}"
        elif self._api_key is None:
            raise RequestValidationError(
                "no API key: pass api_key= or set DIFY_API_KEY", operation=op
            )
        if opts.extra_headers:
            for name, value in opts.extra_headers.items():
                check_header_value(name, value, op)
                canonical = _CANONICAL.get(name.lower())
                if canonical is None:
                    for present in [k for k in headers if k.lower() == name.lower()]:
                        del headers[present]
                headers[canonical or name] = value
        return headers

    def _plan(
        self, ep: Endpoint, request: Any, kwargs: dict[str, Any]
    ) -> tuple[Prepared, _Options, dict[str, str], int, bool, httpx.Timeout]:
        """Everything decided before I/O: request, headers, retry budget, timeout."""
        if self._closed:
            raise ClientClosedError(f"{ep.qualname}: the client is closed")
        opts = _Options(kwargs)
        prepared = prepare(ep, request, kwargs, stream=opts.stream)
        headers = self._headers(ep.qualname, opts)
        retries = self.max_retries if opts.max_retries is None else opts.max_retries
        if not prepared.replayable:
            retries = 0
        safe = ep.safe or opts.retry_unsafe
        timeout = _timeout(opts.timeout) if opts.timeout is not None else self.timeout
        return prepared, opts, headers, retries, safe, timeout

    def _drive(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> Any:
        """The whole life of one call, without I/O: a generator the sync and async clients run.

        It yields ``(_SEND, attempt)`` to have the request sent (receiving ``(response, body)``
        or the transport exception thrown in) and ``(_SLEEP, seconds)`` between attempts, and
        returns the call's result.
        """
        user = kwargs.get("user") if request is None else getattr(request, "user", None)
        prepared, opts, headers, retries, safe, timeout = self._plan(ep, request, kwargs)
        op = ep.qualname
        if prepared.content is not None:
            headers["Content-Type"] = "application/json"
        if prepared.streaming and ep.stream is not None:
            headers["Accept"] = "text/event-stream"
        send = _Send(
            prepared,
            self.base_url + prepared.path,
            headers,
            timeout,
            self.max_json_bytes if ep.response is not bytes else self.max_binary_bytes,
            self.max_error_bytes,
        )
        attempt = 0
        while True:
            try:
                response, body = yield _SEND, send
            except (httpx.HTTPError, RuntimeError) as exc:
                if isinstance(exc, RuntimeError) and "closed" not in str(exc):
                    raise
                retry = isinstance(exc, httpx.HTTPError) and RetryPolicy.retry_on_error(
                    exc, safe=safe
                )
                delay = self._retry_delay(op, attempt, retries, type(exc).__name__, None)
                if not retry or delay is None:
                    raise _transport_error(op, exc) from exc
                attempt += 1
                yield _SLEEP, delay
                continue
            if response.status_code < 300:
                break
            error = status_error(op, response, body, secret=headers["Authorization"][7:])
            if RetryPolicy.retry_on_status(error.status_code, error.code, safe=safe):
                delay = self._retry_delay(
                    op, attempt, retries, f"HTTP {error.status_code}", response
                )
                if delay is not None:
                    attempt += 1
                    yield _SLEEP, delay
                    continue
            raise error
        if not prepared.streaming:
            result = decode_body(ep, response, body)
            return RawResponse(response, result) if opts.raw else result
        # Streams, pages, batches and waiters load on first use: a blocking call needs none.
        from . import _streaming

        if ep.stream is None:
            binary = _streaming.AsyncBinaryStream if self._is_async else _streaming.BinaryStream
            return binary(response, op)
        if body is not None:  # a streaming request answered with something other than SSE
            raise ResponseDecodeError(
                "expected an event stream, got "
                f"{response.headers.get('content-type') or 'no content type'!r}",
                operation=op,
                status_code=response.status_code,
                body=body[:4096],
            )
        resumer = self._resumer(ep, user, opts.api_key) if ep.resume else None
        events = _streaming.AsyncStream if self._is_async else _streaming.Stream
        return events(response, ep, self.max_event_bytes, resumer)

    def _resumer(self, ep: Endpoint, user: Any, api_key: str | None) -> Any:
        """Re-attaches to a run through the row named by ``resume`` (its events endpoint)."""
        target = self._endpoint(f"{ep.service}.{ep.resume}")

        def resume(state: StreamState) -> Any:
            kwargs: dict[str, Any] = {"workflow_run_id": state.workflow_run_id, "user": user}
            if api_key is not None:
                kwargs["api_key"] = api_key
            return self._call(target, None, kwargs)

        return resume

    @staticmethod
    def _collecting(ep: Endpoint, kwargs: dict[str, Any]) -> bool:
        """Pop ``collect``; a collected call streams and returns the blocking shape."""
        if not kwargs.pop("collect", False):
            return False
        if ep.stream is None or ep.response is None or kwargs.get("raw"):
            raise InvalidArgumentsError(f"{ep.qualname}() cannot collect a stream")
        kwargs["stream"] = True
        return True

    def _retry_delay(
        self, op: str, attempt: int, retries: int, reason: str, response: httpx.Response | None
    ) -> float | None:
        """The wait before the next attempt, or ``None`` to give up now."""
        if attempt >= retries:
            return None
        wait = retry_after_seconds(response.headers) if response is not None else None
        if wait is not None and wait > MAX_RETRY_AFTER:
            logger.debug("%s: not retrying, server asked to wait %.0fs", op, wait)
            return None
        delay = wait if wait is not None and wait > 0 else RetryPolicy(retries).backoff(attempt + 1)
        logger.debug(
            "%s: retry %d of %d in %.2fs after %s", op, attempt + 1, retries, delay, reason
        )
        return delay


_SEND = "send"
_SLEEP = "sleep"


class _Send:
    """One request as the I/O layer needs it; sent again unchanged on retry."""

    __slots__ = ("error_cap", "headers", "json_cap", "prepared", "timeout", "url")

    def __init__(
        self,
        prepared: Prepared,
        url: str,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        json_cap: int,
        error_cap: int,
    ) -> None:
        self.prepared = prepared
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self.json_cap = json_cap
        self.error_cap = error_cap

    def build(
        self, http: httpx.Client | httpx.AsyncClient, files: Any, form: Any, own_pool: bool
    ) -> httpx.Request:
        prepared = self.prepared
        # On the SDK's own pool (its headers merged in already, no base URL or params) skip
        # httpx's per-call merging, a tenth of a blocking call's CPU; cookies a server set
        # still need it.
        make: Any = httpx.Request if own_pool and not http.cookies else http.build_request
        return make(  # type: ignore[no-any-return]
            prepared.endpoint.method,
            self.url,
            params=prepared.params,
            content=prepared.content,
            data=form,
            files=files,
            headers=self.headers,
            extensions={"timeout": self.timeout.as_dict()},
        )

    def cap(self, response: httpx.Response) -> tuple[int, bool]:
        """How much of the body to read now and whether to cut it there rather than refuse
        it; -1 leaves the body streaming."""
        if response.status_code >= 300:
            return self.error_cap, True  # an error keeps its status even with a huge body
        if not self.prepared.streaming:
            return self.json_cap, False
        media_type = response.headers.get("content-type", "").partition(";")[0].strip()
        is_sse = media_type.lower() == "text/event-stream"
        if self.prepared.endpoint.stream is None or is_sse:
            return -1, False
        return self.error_cap, True


class _FairSlots:
    """A counting semaphore that serves waiting threads in arrival order.

    ``threading.Semaphore`` lets a releasing thread take its slot straight back, so under
    load one thread can wait through hundreds of another thread's calls.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float = -1) -> bool:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(None if timeout < 0 else timeout):
            return True
        with self._lock:
            try:
                self._waiters.remove(turn)
            except ValueError:
                return True  # handed a slot just as the wait ran out
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the slot goes straight to the next in line
            else:
                self._free += 1


class _SlotBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body (sync or async) that gives its concurrency slot back, once, when it
    closes."""

    def __init__(self, inner: Any, slots: Any) -> None:
        self._inner = inner
        self._slots: Any = slots

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._inner)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._inner.__aiter__()  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self.release()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self.release()

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


def _aiohttp_transport(limits: httpx.Limits, verify: Any) -> httpx.AsyncBaseTransport:
    """The SDK's transport on aiohttp: faster than httpcore's pool at high concurrency."""
    try:
        from ._transport._aiohttp import AiohttpTransport
    except ModuleNotFoundError as exc:
        if exc.name not in ("aiohttp", "multidict", "yarl"):
            raise
        raise ConfigurationError(
            "backend='aiohttp' needs the extra: pip install 'dify-oapi2[aiohttp]'"
        ) from None
    return AiohttpTransport(limits=limits, verify=verify)


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _timeout(value: Any) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if isinstance(value, (int, float)) and value > 0:
        return httpx.Timeout(
            float(value), connect=min(float(value), DEFAULT_TIMEOUT.connect or 5.0)
        )
    raise ConfigurationError(f"timeout must be a positive number or httpx.Timeout, got {value!r}")


class Client(_BaseClient, ServiceAttributes):
    """Synchronous client. ``client.chat.send(query=..., user=...)`` or ``client.call(...)``.

    ``api_key`` and ``base_url`` default to ``DIFY_API_KEY`` and ``DIFY_BASE_URL``. Pass
    ``http_client`` or ``transport`` to control the connection layer; a client you pass in
    is never closed by this one.
    """

    _is_async = False

    def __init__(
        self,
        *,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass http_client or transport, not both")
        self._owns_http = http_client is None
        # At most one request per pooled connection: requests queued inside httpcore's pool
        # cost time quadratic in the queue length, so the queue lives here instead.
        limit = self._limits.max_connections if http_client is None else None
        self._slots = _FairSlots(limit) if limit else None
        self._http = http_client or httpx.Client(
            transport=transport,
            limits=self._limits,
            verify=self._verify,
            follow_redirects=self._follow_redirects,
            timeout=self.timeout,
        )
        self._own_pool = http_client is None
        self._refresh_headers()

    def call(self, name: str, request: Any = None, /, **kwargs: Any) -> Any:
        """Call an operation by name: ``client.call("chat.send", query=..., user=...)``."""
        return self._call(self._endpoint(name), request, kwargs)

    def _call(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> Any:
        collect = self._collecting(ep, kwargs)
        driver = self._drive(ep, request, kwargs)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                action, arg = driver.send(value) if error is None else driver.throw(error)
            except StopIteration as stop:
                return stop.value.collect() if collect else stop.value
            value = error = None
            if action is _SLEEP:
                _sleep(arg)
                continue
            try:
                value = self._send(arg)
            except (httpx.HTTPError, RuntimeError) as exc:
                error = exc

    def _iterate(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        from ._pagination import Pager

        pager = Pager(ep, request, kwargs)
        while not pager.done:
            yield from pager.advance(self._call(ep, None, pager.next_kwargs()))

    def _send(self, send: _Send) -> tuple[httpx.Response, bytes | None]:
        prepared = send.prepared
        slots = self._slots
        if slots is not None:
            wait = send.timeout.pool
            if not slots.acquire(timeout=-1 if wait is None else wait):
                raise httpx.PoolTimeout("no free connection slot within the pool timeout")
        try:
            with prepared.multipart() as (files, form):
                request = send.build(self._http, files, form, self._own_pool)
                response = self._http.send(request, stream=True)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        holder = None
        if slots is not None:
            holder = response.stream = _SlotBody(response.stream, slots)
        cap, truncate = send.cap(response)
        if cap == -1:
            if holder is not None and response.is_closed:
                holder.release()  # an in-memory body is closed already
            return response, None
        try:
            return response, _read_capped(response, cap, prepared.endpoint.qualname, truncate)
        finally:
            response.close()
            if holder is not None:
                holder.release()

    def batch(
        self,
        name: str,
        items: Iterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> list[BatchResult[Any]]:
        """Call operation ``name`` once per item (keyword dicts or request structs).

        At most ``concurrency`` calls run at once; results come back in input order, each with
        its value or its error; ``on_result(result, done_count)`` is called as each finishes
        in order. ``options`` (e.g. ``collect=True``, ``api_key=``) apply to every call.
        """
        return list(
            self.iter_batch(name, items, concurrency=concurrency, on_result=on_result, **options)
        )

    def iter_batch(
        self,
        name: str,
        items: Iterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> Iterator[BatchResult[Any]]:
        """Like :meth:`batch`, yielding each result in input order as soon as it is ready."""
        from ._batch import iter_batch

        return iter_batch(
            self, name, items, concurrency=concurrency, on_result=on_result, options=options
        )

    def wait_for_indexing(
        self,
        *,
        dataset_id: str,
        batch: str,
        timeout: float = 600.0,
        poll_interval: float = 2.0,
        raise_on_failure: bool = True,
        **options: Any,
    ) -> list[DocumentIndexingStatus]:
        """Poll a document batch until every document is completed (or failed, paused).

        Returns the final statuses. A failed document raises :class:`IndexingFailedError`
        (with every status) unless ``raise_on_failure=False``; the deadline raises
        :class:`IndexingTimeoutError` with the last statuses seen.
        """
        from ._waiters import wait_for_indexing

        return wait_for_indexing(
            self,
            dataset_id=dataset_id,
            batch=batch,
            timeout=timeout,
            poll_interval=poll_interval,
            raise_on_failure=raise_on_failure,
            **options,
        )

    def close(self) -> None:
        """Close the connection pool (only if this client created it). Safe to call twice."""
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_BaseClient, AsyncServiceAttributes):
    """Asynchronous client with the same operations: ``await client.chat.send(...)``.

    ``backend="aiohttp"`` (extra ``dify-oapi2[aiohttp]``) carries requests over aiohttp,
    which sustains more requests per second than httpx's own pool at high concurrency.
    """

    _is_async = True

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backend: str = "httpx",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass http_client or transport, not both")
        if backend == "aiohttp":
            if http_client is not None or transport is not None:
                raise ConfigurationError("backend='aiohttp' makes its own transport")
            transport = _aiohttp_transport(self._limits, self._verify)
        elif backend != "httpx":
            raise ConfigurationError(f"backend must be 'httpx' or 'aiohttp', got {backend!r}")
        self._owns_http = http_client is None
        self._slot_limit = self._limits.max_connections if http_client is None else None
        self._slots: Any = None  # an asyncio.Semaphore, made in the running loop on first use
        self._http = http_client or httpx.AsyncClient(
            transport=transport,
            limits=self._limits,
            verify=self._verify,
            follow_redirects=self._follow_redirects,
            timeout=self.timeout,
        )
        self._own_pool = http_client is None
        self._refresh_headers()

    async def call(self, name: str, request: Any = None, /, **kwargs: Any) -> Any:
        """Call an operation by name: ``await client.call("chat.send", ...)``."""
        return await self._call(self._endpoint(name), request, kwargs)

    async def _call(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> Any:
        collect = self._collecting(ep, kwargs)
        driver = self._drive(ep, request, kwargs)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                action, arg = driver.send(value) if error is None else driver.throw(error)
            except StopIteration as stop:
                return (await stop.value.collect()) if collect else stop.value
            value = error = None
            if action is _SLEEP:
                await _async_sleep(arg)
                continue
            try:
                value = await self._send(arg)
            except (httpx.HTTPError, RuntimeError) as exc:
                error = exc

    async def _iterate(
        self, ep: Endpoint, request: Any, kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        from ._pagination import Pager

        pager = Pager(ep, request, kwargs)
        while not pager.done:
            for item in pager.advance(await self._call(ep, None, pager.next_kwargs())):
                yield item

    async def _send(self, send: _Send) -> tuple[httpx.Response, bytes | None]:
        prepared = send.prepared
        slots = self._async_slots()
        if slots is not None:
            import asyncio

            try:
                await asyncio.wait_for(slots.acquire(), send.timeout.pool)
            except asyncio.TimeoutError:
                raise httpx.PoolTimeout("no free connection slot within the pool timeout") from None
        try:
            with prepared.multipart() as (files, form):
                request = send.build(self._http, files, form, self._own_pool)
                response = await self._http.send(request, stream=True)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        holder = None
        if slots is not None:
            holder = response.stream = _SlotBody(response.stream, slots)
        cap, truncate = send.cap(response)
        if cap == -1:
            if holder is not None and response.is_closed:
                holder.release()
            return response, None
        try:
            body = await _aread_capped(response, cap, prepared.endpoint.qualname, truncate)
            return response, body
        finally:
            await response.aclose()
            if holder is not None:
                holder.release()

    async def batch(
        self,
        name: str,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> list[BatchResult[Any]]:
        """Async twin of :meth:`Client.batch` (tasks, not threads)."""
        return [
            result
            async for result in self.iter_batch(
                name, items, concurrency=concurrency, on_result=on_result, **options
            )
        ]

    def iter_batch(
        self,
        name: str,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> AsyncIterator[BatchResult[Any]]:
        """Async twin of :meth:`Client.iter_batch`."""
        from ._batch import aiter_batch

        return aiter_batch(
            self, name, items, concurrency=concurrency, on_result=on_result, options=options
        )

    async def wait_for_indexing(
        self,
        *,
        dataset_id: str,
        batch: str,
        timeout: float = 600.0,
        poll_interval: float = 2.0,
        raise_on_failure: bool = True,
        **options: Any,
    ) -> list[DocumentIndexingStatus]:
        """Async twin of :meth:`Client.wait_for_indexing`."""
        from ._waiters import async_wait_for_indexing

        return await async_wait_for_indexing(
            self,
            dataset_id=dataset_id,
            batch=batch,
            timeout=timeout,
            poll_interval=poll_interval,
            raise_on_failure=raise_on_failure,
            **options,
        )

    def _async_slots(self) -> Any:
        if self._slots is None and self._slot_limit:
            import asyncio

            self._slots = asyncio.Semaphore(self._slot_limit)
        return self._slots

    async def close(self) -> None:
        """Close the connection pool (only if this client created it). Safe to call twice."""
        self._closed = True
        if self._owns_http:
            await self._http.aclose()

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


assert {*_Options.__slots__, "collect"} == CALL_OPTIONS, "call options and _Options disagree"
