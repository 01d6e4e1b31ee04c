"""msgspec decoders, built once per type and never by two threads at a time.

msgspec (0.22) fills a struct type's decoding tables lazily on first use, and two threads
doing that at once for the same types can crash the interpreter. Every first use of a type
goes through :func:`json_decoder` under one lock; later uses only read the tables.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import msgspec

__all__ = ["json_decoder"]

_lock = threading.Lock()


@cache
def json_decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    """The cached JSON decoder for ``tp``; building it also readies ``msgspec.convert``."""
    with _lock:
        return msgspec.json.Decoder(tp)
