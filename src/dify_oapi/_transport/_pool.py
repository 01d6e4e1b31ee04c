"""The connection pool a client and its copies share, and keeping it valid across forks,
event loops and threads.

A pool built before ``os.fork()`` is rebuilt in the child, so the child never writes on
the parent's sockets. An async pool belongs to the event loop it was first used on: used
from a later loop after that one closed, it is rebuilt; used from another loop that still
runs, it raises :class:`~dify_oapi.LoopMismatchError`.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

import httpx

from .._exceptions import ConfigurationError, LoopMismatchError
from ._head import watch_httpcore
from ._slots import AsyncSlots, Slots

if TYPE_CHECKING:
    from ._body import Lease

__all__ = ["Pool"]

_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()


class Pool:
    """An httpx client (the SDK's own, or the caller's), its slots and its open bodies."""

    def __init__(self, options: dict[str, Any], is_async: bool) -> None:
        self._options = options
        self.is_async = is_async
        given = options.get("http_client")
        self.own = given is None
        limits: httpx.Limits = options["limits"]
        self.limit = limits.max_connections if self.own else None
        self.http: Any = given if given is not None else self._build()
        self.slots: Slots | None = Slots(self.limit) if self.limit and not is_async else None
        self.async_slots: AsyncSlots | None = None
        self.loop: Any = None
        self.leases: weakref.WeakSet[Lease] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.closed = False
        self._parked: list[Any] = []  # clients of a parent process or a closed loop
        if self.own:
            _POOLS.add(self)

    def _build(self) -> Any:
        options = self._options
        common: dict[str, Any] = {
            "limits": options["limits"],
            "verify": options["verify"],
            # Redirects are followed by the SDK itself, which never turns a POST into a GET.
            "follow_redirects": False,
            "trust_env": True,
        }
        if self.is_async:
            transport = options.get("transport")
            if options.get("backend") == "aiohttp":
                transport = _aiohttp_transport(options["limits"], options["verify"])
            return httpx.AsyncClient(transport=transport, **common)
        transport = options.get("transport")
        if options.get("backend") == "urllib3":
            transport = _urllib3_transport(options["limits"], options["verify"])
        if transport is None:
            client = httpx.Client(**common)
            watch_httpcore(client)
            return client
        return httpx.Client(transport=transport, **common)

    # -- async: one loop at a time -----------------------------------------------------------

    def bind(self) -> AsyncSlots | None:
        """The slots for the running loop; rebuilds what belonged to a closed loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        if loop is self.loop:
            return self.async_slots
        with self._lock:
            if self.loop is not None and loop is not self.loop:
                if not self.loop.is_closed():
                    raise LoopMismatchError(
                        "this AsyncClient is bound to the event loop it was first used on, "
                        "which still runs; make one client per event loop"
                    )
                if not self.own:
                    raise LoopMismatchError(
                        "the http_client passed to this AsyncClient belonged to an event loop "
                        "that has closed; pass a new one"
                    )
                self._abandon()
                self.http = self._build()
            self.loop = loop
            self.async_slots = AsyncSlots(self.limit, loop) if self.limit else None
        return self.async_slots

    # -- forks -------------------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: a new pool; the parent's sockets are left alone."""
        self.leases = weakref.WeakSet()
        self._lock = threading.Lock()
        self._abandon()
        self.http = self._build()
        self.slots = Slots(self.limit) if self.limit and not self.is_async else None
        self.async_slots = None
        self.loop = None

    def _abandon(self) -> None:
        """Forget the current httpx client without closing (or writing on) its sockets."""
        old = self.http
        self._parked.append(old)  # kept alive so no finalizer closes the parent's sockets

    # -- closing -----------------------------------------------------------------------------

    def interrupt_all(self) -> None:
        """End every body still being read (from any thread): their reads fail at once."""
        for lease in list(self.leases):
            lease.interrupt(closing=True)

    def close(self) -> None:
        self.closed = True
        self.interrupt_all()
        if self.own:
            self.http.close()

    async def aclose(self) -> None:
        import asyncio

        self.closed = True
        self.interrupt_all()
        if not self.own:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self.loop is None or self.loop is running:
            await self.http.aclose()
        elif self.loop.is_closed():
            self._abandon()  # its loop is gone: nothing can be awaited on it any more
        else:
            # Queued on the pool's own loop, which may stop before it gets to it (its
            # run_until_complete() returns): then the close runs on that loop's next turn, and
            # waiting here for it would never end.
            done = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.http.aclose(), self.loop)
            )
            while not done.done() and self.loop.is_running():
                await asyncio.wait({done}, timeout=0.05)
            if done.done():
                await done


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _aiohttp_transport(limits: httpx.Limits, verify: Any) -> httpx.AsyncBaseTransport:
    """The SDK's transport on aiohttp: faster than httpcore's pool at high concurrency."""
    try:
        from ._aiohttp import AiohttpTransport
    except ModuleNotFoundError as exc:
        if exc.name not in ("aiohttp", "multidict", "yarl"):
            raise
        raise ConfigurationError(
            "backend='aiohttp' needs the extra: pip install 'dify-oapi2[aiohttp]'"
        ) from None
    return AiohttpTransport(limits=limits, verify=verify)


def _urllib3_transport(limits: httpx.Limits, verify: Any) -> httpx.BaseTransport:
    """The SDK's transport on urllib3: fewer CPU cycles per streamed event than httpcore."""
    try:
        from ._urllib3 import Urllib3Transport
    except ModuleNotFoundError as exc:
        if exc.name != "urllib3":
            raise
        raise ConfigurationError(
            "backend='urllib3' needs the extra: pip install 'dify-oapi2[urllib3]'"
        ) from None
    return Urllib3Transport(limits=limits, verify=verify)
