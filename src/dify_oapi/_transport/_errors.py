"""httpx's transport failures as the SDK's typed errors, by type, never by message."""

from __future__ import annotations

import httpx

from .._exceptions import APIConnectionError, APIError, APITimeoutError
from .._secret import Secret, mask

__all__ = ["transport_error"]


def transport_error(op: str, exc: httpx.HTTPError, secret: Secret | None) -> APIError:
    """The typed error for a failed request; no request header travels with it."""
    detail = mask(str(exc), secret)
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{name}: {detail or 'request timed out'}", operation=op)
    return APIConnectionError(f"{name}: {detail}" if detail else name, operation=op)
