"""The dispatcher: endpoint tables become service classes with one method per row.

This runs once, at import. Every generated method has the same body: hand the row, the
optional request struct and the keyword arguments to the client's single ``_call``. The
sync and async clients differ only in that ``_call``, so both share these functions.
Type checkers read the generated ``_services.pyi`` instead of this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

import httpx
import msgspec

from . import types
from ._exceptions import EndpointTableError
from ._table import CALL_OPTIONS, Endpoint, index_endpoints, load_table

__all__ = ["ENDPOINTS", "INDEX", "SERVICE_NAMES", "Service", "build_services"]

TABLE_DIR = Path(__file__).parent / "endpoints"
SERVICE_NAMES = ("chat", "chatflow", "completion", "dify", "knowledge", "workflow")


class CallOptions(TypedDict, total=False):
    """Per-call options every operation takes besides ``stream`` and ``raw``."""

    api_key: str | None
    timeout: float | httpx.Timeout | None
    max_retries: int | None
    extra_headers: Mapping[str, str] | None
    retry_unsafe: bool


class Service:
    """Operations of one service, bound to a client."""

    __slots__ = ("_client",)
    _endpoints: dict[str, Endpoint] = {}

    def __init__(self, client: Any) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} operations={sorted(self._endpoints)}>"

    def __dir__(self) -> Iterable[str]:
        return [*super().__dir__(), *self._endpoints]


class ServiceAttributes:
    """Typed service attributes of :class:`~dify_oapi.Client` (declared in the stub)."""

    __slots__ = ()


class AsyncServiceAttributes:
    """Typed service attributes of :class:`~dify_oapi.AsyncClient` (declared in the stub)."""

    __slots__ = ()


class Namespace(Service):
    """Founding-description names of one resource, e.g. ``knowledge.document``."""

    __slots__ = ()


_OPTION_PARAMS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
    for name in sorted(CALL_OPTIONS)
]


@cache
def _signature(ep: Endpoint) -> inspect.Signature:
    """For help() and IDE introspection; the stubs carry the types."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    if ep.request is not None:
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_ONLY, default=None))
        for name in ep.fields:
            default = inspect.Parameter.empty if name in ep.required else msgspec.UNSET
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
    return inspect.Signature(params + _OPTION_PARAMS)


def _describe(ep: Endpoint) -> str:
    lines = [ep.doc or ep.name, "", f"``{ep.method} {ep.path}``"]
    if ep.request is not None:
        lines.append(f"Request: :class:`~dify_oapi.types.{ep.request.__name__}`.")
    if ep.aliases:
        lines.append("Also reachable as: " + ", ".join(f"``{ep.service}.{a}``" for a in ep.aliases))
    return "\n".join(lines)


def _method(ep: Endpoint, name: str, owner: str, pages: bool = False) -> Any:
    if pages:

        def operation(self: Service, request: Any = None, /, **kwargs: Any) -> Any:
            return self._client._iterate(ep, request, kwargs)
    else:

        def operation(self: Service, request: Any = None, /, **kwargs: Any) -> Any:
            return self._client._call(ep, request, kwargs)

    operation.__name__ = name
    operation.__qualname__ = f"{owner}.{name}"
    operation.__doc__ = _describe(ep)
    operation.__signature__ = _signature(ep)  # type: ignore[attr-defined]
    operation.endpoint = ep  # type: ignore[attr-defined]
    return operation


class _NamespaceAccessor:
    """``service.resource``: the resource's alias methods, bound to the same client."""

    __slots__ = ("cls",)

    def __init__(self, cls: type[Namespace]) -> None:
        self.cls = cls

    def __get__(self, obj: Service | None, owner: type) -> Any:
        return self.cls if obj is None else self.cls(obj._client)


def iter_name_for(ep: Endpoint) -> str:
    """The item iterator of a paginated ``list_<things>`` row: ``iter_<things>``."""
    return "iter_" + ep.name.removeprefix("list_")


def build_service(name: str, endpoints: Iterable[Endpoint], prefix: str = "") -> type[Service]:
    """A service class for ``name``: canonical methods plus alias namespaces."""
    title = prefix + "".join(p.capitalize() for p in name.split("_")) + "Service"
    attrs: dict[str, Any] = {"__slots__": (), "__module__": __name__}
    by_name: dict[str, Endpoint] = {}
    groups: dict[str, dict[str, Endpoint]] = {}
    for ep in endpoints:
        by_name[ep.name] = ep
        attrs[ep.name] = _method(ep, ep.name, title)
        if ep.paginate:
            # Every item across pages: list_documents -> iter_documents.
            iter_name = iter_name_for(ep)
            attrs[iter_name] = _method(ep, iter_name, title, pages=True)
        for alias in ep.aliases:
            head, _, rest = alias.partition(".")
            if rest:
                groups.setdefault(head, {})[rest] = ep
            else:
                by_name[alias] = ep
                attrs[alias] = _method(ep, alias, title)
    for head, members in groups.items():
        if head in attrs:
            raise EndpointTableError(
                f"{name}: resource namespace {head!r} clashes with an operation of that name"
            )
        ns_title = title[: -len("Service")] + head.capitalize() + "Namespace"
        ns_attrs: dict[str, Any] = {"__slots__": (), "__module__": __name__}
        ns_attrs["_endpoints"] = dict(members)
        for alias, ep in members.items():
            if "." in alias:
                raise EndpointTableError(f"{ep.source}: alias {head}.{alias} nests too deep")
            ns_attrs[alias] = _method(ep, alias, ns_title)
        attrs[head] = _NamespaceAccessor(type(ns_title, (Namespace,), ns_attrs))
    attrs["_endpoints"] = by_name
    return type(title, (Service,), attrs)


def build_services(
    tables: Mapping[str, list[Endpoint]],
) -> tuple[dict[str, type[Service]], dict[str, type[Service]]]:
    """Sync and async service classes for every table (the same methods serve both)."""
    sync = {name: build_service(name, eps) for name, eps in tables.items()}
    async_ = {name: build_service(name, eps, "Async") for name, eps in tables.items()}
    return sync, async_


def load_tables(paths: Iterable[str | Path]) -> dict[str, list[Endpoint]]:
    """Load table files (service = file stem); ``module:Name`` structs import on demand."""
    return {Path(p).stem: load_table(p, vars(types)) for p in paths}


ENDPOINTS: dict[str, list[Endpoint]] = load_tables(
    TABLE_DIR / f"{name}.toml" for name in SERVICE_NAMES
)
INDEX: dict[str, Endpoint] = index_endpoints(ep for eps in ENDPOINTS.values() for ep in eps)
SYNC_SERVICES, ASYNC_SERVICES = build_services(ENDPOINTS)
globals().update({cls.__name__: cls for cls in SYNC_SERVICES.values()})
globals().update({cls.__name__: cls for cls in ASYNC_SERVICES.values()})
