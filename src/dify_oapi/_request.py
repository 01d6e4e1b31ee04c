"""Building a request from an endpoint row and the caller's arguments, before any I/O.

Everything the caller got wrong is raised here: unknown or missing arguments
(:class:`InvalidArgumentsError`), wrong types and unsafe values (:class:`RequestValidationError`).
"""

from __future__ import annotations

import io
import math
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from ._codecs import json_decoder
from ._exceptions import InvalidArgumentsError, RequestValidationError
from ._table import Endpoint
from .types._base import PATTERNS, Request

__all__ = ["Prepared", "prepare"]

_FIELD_PATH = re.compile(r" - at `(\$[^`]*)`$")
_PATTERN = re.compile(r"^Expected `str` matching regex '(.*)'")
_json_encode = msgspec.json.Encoder().encode


class FilePart:
    """One file field: where its bytes come from and what it is called."""

    __slots__ = ("content", "content_type", "filename", "offset", "path")

    def __init__(
        self,
        filename: str,
        *,
        path: str | None = None,
        content: Any = None,
        content_type: str | None = None,
    ) -> None:
        self.filename = filename
        self.path = path
        self.content = content
        self.content_type = content_type
        # Remember where a caller's file object starts so a retry can send it again.
        self.offset: int | None = None
        if content is not None and not isinstance(content, (bytes, bytearray)):
            try:
                self.offset = content.tell()
            except (AttributeError, OSError, ValueError):
                self.offset = None

    @property
    def replayable(self) -> bool:
        return (
            self.content is None
            or isinstance(self.content, (bytes, bytearray))
            or (self.offset is not None)
        )


class Prepared:
    """A request ready to send: everything but the base URL, key and transport."""

    __slots__ = ("content", "endpoint", "files", "form", "params", "path", "streaming")

    def __init__(
        self,
        endpoint: Endpoint,
        path: str,
        params: list[tuple[str, str | int | float | bool | None]] | None,
        content: bytes | None,
        form: dict[str, str] | None,
        files: dict[str, FilePart] | None,
        streaming: bool,
    ) -> None:
        self.endpoint = endpoint
        self.path = path
        self.params = params
        self.content = content
        self.form = form
        self.files = files
        self.streaming = streaming

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again (a one-shot file stream cannot)."""
        return not self.files or all(f.replayable for f in self.files.values())

    @contextmanager
    def multipart(self) -> Iterator[tuple[Any, dict[str, str] | None]]:
        """httpx ``(files=, data=)`` for one attempt; files opened here close after it."""
        if not self.endpoint.multipart:
            yield None, None
            return
        if not self.files:
            # A multipart row called without its (optional) file is still multipart.
            yield [(k, (None, v)) for k, v in (self.form or {}).items()] or None, None
            return
        with ExitStack() as stack:
            parts: dict[str, Any] = {}
            for name, part in self.files.items():
                if part.path is not None:
                    body: Any = stack.enter_context(open(part.path, "rb"))
                else:
                    body = part.content
                    if part.offset is not None:
                        body.seek(part.offset)
                parts[name] = (
                    (part.filename, body, part.content_type)
                    if part.content_type
                    else (part.filename, body)
                )
            yield parts, self.form


def prepare(
    ep: Endpoint,
    request: Request | None,
    kwargs: Mapping[str, Any],
    *,
    stream: bool | None,
) -> Prepared:
    """Check the arguments of one call and encode them as the row says."""
    op = ep.qualname
    if stream and not ep.streams:
        raise InvalidArgumentsError(f"{op}() cannot stream; it takes no stream argument")
    streaming = ep.stream_only or bool(stream)
    cls = ep.request
    if cls is None:
        if request is not None or kwargs:
            names = sorted(kwargs) or ["a positional request"]
            raise InvalidArgumentsError(f"{op}() takes no arguments, got {', '.join(names)}")
        return Prepared(ep, ep.path, None, None, None, None, streaming)
    if request is not None:
        if kwargs:
            raise InvalidArgumentsError(
                f"{op}() takes either a {cls.__name__} or keyword arguments, not both"
            )
        if type(request) is not cls:
            raise RequestValidationError(
                f"expected a {cls.__name__}, got {type(request).__name__}", operation=op
            )
        values = {f: getattr(request, f) for f in ep.fields}
    else:
        _check_names(ep, kwargs)
        values = dict(kwargs)
    unset = _none_is_unset(cls)
    values = {
        k: v for k, v in values.items() if v is not msgspec.UNSET and not (v is None and k in unset)
    }
    mode = ep.mode_field
    if mode is not None:
        wanted = mode.streaming if streaming else mode.blocking
        given = values.get(mode.name)
        if given is not None and given != wanted:
            raise InvalidArgumentsError(
                f"{op}(): {mode.name}={given!r} conflicts with stream={bool(stream)}; "
                "use stream=True or stream=False instead"
            )
        values[mode.name] = wanted
    files = {name: values.pop(name) for name in ep.file_fields if name in values}
    data = _validate(ep, cls, values, files)
    content = form = parts = None
    try:
        path = _expand_path(ep, data)
        params = _query(ep, data) if ep.query_fields else None
        if ep.multipart:
            form = {k: _scalar(data[k]) for k in ep.body_fields if k in data}
            labels = cls.media_types
            parts = {
                name: _file_part(op, name, value, labels.get(name)) for name, value in files.items()
            }
        elif ep.body_fields:
            if ep.path_fields or ep.query_fields:
                data = {k: data[k] for k in ep.body_fields if k in data}
            content = _json_encode(data)
    except UnicodeError as exc:  # a lone surrogate cannot become UTF-8
        raise RequestValidationError(f"cannot encode the request: {exc}", operation=op) from None
    return Prepared(ep, path, params, content, form, parts, streaming)


def _check_names(ep: Endpoint, kwargs: Mapping[str, Any]) -> None:
    allowed = ep.fields
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        hints = []
        for name in unknown:
            import difflib

            close = difflib.get_close_matches(name, allowed, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InvalidArgumentsError(
            f"{ep.qualname}() got unexpected keyword argument(s) {', '.join(hints)}; "
            f"allowed: {', '.join(allowed)}"
        )
    missing = [k for k in ep.required if k not in kwargs]
    if missing:
        raise InvalidArgumentsError(
            f"{ep.qualname}() missing required keyword argument(s) "
            f"{', '.join(repr(m) for m in missing)}; allowed: {', '.join(allowed)}"
        )


@cache
def _none_is_unset(cls: type[Request]) -> frozenset[str]:
    """Optional fields whose type has no ``None``: there ``None`` means "not given", as the
    server reads a JSON null or a missing key alike. A field typed ``| None`` sends null."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(
        f.name
        for f in msgspec.structs.fields(cls)
        if f.default is msgspec.UNSET and not _admits_none(hints.get(f.name))
    )


def _admits_none(tp: Any) -> bool:
    if tp is None or tp is type(None) or tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _admits_none(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_admits_none(a) for a in typing.get_args(tp))
    return False


@cache
def _factory_defaults(cls: type[Request]) -> tuple[tuple[str, Any], ...]:
    """Fields with a default factory (such as ``inputs={}``): always sent."""
    return tuple(
        (f.name, f.default_factory)
        for f in msgspec.structs.fields(cls)
        if f.default_factory is not msgspec.NODEFAULT
    )


def _validate(
    ep: Endpoint, cls: type[Request], values: dict[str, Any], files: dict[str, Any]
) -> dict[str, Any]:
    """Round-trip through builtins so nested structs and wrong types are caught too."""
    for name, factory in _factory_defaults(cls):
        if name not in values:
            values[name] = factory()
    try:
        # Struct field order, so every call style puts the same bytes on the wire. Bytes stay
        # bytes here, so a bytes value for a text field is refused instead of base64-encoded.
        data: dict[str, Any] = msgspec.to_builtins(
            {k: values[k] for k in ep.fields if k in values}, builtin_types=_KEEP
        )
        # File fields are typed Any for msgspec; _file_part checks them.
        check = {**data, **dict.fromkeys(files)} if files else data
        json_decoder(cls)  # ready the type's tables under the lock first
        msgspec.convert(check, cls)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _FIELD_PATH.search(message)
        field = match.group(1) if match else None
        pattern = _PATTERN.match(message)
        what = PATTERNS.get(pattern.group(1)) if pattern else None
        if what is not None and field is not None:
            message = f"`{field}` must be {what}, got {_at(check, field)!r}"
        raise RequestValidationError(message, operation=ep.qualname, field=field) from None
    except (TypeError, UnicodeError, RecursionError) as exc:
        # A value msgspec cannot encode: an object, a lone surrogate, a self-containing dict.
        reason = "a value contains itself" if isinstance(exc, RecursionError) else str(exc)
        raise RequestValidationError(
            f"cannot encode the request: {reason}", operation=ep.qualname
        ) from None
    problem = _unsendable(data, "$")
    if problem is not None:
        where, what = problem
        raise RequestValidationError(
            f"{what} at `{where}` cannot be sent as JSON", operation=ep.qualname, field=where
        )
    return data


_KEEP = (bytes, bytearray, memoryview)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _at(data: Any, path: str) -> Any:
    """The value at a msgspec error path such as ``$.tag_ids[1]``."""
    try:
        for key, index in _STEP.findall(path[1:]):
            data = data[int(index)] if index else data[key]
    except (KeyError, IndexError, TypeError):
        return "?"
    return data


def _unsendable(value: Any, where: str) -> tuple[str, str] | None:
    """The first value JSON cannot carry faithfully: bytes (msgspec would base64 them) or a
    float that is not finite (msgspec would send null)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return None
    if kind is float:
        return None if math.isfinite(value) else (where, f"the number {value!r}")
    if kind is dict:
        for key, item in value.items():
            found = _unsendable(item, f"{where}.{key}")
            if found is not None:
                return found
        return None
    if kind is list:
        for index, item in enumerate(value):
            found = _unsendable(item, f"{where}[{index}]")
            if found is not None:
                return found
        return None
    if isinstance(value, _KEEP):
        return (where, "a bytes value")
    return None


def _segment(op: str, name: str, value: Any) -> str:
    text = _scalar(value)
    if text in ("", ".", ".."):
        raise RequestValidationError(
            f"path field {name!r} must not be {text!r}", operation=op, field=f"$.{name}"
        )
    # safe="" also encodes "/", so an id can never change the path or reach the query.
    return quote(text, safe="")


def _expand_path(ep: Endpoint, data: dict[str, Any]) -> str:
    path = ep.path
    for name in ep.path_fields:
        path = path.replace("{" + name + "}", _segment(ep.qualname, name, data[name]))
    return path


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return _json_encode(value).decode()


def _query(ep: Endpoint, data: dict[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    params: list[tuple[str, str | int | float | bool | None]] = []
    for name in ep.query_fields:
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, list):
            params.extend((name, _scalar(v)) for v in value)
        else:
            params.append((name, _scalar(value)))
    return params


def _media_type(filename: str, labels: Mapping[str, str] | None) -> str | None:
    """The request type's label for a file of this name, when it has a table for the field."""
    if not labels:
        return None
    return labels.get(os.path.splitext(filename)[1].lower()) or labels.get("")


def _file_part(op: str, name: str, value: Any, labels: Mapping[str, str] | None = None) -> FilePart:
    field = f"$.{name}"

    def bad(reason: str) -> RequestValidationError:
        return RequestValidationError(f"file field {name!r}: {reason}", operation=op, field=field)

    content_type = None
    if isinstance(value, tuple):
        if len(value) not in (2, 3) or not isinstance(value[0], str):
            raise bad("a tuple must be (filename, content) or (filename, content, content_type)")
        filename, content = value[0], value[1]
        if len(value) == 3:
            content_type = value[2]
    elif isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.exists():
            raise bad(f"no such file: {os.fspath(value)!r}")
        if not path.is_file():
            raise bad(f"not a regular file: {os.fspath(value)!r}")
        return FilePart(
            path.name, path=os.fspath(path), content_type=_media_type(path.name, labels)
        )
    else:
        content = value
        raw_name = getattr(value, "name", None)
        filename = os.path.basename(raw_name) if isinstance(raw_name, str) else name
    if not isinstance(content, (bytes, bytearray)) and not (
        hasattr(content, "read") and not isinstance(content, io.TextIOBase)
    ):
        raise bad(f"expected a path, bytes or a binary file, got {type(content).__name__}")
    if not filename or "/" in filename or "\\" in filename:
        raise bad(f"file name {filename!r} must be non-empty without '/' or '\\'")
    if content_type is None:
        content_type = _media_type(filename, labels)
    return FilePart(filename, content=content, content_type=content_type)
