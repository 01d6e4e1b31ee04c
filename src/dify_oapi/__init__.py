"""dify-oapi2: a fast, typed SDK for the Dify Service API.

>>> from dify_oapi import Client
>>> client = Client(api_key="app-...")  # or set DIFY_API_KEY
>>> client.chat.send(query="Hello", user="user-1").answer
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._client import AsyncClient, Client
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    DifyError,
    EndpointTableError,
    InternalServerError,
    InvalidArgumentsError,
    LoopMismatchError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamInterruptedError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from ._hooks import Hooks
from ._response import RawResponse
from ._table import Endpoint
from ._table_files import load_table
from ._version import __version__

if TYPE_CHECKING:
    from ._streaming import AsyncBinaryStream, AsyncStream, BinaryStream, Stream, StreamState
    from ._waiters import WaiterError, WaiterFailedError, WaiterTimeoutError
    from .batch import BatchResult

# Loaded on first use: a blocking call needs none of them.
_LAZY = {
    "BatchResult": "batch",
    "AsyncBinaryStream": "_streaming",
    "AsyncStream": "_streaming",
    "BinaryStream": "_streaming",
    "Stream": "_streaming",
    "StreamState": "_streaming",
    "WaiterError": "_waiters",
    "WaiterFailedError": "_waiters",
    "WaiterTimeoutError": "_waiters",
}


def _load(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if not TYPE_CHECKING:  # checkers see the names above; a typo must not pass as Any
    __getattr__ = _load


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncBinaryStream",
    "AsyncClient",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "BatchResult",
    "BinaryStream",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "DifyError",
    "Endpoint",
    "EndpointTableError",
    "Hooks",
    "InternalServerError",
    "InvalidArgumentsError",
    "LoopMismatchError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "RequestValidationError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "Stream",
    "StreamInterruptedError",
    "StreamState",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "WaiterError",
    "WaiterFailedError",
    "WaiterTimeoutError",
    "__version__",
    "load_table",
]
