"""dify-oapi2: a fast, typed SDK for the Dify Service API.

>>> from dify_oapi import Client
>>> client = Client(api_key="app-...")  # or set DIFY_API_KEY
>>> client.chat.send(query="Hello", user="user-1").answer
"""

from ._batch import BatchResult
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
from ._response import RawResponse
from ._streaming import AsyncBinaryStream, AsyncStream, BinaryStream, Stream, StreamState
from ._table import Endpoint, load_table
from ._version import __version__
from ._waiters import IndexingFailedError, IndexingTimeoutError

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
    "IndexingFailedError",
    "IndexingTimeoutError",
    "InternalServerError",
    "InvalidArgumentsError",
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
    "__version__",
    "load_table",
]
