"""What one operation is: an :class:`Endpoint` row and the service facts it carries.

Everything the generic core knows about a Dify operation or service comes from here: the
row (method, path, request, response, event union), its pagination, re-attach and stop
links, what ``collect`` assembles, and the service's header (key kind, the streaming-mode
field, the error codes that decide retries). The rows themselves live in the TOML files
under ``endpoints/`` (see :mod:`._table_files`).
"""

from __future__ import annotations

import keyword
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec

from ._exceptions import EndpointTableError
from ._options import CALL_OPTIONS
from .types._base import FileMarker, Request

__all__ = [
    "CALL_OPTIONS",
    "Collect",
    "Endpoint",
    "Link",
    "ModeField",
    "Paginator",
    "ServiceSpec",
    "Waiter",
]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _fail(where: str, reason: str) -> EndpointTableError:
    return EndpointTableError(f"{where}: {reason}")


@dataclass(frozen=True)
class ModeField:
    """The request field that picks a streamed or a blocking answer, and its two values."""

    name: str
    streaming: str
    blocking: str


@dataclass(frozen=True)
class ServiceSpec:
    """A service's header: ``[service]`` in its table file.

    ``key``: the kind of API key its routes take (``app`` or ``dataset``). ``mode_field``:
    see :class:`ModeField`. ``retry_codes``: error codes answered before any work started,
    so even a call that generates may be sent again; ``final_codes``: codes no wait fixes.
    ``error_code`` and ``error_message``: where an error body holds its code and message.
    ``version_header``: the answer header naming the server's version (the client keeps
    the last one seen as ``server_version``).
    """

    name: str = ""
    key: str = ""
    doc: str = ""
    mode_field: ModeField | None = None
    retry_codes: frozenset[str] = frozenset()
    final_codes: frozenset[str] = frozenset()
    error_code: str = ""
    error_message: tuple[str, ...] = ()
    version_header: str = ""


EMPTY_SPEC = ServiceSpec()


@dataclass(frozen=True)
class Paginator:
    """How a list operation pages (``[paginators.<name>]``).

    ``kind = "page"``: the request field ``token`` holds the page number, advanced by one
    from 1.
    ``kind = "cursor"``: ``token`` takes the ``key`` of the page's last item (``from =
    "last"``) or first item (``from = "first"``). ``items`` names the answer's list,
    ``more`` its has-more flag, ``limit`` the page-size field, ``pages`` the page count.
    ``reverse``: yield each page's items in reverse (lists paged backwards in time).
    """

    name: str
    kind: str
    token: str
    items: str
    more: str = ""
    limit: str = ""
    pages: str = ""
    key: str = ""
    from_: str = "last"
    reverse: bool = False

    def check(self, where: str) -> None:
        if self.kind not in ("page", "cursor"):
            raise _fail(where, f"paginator {self.name!r}: kind must be 'page' or 'cursor'")
        if self.from_ not in ("first", "last"):
            raise _fail(where, f"paginator {self.name!r}: from must be 'first' or 'last'")
        if self.kind == "cursor" and not self.key:
            raise _fail(where, f"paginator {self.name!r}: a cursor needs the item's 'key'")


@dataclass(frozen=True)
class Link:
    """A follow-up call made from a stream: re-attach it (``resume``) or stop it (``stop``).

    ``operation`` is a row of the same service; its arguments come from the stream's ids
    (``from_state``), from the original call's arguments (``from_call``) and constants
    (``set``).
    """

    operation: str
    from_state: tuple[str, ...] = ()
    from_call: tuple[str, ...] = ()
    set: Mapping[str, Any] = field(default_factory=dict)

    def arguments(self, ids: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
        """The follow-up's keyword arguments; a missing id raises :class:`KeyError`."""
        kwargs: dict[str, Any] = {name: ids[name] for name in self.from_state}
        for name in self.from_call:
            if call.get(name) is not None:
                kwargs[name] = call[name]
        kwargs.update(self.set)
        return kwargs


@dataclass(frozen=True)
class Waiter:
    """Polling an operation until a status settles (``[[waiter]]``).

    The status is read at ``status`` (a dotted path) in the answer, or in every element of
    the list at ``items``. All ``success``: done. Any ``failure``: the waiter raises. Others
    in ``settled`` also end the wait. ``key`` and ``reason`` name an item's identity and its
    failure text, for messages. ``delay`` and ``timeout`` are the defaults.
    """

    name: str
    operation: str
    status: str
    success: frozenset[str]
    failure: frozenset[str] = frozenset()
    settled: frozenset[str] = frozenset()
    items: str = ""
    key: str = ""
    reason: str = ""
    delay: float = 2.0
    timeout: float = 600.0
    doc: str = ""
    source: str = "<python>"

    @property
    def method_name(self) -> str:
        """The generated service method: ``wait_for_<name>``."""
        return f"wait_for_{self.name}"


@dataclass(frozen=True)
class Collect:
    """What ``collect=True`` fills in besides what the events carry.

    ``text``: the answer field that receives the streamed text. ``set``: constant fields
    of the blocking answer (``mode``, ``event``). ``failure``: when
    the stream reports a failed run, raise as the blocking call would, with this status,
    code and message (``{error}`` is the run's error); without it a failed run is returned,
    as the blocking answer returns it. ``stopped``: fields set on the answer of a run that
    ended failed after this client asked it to stop (it is returned, not raised).
    """

    text: str = ""
    set: Mapping[str, Any] = field(default_factory=dict)
    failure: Mapping[str, Any] | None = None
    stopped: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One operation: ``Endpoint(method, path, request, response, stream=...)``.

    ``request`` is a :class:`~dify_oapi.types.Request` subclass (or ``None`` when the
    operation takes no fields); ``response`` a response struct, ``bytes`` for a binary
    answer, or ``None`` when the answer carries nothing; ``stream`` the event union the
    operation streams, if it can. ``in_run``: the stream continues a run already under way
    (a re-attach), so it ends with the run's closing event, not with an earlier final one.
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
    paginate: Paginator | None = None
    resume: Link | None = None
    stop: Link | None = None
    collect: Collect | None = None
    in_run: bool = False
    spec: ServiceSpec = EMPTY_SPEC
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
    mode_field: ModeField | None = field(init=False)

    def __post_init__(self) -> None:
        where = f"{self.source}: endpoint {self.qualname or '?'}"
        if self.method not in METHODS:
            raise _fail(where, f"method {self.method!r} is not one of {sorted(METHODS)}")
        if not self.path.startswith("/"):
            raise _fail(where, f"path {self.path!r} must start with '/'")
        if not self.name.isidentifier() or keyword.iskeyword(self.name) or self.name[0] == "_":
            raise _fail(where, f"name {self.name!r} is not a public Python identifier")
        if self.request is not None and not (
            isinstance(self.request, type) and issubclass(self.request, Request)
        ):
            raise _fail(where, f"request {self.request!r} is not a dify_oapi.types.Request struct")
        if self.response not in (None, bytes) and not _is_struct_or_list(self.response):
            raise _fail(
                where,
                f"response {self.response!r} is not a msgspec Struct, a list of one, bytes or None",
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
            raise _fail(where, f"request field(s) {sorted(bad)} clash with call options")
        placeholders = tuple(_PLACEHOLDER.findall(self.path))
        for p in placeholders:
            if p not in names:
                raise _fail(where, f"path placeholder {{{p}}} is not a field of the request struct")
            if p in files:
                raise _fail(where, f"path placeholder {{{p}}} is a file field")
        if len(set(placeholders)) != len(placeholders):
            raise _fail(where, "a path placeholder appears twice")
        for q in self.query:
            if q not in names:
                raise _fail(where, f"query field {q!r} is not a field of the request struct")
        rest = [n for n in names if n not in placeholders and n not in files]
        to_body = self.body if self.body is not None else self.method not in ("GET", "DELETE")
        if self.method == "GET" and (to_body or files):
            raise _fail(where, "a GET row cannot have a body or file fields")
        if files and not to_body:
            raise _fail(where, "file fields need a body; set body = true")
        query = tuple(n for n in rest if n in self.query or not to_body)
        if self.stream is not None and not _is_event_union(self.stream):
            raise _fail(where, f"stream {self.stream!r} is not a tagged union of event structs")
        item_type = None
        if self.paginate is not None:
            self.paginate.check(where)
            if self.paginate.token not in names:
                raise _fail(
                    where,
                    f"paginator {self.paginate.name!r} needs request field {self.paginate.token!r}",
                )
            item_type = _list_item(self.response, self.paginate.items)
            if item_type is None:
                raise _fail(
                    where, f"a paginated row's response needs a list field {self.paginate.items!r}"
                )
        if self.in_run and self.stream is None:
            raise _fail(where, "in_run needs a streaming row")
        for link, what in ((self.resume, "resume"), (self.stop, "stop")):
            if link is not None and self.stream is None:
                raise _fail(where, f"{what} needs a streaming row")
        if self.collect is not None and (self.stream is None or self.response is None):
            raise _fail(where, "collect needs a row that streams and has a blocking answer")
        for alias in self.aliases:
            parts = alias.split(".")
            if not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
                raise _fail(where, f"alias {alias!r} must be dotted Python identifiers")
        mode = self.spec.mode_field
        if mode is not None and (self.stream is None or mode.name not in names):
            mode = None
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
        setattr_(self, "mode_field", mode)

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


def _list_item(response: Any, name: str) -> Any:
    """The item type of a paged answer's ``<name>: list[Item]`` field, if it has one."""
    if not _is_struct(response):
        return None
    for f in struct_fields(response):
        if f.name == name and typing.get_origin(f.type) is list:
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
