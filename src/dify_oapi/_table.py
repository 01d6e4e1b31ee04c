"""Endpoint rows: what one operation is, and how the TOML tables under ``endpoints/`` load.

A table is a TOML file with ``[[endpoint]]`` rows. Every row is checked when it loads, so a
bad row fails at import naming its file, row and reason, never at the first call.
"""

from __future__ import annotations

import importlib
import keyword
import re
import sys
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from ._exceptions import EndpointTableError
from .types._base import FileMarker, Request

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, no-redef]

__all__ = ["CALL_OPTIONS", "Endpoint", "load_table"]

#: Keyword arguments every generated method takes besides the request fields.
CALL_OPTIONS = frozenset(
    {
        "stream",
        "raw",
        "collect",
        "api_key",
        "timeout",
        "max_retries",
        "extra_headers",
        "retry_unsafe",
    }
)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ROW_KEYS = frozenset(
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
    }
)
#: ``response = "bytes"`` declares a binary answer (audio, file preview, zip).
BINARY = "bytes"
#: The request field that Dify reads to pick streaming or blocking answers.
MODE_FIELD = "response_mode"


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One operation: ``Endpoint(method, path, request, response, stream=...)``.

    ``request`` is a :class:`~dify_oapi.types.Request` subclass (or ``None`` when the
    operation takes no fields); ``response`` a response struct, ``bytes`` for a binary
    answer, or ``None`` when the answer carries nothing; ``stream`` the event union the
    operation streams, if it can.
    """

    method: str
    path: str
    request: type[Request] | None = None
    response: Any = None
    stream: Any = None
    name: str = ""
    service: str = ""
    aliases: tuple[str, ...] = ()
    doc: str = ""
    query: tuple[str, ...] = ()
    body: bool | None = None
    idempotent: bool | None = None
    operation_id: str = ""
    paginate: str = ""
    resume: str = ""
    source: str = "<python>"
    # Derived in __post_init__:
    path_fields: tuple[str, ...] = field(init=False)
    query_fields: tuple[str, ...] = field(init=False)
    body_fields: tuple[str, ...] = field(init=False)
    file_fields: tuple[str, ...] = field(init=False)
    fields: tuple[str, ...] = field(init=False)
    required: tuple[str, ...] = field(init=False)
    multipart: bool = field(init=False)
    safe: bool = field(init=False)
    item_type: Any = field(init=False)

    def __post_init__(self) -> None:
        where = f"{self.source}: endpoint {self.qualname or '?'}"

        def fail(reason: str) -> EndpointTableError:
            return EndpointTableError(f"{where}: {reason}")

        if self.method not in METHODS:
            raise fail(f"method {self.method!r} is not one of {sorted(METHODS)}")
        if not self.path.startswith("/"):
            raise fail(f"path {self.path!r} must start with '/'")
        if not self.name.isidentifier() or keyword.iskeyword(self.name) or self.name[0] == "_":
            raise fail(f"name {self.name!r} is not a public Python identifier")
        if self.request is not None and not (
            isinstance(self.request, type) and issubclass(self.request, Request)
        ):
            raise fail(f"request {self.request!r} is not a dify_oapi.types.Request struct")
        if self.response not in (None, bytes) and not _is_struct_or_list(self.response):
            raise fail(
                f"response {self.response!r} is not a msgspec Struct, a list of one, bytes or None"
            )
        infos = struct_fields(self.request) if self.request else ()
        names = tuple(f.name for f in infos)
        required = tuple(
            f.name
            for f in infos
            if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT
        )
        files = tuple(f.name for f in infos if _is_file(f.type))
        bad = CALL_OPTIONS.intersection(names)
        if bad:
            raise fail(f"request field(s) {sorted(bad)} clash with call options")
        placeholders = tuple(_PLACEHOLDER.findall(self.path))
        for p in placeholders:
            if p not in names:
                raise fail(f"path placeholder {{{p}}} is not a field of the request struct")
            if p in files:
                raise fail(f"path placeholder {{{p}}} is a file field")
        if len(set(placeholders)) != len(placeholders):
            raise fail("a path placeholder appears twice")
        for q in self.query:
            if q not in names:
                raise fail(f"query field {q!r} is not a field of the request struct")
        rest = [n for n in names if n not in placeholders and n not in files]
        to_body = self.body if self.body is not None else self.method not in ("GET", "DELETE")
        if self.method == "GET" and (to_body or files):
            raise fail("a GET row cannot have a body or file fields")
        if files and not to_body:
            raise fail("file fields need a body; set body = true")
        query = tuple(n for n in rest if n in self.query or not to_body)
        if self.stream is not None and not _is_event_union(self.stream):
            raise fail(f"stream {self.stream!r} is not a tagged union of event structs")
        item_type = None
        if self.paginate:
            if self.paginate not in ("page", "cursor"):
                raise fail(f"paginate {self.paginate!r} must be 'page' or 'cursor'")
            if not self.name.startswith("list_"):
                raise fail("a paginated row's name must start with 'list_'")
            cursor = ("page",) if self.paginate == "page" else ("first_id", "last_id")
            if not any(c in names for c in cursor):
                raise fail(f"paginate = {self.paginate!r} needs a request field {cursor}")
            item_type = _list_item(self.response)
            if item_type is None:
                raise fail("a paginated row's response needs a 'data: list[...]' field")
        if self.resume and self.stream is None:
            raise fail("resume needs a streaming row")
        for alias in self.aliases:
            parts = alias.split(".")
            if not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
                raise fail(f"alias {alias!r} must be dotted Python identifiers")
        setattr_ = object.__setattr__
        setattr_(self, "path_fields", placeholders)
        setattr_(self, "query_fields", query)
        setattr_(self, "body_fields", tuple(n for n in rest if n not in query))
        setattr_(self, "file_fields", files)
        setattr_(self, "fields", names)
        setattr_(self, "required", required)
        setattr_(self, "multipart", bool(files))
        idempotent = self.idempotent
        setattr_(self, "safe", self.method != "POST" if idempotent is None else idempotent)
        setattr_(self, "item_type", item_type)

    @property
    def qualname(self) -> str:
        """``service.name``, the name ``client.call`` takes."""
        return f"{self.service}.{self.name}" if self.service else self.name

    @property
    def streams(self) -> bool:
        """Whether ``stream=True`` is accepted (an SSE row, or a binary answer)."""
        return self.stream is not None or self.response is bytes

    @property
    def stream_only(self) -> bool:
        """An SSE row with no blocking form: calls always return a stream."""
        return self.stream is not None and self.response is None

    def __repr__(self) -> str:
        return f"<Endpoint {self.qualname} {self.method} {self.path}>"


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _is_struct_or_list(tp: Any) -> bool:
    """A struct, or ``list[Struct]`` for answers that are a bare JSON array."""
    if typing.get_origin(tp) is list:
        return _is_struct(typing.get_args(tp)[0])
    return _is_struct(tp)


@cache
def struct_fields(cls: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """``msgspec.structs.fields``, once per struct: resolving annotations is slow."""
    return msgspec.structs.fields(cls)


def _list_item(response: Any) -> Any:
    """The item type of a paged answer's ``data: list[Item]`` field, if it has one."""
    if not (isinstance(response, type) and issubclass(response, msgspec.Struct)):
        return None
    for f in struct_fields(response):
        if f.name == "data" and typing.get_origin(f.type) is list:
            return typing.get_args(f.type)[0]
    return None


def _is_file(tp: Any) -> bool:
    if getattr(tp, "__metadata__", None) and FileMarker in tp.__metadata__:
        return True
    return any(_is_file(a) for a in getattr(tp, "__args__", ()))


def _is_event_union(tp: Any) -> bool:
    members = getattr(tp, "__args__", None) or (tp,)
    return all(
        isinstance(m, type)
        and issubclass(m, msgspec.Struct)
        and isinstance(m.__struct_config__.tag, str)
        for m in members
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


def load_table(
    source: str | Path,
    namespace: Mapping[str, Any],
    *,
    service: str | None = None,
    text: str | None = None,
    _including: tuple[Path, ...] = (),
) -> list[Endpoint]:
    """Load and check one table file; ``service`` defaults to the file's stem.

    Struct names resolve in ``namespace`` (normally :mod:`dify_oapi.types`) or, when
    written ``module:Name``, by import. Top-level keys: ``include`` (other table files,
    relative to this one and without ``.toml``, whose rows this service shares),
    ``aliases`` (extra names, ``"resource.verb" = "canonical_name"``) and ``endpoint``
    (the rows).
    """
    path = Path(source).resolve()
    label = path.as_posix()
    service = service or path.stem
    if not service.isidentifier() or keyword.iskeyword(service):
        raise EndpointTableError(f"{label}: service name {service!r} is not an identifier")
    try:
        data = tomllib.loads(text if text is not None else path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EndpointTableError(f"{label}: {exc}") from None
    unknown_top = set(data) - {"endpoint", "include", "aliases"}
    if unknown_top:
        raise EndpointTableError(f"{label}: unknown top-level keys {sorted(unknown_top)}")
    rows = data.get("endpoint", [])
    if not isinstance(rows, list):
        raise EndpointTableError(f"{label}: 'endpoint' must be an array of tables")
    endpoints: list[Endpoint] = []
    for ref in data.get("include", []):
        target = (path.parent / f"{ref}.toml").resolve()
        if target in _including or target == path.resolve():
            raise EndpointTableError(f"{label}: include {ref!r} is circular")
        if not target.is_file():
            raise EndpointTableError(f"{label}: include {ref!r}: no table at {target}")
        endpoints.extend(
            load_table(target, namespace, service=service, _including=(*_including, path.resolve()))
        )
    for index, row in enumerate(rows, 1):
        where = f"{label}: row {index} ({row.get('name', '?')!r})"
        extra = set(row) - _ROW_KEYS
        if extra:
            raise EndpointTableError(f"{where}: unknown keys {sorted(extra)}")
        for key in ("name", "method", "path"):
            if not isinstance(row.get(key), str):
                raise EndpointTableError(f"{where}: missing or non-string {key!r}")
        kwargs: dict[str, Any] = {
            k: row[k]
            for k in ("doc", "body", "idempotent", "operation_id", "paginate", "resume")
            if k in row
        }
        for key in ("request", "response", "stream"):
            if key in row:
                kwargs[key] = _resolve(row[key], namespace, where)
        try:
            ep = Endpoint(
                row["method"],
                row["path"],
                name=row["name"],
                service=service,
                aliases=tuple(row.get("aliases", ())),
                query=tuple(row.get("query", ())),
                source=f"{label} row {index}",
                **kwargs,
            )
        except TypeError as exc:
            raise EndpointTableError(f"{where}: {exc}") from None
        endpoints.append(ep)
    position: dict[str, int] = {}
    for i, ep in enumerate(endpoints):
        if ep.name in position:
            first = endpoints[position[ep.name]].source
            raise EndpointTableError(f"{ep.source}: name {ep.name!r} already used by {first}")
        position[ep.name] = i
    for alias, target_name in data.get("aliases", {}).items():
        if target_name not in position:
            raise EndpointTableError(f"{label}: alias {alias!r} names unknown {target_name!r}")
        i = position[target_name]
        endpoints[i] = replace(endpoints[i], aliases=(*endpoints[i].aliases, alias))
    for ep in endpoints:
        if ep.resume and ep.resume not in position:
            raise EndpointTableError(f"{ep.source}: resume names unknown row {ep.resume!r}")
    seen: dict[str, str] = {}
    for ep in endpoints:
        for key in (ep.name, *ep.aliases):
            if key in seen:
                raise EndpointTableError(f"{ep.source}: name {key!r} already used by {seen[key]}")
            seen[key] = ep.source
    return endpoints


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
