"""What a header may be: a token name and an ASCII value without control characters."""

from __future__ import annotations

import re
from typing import Any

from ._exceptions import RequestValidationError

__all__ = ["check_header"]

# RFC 9110: a field name is a token; a value has no control characters but tab.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_header(
    name: Any, value: Any, op: str, error: type[Exception] = RequestValidationError
) -> None:
    """Refuse a header that is not a token name with an ASCII value free of control
    characters (CR, LF, NUL and the rest could split or corrupt the request)."""

    def bad(reason: str) -> Exception:
        if error is RequestValidationError:
            return RequestValidationError(reason, operation=op)
        return error(f"{op}: {reason}")

    if not isinstance(name, str) or not isinstance(value, str):
        raise bad(f"header {name!r} must be a str name and value")
    if not _HEADER_NAME.fullmatch(name):
        raise bad(f"header name {name!r} is not a valid token")
    if not value.isascii():
        raise bad(f"header {name!r} must be ASCII")
    if _BAD_VALUE.search(value):
        raise bad(f"header {name!r} contains a control character")
