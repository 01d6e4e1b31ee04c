"""Typos in the package's own names: flagged, not passed off as Any (tests/typing/test_typing.py)."""

from __future__ import annotations

import dify_oapi
from dify_oapi import types


def names() -> None:
    print(dify_oapi.Strem)  # expect-error
    print(types.ChatRespnse)  # expect-error
    print(dify_oapi.Stream, types.ChatResponse)
