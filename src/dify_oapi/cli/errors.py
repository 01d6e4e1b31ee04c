"""How a failure ends the command: one line a person can act on, and an exit code a script can.

The exit codes tell a retry-worthy failure from a permanent one without reading stderr:

==== ===============================================================================
code meaning
==== ===============================================================================
0    success
1    the command ran but part of its work failed: batch items ended in errors (they are
     in the output), a workflow run failed, documents did not finish indexing
2    a usage error: a malformed command line, a bad ``key=value``, a missing file or API
     key, arguments the operation does not take, a batch input with repeated ids, a Dask
     worker without a key
3    authentication or permission: HTTP 401 (the key is wrong, missing or for another
     app; a batch whose first answers are all 401 stops here) or 403
4    rejected as asked: HTTP 400, 404, 409, 413, 415, 422 and other 4xx: fix the request
5    rate limited: HTTP 429; try again later
6    transient: the server could not be reached, a timeout, a cut stream, HTTP 5xx, an
     answer that is not what the operation returns; try again later
130  interrupted (Ctrl-C); a batch resumes when run again
==== ===============================================================================
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from .._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    DifyError,
    InvalidArgumentsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    StreamInterruptedError,
)

__all__ = ["CLIError", "Exit", "UsageError", "describe_error", "exit_code"]


class Exit(IntEnum):
    """The exit codes of ``dify-oapi`` (see the module docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    REJECTED = 4
    RATE_LIMITED = 5
    TRANSIENT = 6
    INTERRUPTED = 130


#: For ``--help``: each exit code in a few words.
EXIT_HELP = (
    "Exit codes: 0 ok; 1 some of the work failed (batch items, a workflow run); "
    "2 usage error; 3 API key rejected (401) or permission denied (403); "
    "4 request rejected (400, 404, 422...); 5 rate limited (429); "
    "6 transient: unreachable, timeout, cut stream or 5xx; 130 interrupted."
)


class CLIError(Exception):
    """A failure reported as one line on stderr; ``code`` is the exit code."""

    code = Exit.FAILED

    def __init__(self, message: str, code: Exit | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class _HasBaseURL(Protocol):
    def base_url(self) -> str: ...


class UsageError(CLIError):
    """The command line (or a file it names) asks for something that cannot be done."""

    code = Exit.USAGE


def exit_code(exc: BaseException) -> Exit:
    """The exit code a failure ends the command with."""
    from ..jobs.cluster import ClusterError
    from ..jobs.journal import JournalError

    if isinstance(exc, CLIError):
        return exc.code
    if isinstance(exc, (JournalError, ClusterError)):
        return Exit.USAGE
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return Exit.AUTH
    if isinstance(exc, RateLimitError):
        return Exit.RATE_LIMITED
    if isinstance(exc, APIStatusError):
        return Exit.TRANSIENT if exc.status_code >= 500 else Exit.REJECTED
    if isinstance(exc, (APIError, TimeoutError)):  # connection, timeout, decode failures
        return Exit.TRANSIENT
    if isinstance(exc, (ConfigurationError, InvalidArgumentsError, RequestValidationError)):
        return Exit.USAGE
    if isinstance(exc, OSError):
        return Exit.USAGE  # a file named on the command line
    return Exit.FAILED


def describe_error(exc: BaseException, ctx: _HasBaseURL | None) -> str | None:
    """One line a person understands, or ``None`` when the error is a bug (traceback)."""
    base_url = ctx.base_url() if ctx is not None else "the base URL"
    if isinstance(exc, CLIError):
        return str(exc)
    if isinstance(exc, AuthenticationError):
        return (
            f"the API key was rejected (HTTP 401{_code(exc)}: {exc.message}): it is wrong, "
            "missing or for another app; check --api-key or DIFY_API_KEY (knowledge commands "
            "need a dataset- key, app commands the app's app- key)"
        )
    if isinstance(exc, NotFoundError):
        return f"not found: {exc.message} (HTTP 404{_code(exc)}, {_where(exc)})"
    if isinstance(exc, PermissionDeniedError):
        return f"permission denied: {exc.message} (HTTP 403{_code(exc)}, {_where(exc)})"
    if isinstance(exc, RateLimitError):
        return f"rate limited (HTTP 429{_code(exc)}): {exc.message}; try again later"
    if isinstance(exc, APIStatusError):
        return f"{exc.operation}: HTTP {exc.status_code}{_code(exc)}: {exc.message}"
    if isinstance(exc, StreamInterruptedError):
        arrived = len(exc.partial.answer) if exc.partial is not None else 0
        return (
            f"the answer stream from {base_url} was cut before it finished "
            f"({arrived} characters arrived)"
        )
    if isinstance(exc, APITimeoutError):
        return f"timed out waiting for {base_url}; a larger --timeout may help ({exc})"
    if isinstance(exc, APIConnectionError):
        detail = str(exc).split(": ", 1)[-1]
        return f"cannot reach {base_url} ({detail}): check --base-url or DIFY_BASE_URL"
    if isinstance(exc, DifyError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return None


def _code(exc: APIStatusError) -> str:
    return f" {exc.code}" if exc.code else ""


def _where(exc: APIStatusError) -> str:
    """``METHOD /path`` of the request that failed, else the operation's name."""
    response = exc.response
    try:
        request = response.request if response is not None else None
    except RuntimeError:  # a response built without a request
        request = None
    if request is None:
        return exc.operation
    return f"{request.method} {request.url.path}"
