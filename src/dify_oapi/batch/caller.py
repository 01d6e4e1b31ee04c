"""What a batch needs of a client: a small protocol, so the runners import no client."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

__all__ = ["AsyncCaller", "Caller", "arguments"]


class Caller(Protocol):
    """A synchronous client: :class:`~dify_oapi.Client` is one."""

    def call(self, name: str, request: Any = None, /, **kwargs: Any) -> Any: ...

    def _endpoint(self, name: str) -> Any: ...


class AsyncCaller(Protocol):
    """An asynchronous client: :class:`~dify_oapi.AsyncClient` is one."""

    def call(self, name: str, request: Any = None, /, **kwargs: Any) -> Awaitable[Any]: ...

    def _endpoint(self, name: str) -> Any: ...


def arguments(item: Any, options: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``(request, keywords)`` for one item: a keyword dict, or a request struct."""
    if isinstance(item, Mapping):
        return None, {**options, **item}
    return item, dict(options)
