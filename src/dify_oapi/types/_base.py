"""Base classes and markers shared by every request, response and event struct."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Annotated, Any, ClassVar, Union

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["PATTERNS", "UNSET", "FileInput", "Model", "Request", "UnsetType", "constrained"]

#: What a string constrained by each regex must be, for the error that refuses it.
PATTERNS: dict[str, str] = {}


def constrained(pattern: str, what: str) -> msgspec.Meta:
    """A string constraint whose refusal says ``must be <what>`` (``Annotated[str, ...]``)."""
    PATTERNS[pattern] = what
    return msgspec.Meta(pattern=pattern, description=what)


class FileMarker:
    """Annotation marker: a request field holding a file to send as a multipart part."""


if TYPE_CHECKING:
    #: A file to upload: a path, raw bytes, an open binary file, or a
    #: ``(filename, content)`` / ``(filename, content, content_type)`` tuple.
    FileInput = Union[
        str,
        os.PathLike[str],
        bytes,
        IO[bytes],
        tuple[str, Union[bytes, IO[bytes]]],
        tuple[str, Union[bytes, IO[bytes]], str],
    ]
else:
    # msgspec cannot describe file objects; the dispatcher finds these fields by the
    # marker and handles them itself, so msgspec only ever sees ``Any``.
    FileInput = Annotated[Any, FileMarker]


class Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, repr_omit_defaults=True):
    """Base of request structs: optional fields default to ``UNSET`` and are then not sent.

    ``media_types``: per file field, the media type its part is labelled with when the caller
    gives none, by the file name's suffix (lower case, with the dot); ``""`` is for a name
    with no suffix or one not listed. Fields not named here get httpx's guess.
    """

    media_types: ClassVar[dict[str, dict[str, str]]] = {}


class Model(msgspec.Struct, kw_only=True, repr_omit_defaults=True):
    """Base of response and event structs: unknown fields are ignored, so newer servers decode."""

    def to_dict(self) -> dict[str, Any]:
        """The struct as plain Python builtins (nested structs become dicts)."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result
