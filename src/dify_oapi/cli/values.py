"""Command-line values: ``key=value`` pairs as app inputs and as an operation's arguments."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import UsageError

if TYPE_CHECKING:
    from .._table import Endpoint

__all__ = ["parse_call_arguments", "parse_inputs"]


def _split_pair(token: str) -> tuple[str, str, bool]:
    """``key=value`` -> (key, value, False); ``key:=json`` -> (key, json, True)."""
    eq = token.find("=")
    if eq <= 0:
        raise UsageError(f"expected key=value (or key:=JSON), got {token!r}")
    if token[eq - 1] == ":" and eq > 1:
        return token[: eq - 1], token[eq + 1 :], True
    return token[:eq], token[eq + 1 :], False


def _parse_json_value(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{key}:= takes JSON, got {text!r} ({exc.msg})") from None


def parse_inputs(pairs: Iterable[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """App inputs: ``key=value`` is a string, ``key:=JSON`` any JSON value."""
    inputs = dict(base or {})
    for token in pairs:
        key, text, is_json = _split_pair(token)
        inputs[key] = _parse_json_value(key, text) if is_json else text
    return inputs


def _field_kinds(ep: Endpoint) -> dict[str, str]:
    """``"file"``, ``"str"`` (text only: kept as typed) or ``"any"`` for each request field."""
    if ep.request is None:
        return {}
    from .._table import struct_fields

    kinds: dict[str, str] = {}
    for info in struct_fields(ep.request):
        if info.name in ep.file_fields:
            kinds[info.name] = "file"
        elif _text_only(info.type):
            kinds[info.name] = "str"
        else:
            kinds[info.name] = "any"
    return kinds


def _text_only(tp: Any) -> bool:
    """Whether a field accepts strings and nothing else (besides unset and None)."""
    members = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, _union_type()) else ()
    options = [m for m in (members or (tp,)) if m not in (msgspec.UnsetType, type(None))]
    if not options:
        return False
    for option in options:
        if option is str:
            continue
        if typing.get_origin(option) is typing.Literal and all(
            isinstance(v, str) for v in typing.get_args(option)
        ):
            continue
        return False
    return True


def _union_type() -> Any:
    import types

    return getattr(types, "UnionType", typing.Union)


def _read_at_file(key: str, path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"{key}=@{path}: cannot read the file ({exc.strerror or exc})") from None


def parse_call_arguments(ep: Endpoint, tokens: Iterable[str]) -> dict[str, Any]:
    """Arguments of ``call``: JSON when the value parses as JSON, else the string.

    Text-only fields keep the string as typed (``query=42`` sends ``"42"``); ``key:=JSON``
    forces JSON; ``key=@path`` names a file for a file field and reads the file (as JSON when
    it parses, else text) for any other field; ``key=@@text`` is the literal ``@text``.
    """
    kinds = _field_kinds(ep)
    arguments: dict[str, Any] = {}
    for token in tokens:
        key, text, is_json = _split_pair(token)
        kind = kinds.get(key, "any")
        if is_json:
            arguments[key] = _parse_json_value(key, text)
            continue
        if text.startswith("@@"):
            text = text[1:]
        elif text.startswith("@"):
            if kind == "file":
                arguments[key] = Path(text[1:])
                continue
            text = _read_at_file(key, text[1:])
            if kind == "str":
                arguments[key] = text
                continue
        if kind == "file":
            arguments[key] = Path(text)
        elif kind == "str":
            arguments[key] = text
        else:
            try:
                arguments[key] = json.loads(text)
            except json.JSONDecodeError:
                arguments[key] = text
    return arguments
