"""The dispatcher: endpoint tables become service classes with one method per row.

Each service's table loads, is checked and becomes classes once, the first time the service
is used (importing the SDK stays cheap). Every generated method has the same body: hand the
row, the optional request struct and the keyword arguments to the client's single
``_call``. The sync and async clients differ only in that ``_call``, so both share these
functions. A paginated row also gets ``iter_<things>`` (every item of every page), and each
``[[waiter]]`` row a ``wait_for_<name>``. Type checkers read the generated
``_services.pyi`` instead of this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from . import types
from ._exceptions import EndpointTableError
from ._options import CALL_OPTIONS, CallOptions
from ._table import Endpoint, ServiceSpec, Waiter
from ._table_files import Table, index_endpoints, load_service

if TYPE_CHECKING:
    import inspect

__all__ = ["SERVICE_NAMES", "SHIPPED", "CallOptions", "Registry", "Service", "build_service"]

TABLE_DIR = Path(__file__).parent / "endpoints"
#: The shipped services: one per table file in ``endpoints/`` (``shared/`` holds fragments).
SERVICE_NAMES = tuple(sorted(p.stem for p in TABLE_DIR.glob("*.toml")))


class Service:
    """Operations of one service, bound to a client."""

    __slots__ = ("_client",)
    _endpoints: dict[str, Endpoint] = {}
    spec: ServiceSpec = ServiceSpec()

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


@cache
def _signature(ep: Endpoint) -> inspect.Signature:
    """For help() and IDE introspection; the stubs carry the types."""
    import inspect  # at the first use of a service, not at import

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    if ep.request is not None:
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_ONLY, default=None))
        for name in ep.fields:
            default = inspect.Parameter.empty if name in ep.required else msgspec.UNSET
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
    options = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
        for name in sorted(CALL_OPTIONS)
    ]
    return inspect.Signature(params + options)


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


def _waiter_method(waiter: Waiter, ep: Endpoint, owner: str) -> Any:
    def wait(self: Service, **kwargs: Any) -> Any:
        return self._client._wait(waiter, ep, kwargs)

    wait.__name__ = waiter.method_name
    wait.__qualname__ = f"{owner}.{waiter.method_name}"
    wait.__doc__ = (
        f"{waiter.doc or waiter.name}\n\nPolls ``{ep.qualname}`` every ``poll_interval`` "
        f"seconds (default {waiter.delay:g}) for at most ``timeout`` (default "
        f"{waiter.timeout:g}); takes its arguments, plus ``raise_on_failure=True``."
    )
    wait.waiter = waiter  # type: ignore[attr-defined]
    return wait


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


def build_service(
    name: str,
    endpoints: Iterable[Endpoint],
    prefix: str = "",
    waiters: Iterable[Waiter] = (),
    spec: ServiceSpec | None = None,
) -> type[Service]:
    """A service class for ``name``: canonical methods, iterators, waiters and aliases.

    An alias ``<resource>.<verb>`` becomes ``service.<resource>.<verb>``, except where the
    resource is the service itself (``chat.chat``): that one is ``service.<verb>``, so no
    path repeats the service's name.
    """
    title = prefix + "".join(p.capitalize() for p in name.split("_")) + "Service"
    attrs: dict[str, Any] = {"__slots__": (), "__module__": __name__}
    by_name: dict[str, Endpoint] = {}
    groups: dict[str, dict[str, Endpoint]] = {}
    flat: dict[str, Endpoint] = {}
    for ep in endpoints:
        by_name[ep.name] = ep
        attrs[ep.name] = _method(ep, ep.name, title)
        if ep.paginate is not None:
            iter_name = iter_name_for(ep)
            attrs[iter_name] = _method(ep, iter_name, title, pages=True)
        for alias in ep.aliases:
            head, _, rest = alias.partition(".")
            if not rest:
                flat[alias] = ep
            elif head == name:
                flat[rest] = ep
            else:
                groups.setdefault(head, {})[rest] = ep
    for alias, ep in flat.items():
        by_name[alias] = ep
        if alias not in attrs:
            attrs[alias] = _method(ep, alias, title)
        elif attrs[alias].endpoint is not ep:
            raise EndpointTableError(f"{ep.source}: alias {alias!r} clashes with another row")
    for waiter in waiters:
        attrs[waiter.method_name] = _waiter_method(waiter, by_name[waiter.operation], title)
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
    attrs["spec"] = spec or ServiceSpec(name=name)
    return type(title, (Service,), attrs)


class _TypesNamespace(Mapping[str, Any]):
    """:mod:`dify_oapi.types` as a mapping, loading its submodules on demand."""

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(types, name)
        except AttributeError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(types.__all__)

    def __len__(self) -> int:
        return len(types.__all__)


TYPES = _TypesNamespace()


def load_tables(paths: Iterable[str | Path]) -> dict[str, Table]:
    """Load table files (service = file stem); ``module:Name`` structs import on demand."""
    return {Path(p).stem: load_service(p, TYPES) for p in paths}


class Registry:
    """The services a client can reach: shipped tables plus the client's own, each loaded,
    checked and turned into classes the first time it is used (once, under a lock)."""

    def __init__(self, extra: Mapping[str, Table] | None = None) -> None:
        self._extra = dict(extra or {})
        self.names = SERVICE_NAMES + tuple(n for n in self._extra if n not in SERVICE_NAMES)
        self._lock = threading.RLock()
        self._tables: dict[str, Table] = {}
        self._index: dict[str, dict[str, Endpoint]] = {}
        self._classes: dict[tuple[str, bool], type[Service]] = {}

    def table(self, service: str) -> Table:
        loaded = self._tables.get(service)
        if loaded is None:
            with self._lock:
                loaded = self._tables.get(service)
                if loaded is None:
                    shipped = (
                        load_service(TABLE_DIR / f"{service}.toml", TYPES)
                        if service in SERVICE_NAMES
                        else None
                    )
                    extra = self._extra.get(service)
                    if shipped is None:
                        assert extra is not None
                        loaded = extra
                    elif extra is None:
                        loaded = shipped
                    else:
                        loaded = Table(
                            shipped.spec,
                            shipped.endpoints + extra.endpoints,
                            shipped.waiters + extra.waiters,
                        )
                    index = index_endpoints(loaded.endpoints)
                    names = {k.partition(".")[2]: ep for k, ep in index.items()}
                    for key, ep in list(names.items()):
                        head, _, rest = key.partition(".")
                        if head == service and rest:
                            names.setdefault(rest, ep)  # chat.chat.chat is also chat.chat
                    self._index[service] = names
                    self._tables[service] = loaded
        return loaded

    def endpoints(self, service: str) -> list[Endpoint]:
        return self.table(service).endpoints

    def endpoint(self, name: str) -> Endpoint | None:
        """The row ``service.operation`` (or ``service.resource.alias``), if it exists."""
        service, _, rest = name.partition(".")
        if service not in self.names:
            return None
        self.table(service)
        return self._index[service].get(rest)

    def all_names(self) -> list[str]:
        """Every name as a path of attributes: ``chat.chat.chat`` is listed as ``chat.chat``."""
        return sorted(f"{service}.{key}" for service in self.names for key in self._keys(service))

    def _keys(self, service: str) -> list[str]:
        self.table(service)
        head = service + "."
        return [k for k in self._index[service] if not k.startswith(head)]

    def service_class(self, service: str, is_async: bool) -> type[Service]:
        cls = self._classes.get((service, is_async))
        if cls is None:
            with self._lock:
                cls = self._classes.get((service, is_async))
                if cls is None:
                    table = self.table(service)
                    cls = build_service(
                        service,
                        table.endpoints,
                        "Async" if is_async else "",
                        table.waiters,
                        table.spec,
                    )
                    self._classes[service, is_async] = cls
        return cls


SHIPPED = Registry()

# Whole-API views for tools (stub and docs generators, tests); computed on first access.
_LAZY = {
    "ENDPOINTS": lambda: {name: SHIPPED.endpoints(name) for name in SERVICE_NAMES},
    "TABLES": lambda: {name: SHIPPED.table(name) for name in SERVICE_NAMES},
    "INDEX": lambda: {name: SHIPPED.endpoint(name) for name in SHIPPED.all_names()},
    "SYNC_SERVICES": lambda: {name: SHIPPED.service_class(name, False) for name in SERVICE_NAMES},
    "ASYNC_SERVICES": lambda: {name: SHIPPED.service_class(name, True) for name in SERVICE_NAMES},
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _LAZY[name]()
    for service in SERVICE_NAMES:
        title = "".join(p.capitalize() for p in service.split("_")) + "Service"
        if name in (title, "Async" + title):
            return SHIPPED.service_class(service, name.startswith("Async"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
