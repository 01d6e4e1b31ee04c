"""Reading table files: TOML under ``endpoints/``, one file per service.

A file holds ``[[endpoint]]`` rows and may hold a ``[service]`` header, named
``[paginators.<name>]``, ``[[waiter]]`` rows, ``include`` (other files, relative and without
``.toml``, whose header, paginators, waiters and rows this service shares; the including
file's own values win) and ``[aliases]`` (``"resource.verb" = "row_name"``). Every row is
checked when it loads, so a bad row fails naming its file, row and reason.
"""

from __future__ import annotations

import importlib
import keyword
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._exceptions import EndpointTableError
from ._table import Collect, Endpoint, Link, ModeField, Paginator, ServiceSpec, Waiter

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, no-redef]

__all__ = ["Table", "index_endpoints", "load_service", "load_table"]

#: ``response = "bytes"`` declares a binary answer (audio, file preview, zip).
BINARY = "bytes"
_TOP = frozenset({"endpoint", "include", "aliases", "service", "paginators", "waiter"})
_ROW = frozenset(
    {
        "name",
        "method",
        "path",
        "request",
        "response",
        "stream",
        "aliases",
        "doc",
        "query",
        "body",
        "idempotent",
        "operation_id",
        "paginate",
        "resume",
        "stop",
        "collect",
        "in_run",
    }
)
_SERVICE = frozenset({"key", "doc", "mode_field", "retry", "errors", "version_header"})
_PAGINATOR = frozenset(
    {"kind", "token", "items", "more", "limit", "pages", "key", "from", "reverse"}
)
_LINK = frozenset({"operation", "from_state", "from_call", "set"})
_COLLECT = frozenset({"text", "set", "failure", "stopped"})
_WAITER = frozenset(
    {
        "name",
        "operation",
        "status",
        "items",
        "key",
        "reason",
        "success",
        "failure",
        "settled",
        "delay",
        "timeout",
        "doc",
    }
)


@dataclass
class Table:
    """One service as its file (and what it includes) declares it."""

    spec: ServiceSpec
    endpoints: list[Endpoint]
    waiters: list[Waiter] = field(default_factory=list)


@dataclass
class _Raw:
    header: dict[str, Any] = field(default_factory=dict)
    paginators: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    waiters: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    rows: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    aliases: list[tuple[str, str, str]] = field(default_factory=list)


def _keys(where: str, what: str, table: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise EndpointTableError(f"{where}: {what} must be a table")
    extra = set(table) - allowed
    if extra:
        raise EndpointTableError(f"{where}: {what}: unknown keys {sorted(extra)}")
    return table


def _read(path: Path, text: str | None, including: tuple[Path, ...]) -> _Raw:
    label = path.as_posix()
    try:
        data = tomllib.loads(text if text is not None else path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EndpointTableError(f"{label}: {exc}") from None
    unknown = set(data) - _TOP
    if unknown:
        raise EndpointTableError(f"{label}: unknown top-level keys {sorted(unknown)}")
    raw = _Raw()
    for ref in data.get("include", []):
        target = (path.parent / f"{ref}.toml").resolve()
        if target in including or target == path:
            raise EndpointTableError(f"{label}: include {ref!r} is circular")
        if not target.is_file():
            raise EndpointTableError(f"{label}: include {ref!r}: no table at {target}")
        inner = _read(target, None, (*including, path))
        raw.header = _merge(raw.header, inner.header)
        raw.paginators.update(inner.paginators)
        raw.waiters += inner.waiters
        raw.rows += inner.rows
        raw.aliases += inner.aliases
    raw.header = _merge(raw.header, _keys(label, "[service]", data.get("service", {}), _SERVICE))
    for name, table in data.get("paginators", {}).items():
        raw.paginators[name] = (_keys(label, f"paginator {name!r}", table, _PAGINATOR), label)
    rows = data.get("endpoint", [])
    if not isinstance(rows, list):
        raise EndpointTableError(f"{label}: 'endpoint' must be an array of tables")
    for index, row in enumerate(rows, 1):
        raw.rows.append((row, f"{label} row {index}"))
    for index, row in enumerate(data.get("waiter", []), 1):
        raw.waiters.append((row, f"{label} waiter {index}"))
    for alias, target_name in data.get("aliases", {}).items():
        raw.aliases.append((alias, target_name, label))
    return raw


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _spec(service: str, header: dict[str, Any], label: str) -> ServiceSpec:
    mode = header.get("mode_field")
    retry = header.get("retry", {})
    errors = header.get("errors", {})
    try:
        return ServiceSpec(
            name=service,
            key=str(header.get("key", "")),
            doc=str(header.get("doc", "")),
            mode_field=ModeField(**mode) if mode else None,
            retry_codes=frozenset(retry.get("retry_codes", ())),
            final_codes=frozenset(retry.get("final_codes", ())),
            error_code=str(errors.get("code", "")),
            error_message=tuple(errors.get("message", ())),
            version_header=str(header.get("version_header", "")),
        )
    except TypeError as exc:
        raise EndpointTableError(f"{label}: [service]: {exc}") from None


def _paginator(name: str, table: dict[str, Any], where: str) -> Paginator:
    try:
        values = {("from_" if k == "from" else k): v for k, v in table.items()}
        return Paginator(name=name, **values)
    except TypeError as exc:
        raise EndpointTableError(f"{where}: paginator {name!r}: {exc}") from None


def _link(where: str, what: str, table: Any) -> Link:
    if isinstance(table, str):
        table = {"operation": table}
    table = _keys(where, what, table, _LINK)
    if not isinstance(table.get("operation"), str):
        raise EndpointTableError(f"{where}: {what} needs an 'operation'")
    return Link(
        operation=table["operation"],
        from_state=tuple(table.get("from_state", ())),
        from_call=tuple(table.get("from_call", ())),
        set=dict(table.get("set", {})),
    )


def _resolve(name: str, namespace: Mapping[str, Any], where: str) -> Any:
    if name == BINARY:
        return bytes
    if name.startswith("list[") and name.endswith("]"):
        return list[_resolve(name[5:-1].strip(), namespace, where)]  # type: ignore[misc]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise EndpointTableError(f"{where}: cannot import {name!r}: {exc}") from None
    try:
        return namespace[name]
    except KeyError:
        raise EndpointTableError(f"{where}: unknown struct {name!r}") from None


def _endpoint(
    row: Any,
    where: str,
    service: str,
    spec: ServiceSpec,
    paginators: Mapping[str, Paginator],
    namespace: Mapping[str, Any],
) -> Endpoint:
    label = f"{where} ({row.get('name', '?')!r})" if isinstance(row, dict) else where
    row = _keys(label, "row", row, _ROW)
    for key in ("name", "method", "path"):
        if not isinstance(row.get(key), str):
            raise EndpointTableError(f"{label}: missing or non-string {key!r}")
    kwargs: dict[str, Any] = {
        k: row[k] for k in ("doc", "body", "idempotent", "operation_id", "in_run") if k in row
    }
    for key in ("request", "response", "stream"):
        if key in row:
            kwargs[key] = _resolve(row[key], namespace, label)
    if "paginate" in row:
        found = paginators.get(row["paginate"])
        if found is None:
            raise EndpointTableError(f"{label}: unknown paginator {row['paginate']!r}")
        kwargs["paginate"] = found
    for key in ("resume", "stop"):
        if key in row:
            kwargs[key] = _link(label, key, row[key])
    if "collect" in row:
        table = _keys(label, "collect", row["collect"], _COLLECT)
        kwargs["collect"] = Collect(
            text=str(table.get("text", "")),
            set=dict(table.get("set", {})),
            failure=dict(table["failure"]) if "failure" in table else None,
            stopped=dict(table.get("stopped", {})),
        )
    try:
        return Endpoint(
            row["method"],
            row["path"],
            name=row["name"],
            service=service,
            aliases=tuple(row.get("aliases", ())),
            query=tuple(row.get("query", ())),
            spec=spec,
            source=where,
            **kwargs,
        )
    except TypeError as exc:
        raise EndpointTableError(f"{label}: {exc}") from None


def _waiter(row: Any, where: str, endpoints: Mapping[str, Endpoint]) -> Waiter:
    row = _keys(where, "waiter", row, _WAITER)
    for key in ("name", "operation", "status"):
        if not isinstance(row.get(key), str):
            raise EndpointTableError(f"{where}: waiter needs a string {key!r}")
    if not row["name"].isidentifier():
        raise EndpointTableError(f"{where}: waiter name {row['name']!r} is not an identifier")
    if row["operation"] not in endpoints:
        raise EndpointTableError(f"{where}: waiter polls unknown row {row['operation']!r}")
    if not row.get("success"):
        raise EndpointTableError(f"{where}: waiter needs 'success' values")
    return Waiter(
        name=row["name"],
        operation=row["operation"],
        status=row["status"],
        items=str(row.get("items", "")),
        key=str(row.get("key", "")),
        reason=str(row.get("reason", "")),
        success=frozenset(row["success"]),
        failure=frozenset(row.get("failure", ())),
        settled=frozenset(row.get("settled", ())),
        delay=float(row.get("delay", 2.0)),
        timeout=float(row.get("timeout", 600.0)),
        doc=str(row.get("doc", "")),
        source=where,
    )


def load_service(
    source: str | Path,
    namespace: Mapping[str, Any],
    *,
    service: str | None = None,
    text: str | None = None,
) -> Table:
    """Load and check one table file; ``service`` defaults to the file's stem.

    Struct names resolve in ``namespace`` (normally :mod:`dify_oapi.types`) or, when
    written ``module:Name``, by import.
    """
    path = Path(source).resolve()
    label = path.as_posix()
    service = service or path.stem
    if not service.isidentifier() or keyword.iskeyword(service):
        raise EndpointTableError(f"{label}: service name {service!r} is not an identifier")
    raw = _read(path, text, ())
    spec = _spec(service, raw.header, label)
    paginators = {name: _paginator(name, t, where) for name, (t, where) in raw.paginators.items()}
    for name, p in paginators.items():
        p.check(f"{raw.paginators[name][1]}")
    endpoints = [_endpoint(r, w, service, spec, paginators, namespace) for r, w in raw.rows]
    position: dict[str, int] = {}
    for i, ep in enumerate(endpoints):
        if ep.name in position:
            first = endpoints[position[ep.name]].source
            raise EndpointTableError(f"{ep.source}: name {ep.name!r} already used by {first}")
        position[ep.name] = i
    for alias, target_name, where in raw.aliases:
        if target_name not in position:
            raise EndpointTableError(f"{where}: alias {alias!r} names unknown {target_name!r}")
        i = position[target_name]
        endpoints[i] = replace(endpoints[i], aliases=(*endpoints[i].aliases, alias))
    by_name = {ep.name: ep for ep in endpoints}
    for ep in endpoints:
        for link, what in ((ep.resume, "resume"), (ep.stop, "stop")):
            if link is not None and link.operation not in by_name:
                raise EndpointTableError(
                    f"{ep.source}: {what} names unknown row {link.operation!r}"
                )
    seen: dict[str, str] = {}
    for ep in endpoints:
        for key in (ep.name, *ep.aliases):
            if key in seen:
                raise EndpointTableError(f"{ep.source}: name {key!r} already used by {seen[key]}")
            seen[key] = ep.source
    waiters = [_waiter(r, w, by_name) for r, w in raw.waiters]
    for waiter in waiters:
        if waiter.method_name in seen:
            raise EndpointTableError(f"{waiter.source}: {waiter.method_name!r} is already a name")
        seen[waiter.method_name] = waiter.source
    return Table(spec, endpoints, waiters)


def load_table(
    source: str | Path,
    namespace: Mapping[str, Any],
    *,
    service: str | None = None,
    text: str | None = None,
) -> list[Endpoint]:
    """The rows of one table file (see :func:`load_service` for the whole service)."""
    return load_service(source, namespace, service=service, text=text).endpoints


def index_endpoints(endpoints: Iterable[Endpoint]) -> dict[str, Endpoint]:
    """Map every ``service.name`` and ``service.alias`` to its endpoint."""
    index: dict[str, Endpoint] = {}
    for ep in endpoints:
        for key in (ep.name, *ep.aliases):
            full = f"{ep.service}.{key}"
            if full in index and index[full] is not ep:
                raise EndpointTableError(f"{ep.source}: {full!r} is declared twice")
            index[full] = ep
    return index
