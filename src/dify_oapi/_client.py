"""The public clients: configuration, services, and running calls on the pool.

``Client._call`` and ``AsyncClient._call`` run :func:`._engine.drive` — the one place a
call is decided — doing only its I/O: sending on the pool, sleeping between attempts,
reading a stream to the end for ``collect=True``. Every generated operation method ends
there.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import _services
from ._engine import COLLECT, SEND, SLEEP, Context, drive
from ._exceptions import ClientClosedError, DifyError, InvalidArgumentsError
from ._hooks import Hooks, in_scope, scope
from ._options import build_config
from ._services import AsyncServiceAttributes, Service, ServiceAttributes
from ._table import Endpoint, Link, Waiter
from ._transport import ACCEPT_ENCODING, Pool, asend, send
from ._version import __version__

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import AsyncClientOptions, ClientOptions, CopyOptions
    from ._secret import Secret
    from .batch import AsyncBatchIterator, BatchIterator, BatchResult, BatchResults

__all__ = ["AsyncClient", "Client"]

# Tests replace these to record waits instead of sleeping.
_sleep = time.sleep


async def _async_sleep(seconds: float) -> None:
    import asyncio  # only async users pay for importing asyncio

    await asyncio.sleep(seconds)


C = TypeVar("C", bound="_BaseClient")


def _ended(hooks: Hooks, ep: Endpoint, result: Any) -> None:
    """``on-end`` for a call that returned: now, or when the stream it returned ends."""
    handlers = hooks.handlers("on-end", ep.qualname)
    if not handlers:
        return
    end_with = getattr(result, "_end_with", None)
    if end_with is not None:
        end_with(ep, handlers, scope())
        return
    for handler in handlers:
        handler(ep, result, None)


def _own_chain(error: BaseException) -> None:
    """Drop an implicit context that a transport library's exception left on ``error``'s
    chain: Python 3.10 attaches one through awaiting frames, and its text may hold what a
    server echoed (the key)."""
    seen = error
    for _ in range(16):
        context = seen.__context__
        if context is not None and not type(context).__module__.startswith(_OWN):
            seen.__context__ = None
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            return
        seen = nxt


_OWN = ("dify_oapi", "httpx", "httpcore", "builtins", "asyncio", "ssl", "socket")


def _fields(request: Any) -> dict[str, Any]:
    return {name: getattr(request, name) for name in getattr(request, "__struct_fields__", ())}


class _BaseClient(Context):
    """Configuration shared by :class:`Client` and :class:`AsyncClient`."""

    _is_async: bool
    _call: Callable[[Endpoint, Any, dict[str, Any]], Any]

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.config, pool_options = build_config(options, is_async=self._is_async)
        self._follow_redirects: bool = pool_options["follow_redirects"]
        self.hooks: Hooks = pool_options["hooks"] or Hooks()
        self._closed = False
        self._owner = True
        self._services: dict[str, Service] = {}
        extra = pool_options["extra_endpoints"]
        paths = (
            [extra]
            if isinstance(extra, (str, Path)) or hasattr(extra, "__fspath__")
            else list(extra)
        )
        self._registry = (
            _services.Registry(_services.load_tables(Path(p) for p in paths))
            if paths
            else _services.SHIPPED
        )
        self._pool = Pool(pool_options, self._is_async)
        self._server_version: str | None = None
        # Ids of the runs this client (and its copies) asked to stop, newest last: a run
        # that then ends failed was stopped, not failed (see StreamState.stopped).
        self._stopped_ids: dict[str, None] = {}
        self._stop_fields: dict[str, tuple[str, ...]] = {}
        self._refresh_headers()

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        return self.config.timeout

    @property
    def max_retries(self) -> int:
        return self.config.max_retries

    @property
    def server_version(self) -> str | None:
        """The server's version as its last answer named it (its service's
        ``version_header``); ``None`` before the first answer or from a server that sends none.
        """
        return self._server_version

    def _asked_stop(self, ep: Endpoint, kwargs: Mapping[str, Any]) -> None:
        """Remember the ids a stop operation (some row's ``stop`` link) was called with."""
        fields = self._stop_fields.get(ep.qualname)
        if fields is None:
            rows = self._registry.table(ep.service).endpoints if ep.service else []
            fields = tuple(
                {
                    n: None
                    for r in rows
                    if r.stop and r.stop.operation == ep.name
                    for n in r.stop.from_state
                }
            )
            self._stop_fields[ep.qualname] = fields
        stopped = self._stopped_ids
        for name in fields:
            value = kwargs.get(name)
            if isinstance(value, str) and value:
                stopped[value] = None
        while len(stopped) > 1024:  # bounded: only recent stops matter
            stopped.pop(next(iter(stopped)), None)

    def _saw(self, ep: Endpoint, answer: Any) -> None:
        name = ep.spec.version_header
        if name:
            version = answer.response.headers.get(name)
            if version is not None:
                self._server_version = version

    # -- services ------------------------------------------------------------------------

    if not TYPE_CHECKING:  # the stub declares each service with its type

        def __getattr__(self, name: str) -> Any:
            registry = self.__dict__.get("_registry")
            if registry is not None and name in registry.names:
                service = self._services.get(name)
                if service is None:
                    cls = registry.service_class(name, self._is_async)
                    service = self._services.setdefault(name, cls(self))
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

    # -- configuration -------------------------------------------------------------------

    def with_options(self: C, **options: Unpack[CopyOptions]) -> C:
        """A copy with other settings that shares this client's connection pool, its
        concurrency limit and its hooks.

        Options are checked as the constructor checks them. Closing the copy does not close
        the pool; closing the original does.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.config = self.config.copy(options)
        clone._services = {}
        clone._owner = False
        clone._closed = False
        clone._refresh_headers()
        return clone

    def __repr__(self) -> str:
        # Never show the key, not even a prefix.
        return f"<{type(self).__name__} base_url={self.config.base_url!r} api_key=set>"

    def _refresh_headers(self) -> None:
        """Merge the pool's, the SDK's and the user's headers once, not on every call."""
        from ._engine import CANONICAL

        merged = httpx.Headers(self._pool.http.headers)
        merged["User-Agent"] = f"dify-oapi2/{__version__}"
        merged["Accept-Encoding"] = ACCEPT_ENCODING  # only what the SDK can inflate with a cap
        merged.update(self.config.default_headers)
        # Canonical spelling for the names set per call, so a plain dict update replaces them.
        self._base_headers = {
            CANONICAL.get(name.lower(), name): value
            for name, value in ((k.decode("latin-1"), v.decode("latin-1")) for k, v in merged.raw)
        }

    def _link(
        self, ep: Endpoint, link: Link, state: Any, given: Mapping[str, Any], key: Secret
    ) -> Any:
        """A stream's follow-up call (re-attach, stop), with the ids it received."""
        target = self._endpoint(f"{ep.service}.{link.operation}")
        kwargs = link.arguments(state.ids, given)
        kwargs["api_key"] = key
        return self._call(target, None, kwargs)


class Client(_BaseClient, ServiceAttributes):
    """Synchronous client. ``client.chat.send(query=..., user=...)`` or ``client.call(...)``.

    ``api_key`` and ``base_url`` default to ``DIFY_API_KEY`` and ``DIFY_BASE_URL``. Pass
    ``http_client`` or ``transport`` to control the connection layer; a client you pass in
    is never closed by this one. ``backend="urllib3"`` (extra ``dify-oapi2[urllib3]``)
    carries requests over urllib3, which spends fewer CPU cycles per streamed event.
    """

    _is_async = False

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        super().__init__(options)

    def call(self, name: str, request: Any = None, /, **kwargs: Any) -> Any:
        """Call an operation by name: ``client.call("chat.send", query=..., user=...)``."""
        return self._call(self._endpoint(name), request, kwargs)

    def _call(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> Any:
        self._asked_stop(ep, kwargs if request is None else _fields(request))
        hooks = self.hooks
        if not hooks:
            return self._drive(ep, request, kwargs, hooks)
        with in_scope(None):
            try:
                result = self._drive(ep, request, kwargs, hooks)
            except BaseException as exc:
                hooks.emit("on-end", ep.qualname, ep, None, exc)
                raise
            _ended(hooks, ep, result)
        return result

    def _drive(self, ep: Endpoint, request: Any, kwargs: dict[str, Any], hooks: Hooks) -> Any:
        driver = drive(self, ep, request, kwargs)
        pool = self._pool
        value: Any = None
        error: BaseException | None = None
        attempt = 0
        while True:
            try:
                action, arg = driver.send(value) if error is None else driver.throw(error)
            except StopIteration as stop:
                return stop.value
            value = error = None
            if action is SEND:
                try:
                    value = send(pool, arg, hooks, attempt)
                    self._saw(ep, value)
                except httpx.HTTPError as exc:
                    error = exc
                except RuntimeError:
                    if self._closed or pool.closed:
                        raise ClientClosedError(f"{ep.qualname}: the client is closed") from None
                    raise
                attempt += 1
            elif action is SLEEP:
                _sleep(arg)
            elif action is COLLECT:
                value = arg.collect()

    def _iterate(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        from ._pagination import Pager

        pager = Pager(ep, request, kwargs)
        while not pager.done:
            yield from pager.advance(self._call(ep, None, pager.next_kwargs()))

    def _wait(self, waiter: Waiter, ep: Endpoint, kwargs: dict[str, Any]) -> Any:
        from ._waiters import poll

        steps = poll(waiter, kwargs)
        value: Any = None
        while True:
            try:
                action, arg = steps.send(value)
            except StopIteration as stop:
                return stop.value
            if action == "call":
                value = self._call(ep, None, arg)
            else:
                _sleep(arg)
                value = None

    def batch(
        self,
        name: str,
        items: Iterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> BatchResults:
        """Call operation ``name`` once per item (keyword dicts or request structs).

        At most ``concurrency`` calls run at once (fewer while the app's concurrency cap
        answers 429); results come back in input order, each with its value or its error;
        ``on_result(result, done_count)`` is called as each finishes in order. ``options``
        (e.g. ``collect=True``, ``api_key=``) apply to every call. The list's ``stats`` say
        how it ran (the width it settled at, among others).
        """
        from .batch import BatchResults

        with self.iter_batch(
            name, items, concurrency=concurrency, on_result=on_result, **options
        ) as results:
            return BatchResults(results, results.stats)

    def iter_batch(
        self,
        name: str,
        items: Iterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> BatchIterator:
        """Like :meth:`batch`, yielding each result in input order as soon as it is ready.

        Calls start only while the next result is asked for: stop iterating and nothing more
        is sent. Use it in a ``with`` block (or ``close()`` it) to drop calls not yet begun.
        """
        from .batch import BatchIterator

        return BatchIterator(
            self, name, items, concurrency=concurrency, on_result=on_result, options=options
        )

    def close(self) -> None:
        """Close the connection pool (only if this client created it) and end every stream
        still open on it. Safe to call twice, from any thread."""
        self._closed = True
        if self._owner:
            self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_BaseClient, AsyncServiceAttributes):
    """Asynchronous client with the same operations: ``await client.chat.send(...)``.

    ``backend="aiohttp"`` (extra ``dify-oapi2[aiohttp]``) carries requests over aiohttp,
    which sustains more requests per second than httpx's own pool at high concurrency.
    A client belongs to the event loop it is first used on; used from a later loop after
    that one closed, it rebuilds its pool.
    """

    _is_async = True

    def __init__(self, **options: Unpack[AsyncClientOptions]) -> None:
        super().__init__(options)

    async def call(self, name: str, request: Any = None, /, **kwargs: Any) -> Any:
        """Call an operation by name: ``await client.call("chat.send", ...)``."""
        return await self._call(self._endpoint(name), request, kwargs)

    async def _call(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> Any:
        self._asked_stop(ep, kwargs if request is None else _fields(request))
        hooks = self.hooks
        if not hooks:
            try:
                return await self._drive(ep, request, kwargs, hooks)
            except DifyError as exc:
                _own_chain(exc)
                raise
        with in_scope(None):
            try:
                result = await self._drive(ep, request, kwargs, hooks)
            except BaseException as exc:
                if isinstance(exc, DifyError):
                    _own_chain(exc)
                hooks.emit("on-end", ep.qualname, ep, None, exc)
                raise
            _ended(hooks, ep, result)
        return result

    async def _drive(self, ep: Endpoint, request: Any, kwargs: dict[str, Any], hooks: Hooks) -> Any:
        driver = drive(self, ep, request, kwargs)
        pool = self._pool
        value: Any = None
        error: BaseException | None = None
        attempt = 0
        while True:
            try:
                action, arg = driver.send(value) if error is None else driver.throw(error)
            except StopIteration as stop:
                return stop.value
            value = error = None
            if action is SEND:
                try:
                    value = await asend(pool, arg, hooks, attempt)
                    self._saw(ep, value)
                except httpx.HTTPError as exc:
                    error = exc
                except RuntimeError:
                    if self._closed or pool.closed:
                        raise ClientClosedError(f"{ep.qualname}: the client is closed") from None
                    raise
                attempt += 1
            elif action is SLEEP:
                await _async_sleep(arg)
            elif action is COLLECT:
                value = await arg.collect()

    async def _iterate(
        self, ep: Endpoint, request: Any, kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        from ._pagination import Pager

        pager = Pager(ep, request, kwargs)
        while not pager.done:
            for item in pager.advance(await self._call(ep, None, pager.next_kwargs())):
                yield item

    async def _wait(self, waiter: Waiter, ep: Endpoint, kwargs: dict[str, Any]) -> Any:
        from ._waiters import poll

        steps = poll(waiter, kwargs)
        value: Any = None
        while True:
            try:
                action, arg = steps.send(value)
            except StopIteration as stop:
                return stop.value
            if action == "call":
                value = await self._call(ep, None, arg)
            else:
                await _async_sleep(arg)
                value = None

    async def batch(
        self,
        name: str,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> BatchResults:
        """Async twin of :meth:`Client.batch` (tasks, not threads)."""
        from .batch import BatchResults

        async with self.iter_batch(
            name, items, concurrency=concurrency, on_result=on_result, **options
        ) as results:
            return BatchResults([result async for result in results], results.stats)

    def iter_batch(
        self,
        name: str,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 8,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        **options: Any,
    ) -> AsyncBatchIterator:
        """Async twin of :meth:`Client.iter_batch`."""
        from .batch import AsyncBatchIterator

        return AsyncBatchIterator(
            self, name, items, concurrency=concurrency, on_result=on_result, options=options
        )

    async def close(self) -> None:
        """Close the connection pool (only if this client created it) and end every stream
        still open on it. Safe to call twice, and from another event loop."""
        self._closed = True
        if self._owner:
            await self._pool.aclose()

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
