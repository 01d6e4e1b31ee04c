"""The SDK's exceptions: one static hierarchy rooted at :class:`DifyError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ._streaming._state import StreamState

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "DifyError",
    "EndpointTableError",
    "InternalServerError",
    "InvalidArgumentsError",
    "LoopMismatchError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "StreamInterruptedError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
]


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    for name in getattr(cls, "_local", ()):
        error.__dict__.setdefault(name, None)
    return error


class DifyError(Exception):
    """Base of every exception this SDK raises on purpose.

    Every one survives ``pickle`` with its class and fields (so errors cross process
    pools), without the HTTP objects it may hold: those stay in the process that made them.
    """

    #: Attributes left out of a pickle (live HTTP objects, which hold request headers).
    _local: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        state = {k: v for k, v in self.__dict__.items() if k not in self._local}
        return (_restore, (type(self), self.args, state))


class EndpointTableError(DifyError):
    """An endpoint table row is invalid; raised when the table loads."""


class ConfigurationError(DifyError, ValueError):
    """The client was configured with an unusable value (base URL, API key, header)."""


class ClientClosedError(DifyError, RuntimeError):
    """The client was used after ``close()``, or closed while a stream was being read."""


class LoopMismatchError(DifyError, RuntimeError):
    """An ``AsyncClient`` was used from an event loop other than its own, which still runs."""


class InvalidArgumentsError(DifyError, TypeError):
    """Unknown or missing keyword arguments for an operation; raised before any I/O."""


class RequestValidationError(DifyError, ValueError):
    """A request field has a wrong type or value; raised before any I/O.

    ``operation`` names the operation and ``field`` the offending field (a JSON path
    such as ``$.files[0].type``) when known.
    """

    def __init__(self, message: str, *, operation: str, field: str | None = None) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.field = field


class APIError(DifyError):
    """An error that happened while talking to the API.

    ``partial`` holds what a stream had produced before the error (answer text so far,
    task/message/conversation/workflow-run ids, recent events); ``None`` otherwise.
    """

    operation: str
    partial: StreamState | None

    def __init__(self, message: str, *, operation: str, partial: StreamState | None = None) -> None:
        super().__init__(f"{operation}: {message}" if operation else message)
        self.operation = operation
        self.partial = partial


class APIConnectionError(APIError):
    """The request could not be completed: connection refused, reset, or protocol error."""


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, write or waiting for the pool)."""


class StreamInterruptedError(APIConnectionError):
    """A stream ended before its final event; ``partial`` holds what arrived."""


class ResponseDecodeError(APIError):
    """The server answered 2xx but the body was not what the operation declares."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status_code: int | None = None,
        body: bytes = b"",
        partial: StreamState | None = None,
    ) -> None:
        super().__init__(message, operation=operation, partial=partial)
        self.status_code = status_code
        self.body = body


class ResponseTooLargeError(APIError):
    """A response body, error body or stream event exceeded the client's size cap."""


class APIStatusError(APIError):
    """The server answered with an error status (or sent an ``error`` event in a stream).

    ``status_code``, ``code`` and ``message`` come from Dify's error body
    ``{"code", "message", "status"}``; ``request_id`` and ``headers`` from the response.
    ``response`` is the ``httpx.Response`` (not pickled).
    """

    status_code: int
    _local = ("response",)

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status_code: int,
        code: str | None = None,
        body: Any = None,
        request_id: str | None = None,
        response: httpx.Response | None = None,
        partial: StreamState | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        text = f"HTTP {status_code}"
        if code:
            text += f" {code}"
        text += f": {message}"
        if request_id:
            text += f" (request id {request_id})"
        super().__init__(text, operation=operation, partial=partial)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.body = body
        self.request_id = request_id
        self.response = response
        self.headers: dict[str, str] = dict(headers or {})
        #: The server refused before doing any work (a code the service's table lists as
        #: ``retry_codes``): sending the request again cannot run it twice.
        self.before_work = False


class BadRequestError(APIStatusError):
    """HTTP 400, e.g. ``invalid_param`` or ``app_unavailable``."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing, wrong or for another app."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403; Dify's knowledge API also signals its rate limits this way."""


class NotFoundError(APIStatusError):
    """HTTP 404."""


class ConflictError(APIStatusError):
    """HTTP 409."""


class PayloadTooLargeError(APIStatusError):
    """HTTP 413."""


class UnsupportedMediaTypeError(APIStatusError):
    """HTTP 415."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422."""


class RateLimitError(APIStatusError):
    """HTTP 429: ``too_many_requests`` (transient) or ``rate_limit_error`` (a quota)."""


class InternalServerError(APIStatusError):
    """HTTP 5xx."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP status code."""
    if status >= 500:
        return InternalServerError
    return _STATUS_ERRORS.get(status, APIStatusError)
