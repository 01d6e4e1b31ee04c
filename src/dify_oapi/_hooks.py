"""Named hooks: code that runs at fixed points of every call, for what cannot be data.

A hook name is a point, optionally narrowed to a service or one operation:
``before-request``, ``before-request.knowledge``, ``before-request.chat.send``. A handler
registered for a point runs for every call under it. The points and their arguments:

- ``before-request``: ``(endpoint, request, attempt)``, the ``httpx.Request`` about to be
  sent (a handler may change its headers).
- ``after-response``: ``(endpoint, response, attempt)``, once the status and headers arrived.
- ``on-retry``: ``(endpoint, attempt, delay, reason)``, before sleeping ``delay`` seconds.
- ``on-event``: ``(endpoint, event, state)``, each decoded stream event.
- ``on-end``: ``(endpoint, outcome, error)``, once per call, also one refused before
  anything was sent: ``outcome`` is the result, ``error`` the exception raised, if any. A
  call that returns a stream ends with the stream: when its last event arrived, it failed
  (``error`` is what iterating raises) or it was closed (``error`` is ``None``).

Handlers run in registration order, broadest point first; an exception in a handler
propagates to the caller. :func:`scope` is a dict of the call whose handlers are running
(the same one from the first ``before-request`` to ``on-end``, also when a stream ends
later), for handlers that keep something per call; ``on-event`` handlers have the stream's
``state`` for that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["POINTS", "Hooks", "scope"]

POINTS = frozenset({"before-request", "after-response", "on-retry", "on-event", "on-end"})

Handler = Callable[..., Any]

# Set by a client around each call it runs while hooks are registered (no cost otherwise).
_SCOPE: ContextVar[dict[Any, Any] | None] = ContextVar("dify_oapi_hook_scope", default=None)


def scope() -> dict[Any, Any]:
    """The running call's own dict: every handler of one call sees the same one."""
    found = _SCOPE.get()
    return {} if found is None else found


@contextmanager
def in_scope(data: dict[Any, Any] | None) -> Iterator[dict[Any, Any]]:
    """Run handlers as part of the call that owns ``data`` (a fresh call: ``None``)."""
    mine = {} if data is None else data
    token = _SCOPE.set(mine)
    try:
        yield mine
    finally:
        _SCOPE.reset(token)


class Hooks:
    """A registry of hook handlers; a client holds one, and its copies share it."""

    __slots__ = ("_cache", "_handlers", "_lock")

    #: The running call's own dict (:func:`scope`), for handlers: ``Hooks.scope()``.
    scope = staticmethod(scope)

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._cache: dict[tuple[str, str], tuple[Handler, ...]] = {}
        self._lock = threading.Lock()

    def register(self, name: str, handler: Handler) -> Handler:
        """Run ``handler`` at ``name`` (``point``, ``point.service`` or
        ``point.service.operation``); returns it, so it works as a decorator's body."""
        point = name.partition(".")[0]
        if point not in POINTS:
            raise ValueError(f"unknown hook point {point!r}; one of {sorted(POINTS)}")
        if not callable(handler):
            raise TypeError("a hook handler must be callable")
        with self._lock:
            self._handlers.setdefault(name, []).append(handler)
            self._cache = {}
        return handler

    def unregister(self, name: str, handler: Handler) -> None:
        with self._lock:
            handlers = self._handlers.get(name, [])
            if handler in handlers:
                handlers.remove(handler)
            self._cache = {}

    def __bool__(self) -> bool:
        return any(self._handlers.values())

    def handlers(self, point: str, qualname: str) -> tuple[Handler, ...]:
        """Every handler for ``point`` on operation ``qualname`` (``service.name``)."""
        key = (point, qualname)
        found = self._cache.get(key)
        if found is None:
            service = qualname.partition(".")[0]
            names = (point, f"{point}.{service}", f"{point}.{qualname}")
            with self._lock:
                found = tuple(h for n in names for h in self._handlers.get(n, ()))
                self._cache[key] = found
        return found

    def emit(self, point: str, qualname: str, *args: Any) -> None:
        for handler in self.handlers(point, qualname):
            handler(*args)
