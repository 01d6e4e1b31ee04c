"""When to send a request again, and how long to wait first.

The rule is keyed on whether the request could have reached Dify and whether re-running the
operation is harmless. A POST that may have started a generation is never re-sent on its own:
each re-send can be a billed LLM run (Dify has no idempotency key).
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from contextvars import ContextVar
from typing import Any

import httpx

__all__ = ["MAX_RETRY_AFTER", "RETRY_THROTTLED", "RetryPolicy", "retry_after_seconds"]

#: Longest server-requested wait honoured; a longer one is raised instead of slept.
MAX_RETRY_AFTER = 60.0
#: Whether a call sleeps and retries a 429 ``too_many_requests`` itself. A batch sets it to
#: False around its calls: it answers the app's concurrency cap by running fewer at once.
RETRY_THROTTLED: ContextVar[bool] = ContextVar("dify_oapi_retry_throttled", default=True)

# Failures where the request provably never reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures after which the server may have received and run the request.
_MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``Retry-After`` wins when given."""

    __slots__ = ("base_delay", "max_delay", "max_retries")

    def __init__(
        self, max_retries: int = 2, base_delay: float = 0.5, max_delay: float = 8.0
    ) -> None:
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): jittered, never above the cap."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)

    @staticmethod
    def retry_on_error(exc: httpx.HTTPError, *, safe: bool) -> bool:
        """Whether a transport failure may be retried (``safe``: re-running is harmless)."""
        if isinstance(exc, httpx.ConnectError) and _is_tls_failure(exc):
            return False  # a certificate does not fix itself between attempts
        if isinstance(exc, _NOT_SENT):
            return True
        return safe and isinstance(exc, _MAYBE_SENT)

    @staticmethod
    def retry_on_status(
        status: int,
        code: str | None,
        *,
        safe: bool,
        retry_codes: frozenset[str] = frozenset(),
        final_codes: frozenset[str] = frozenset(),
    ) -> bool:
        """Whether an error answer may be retried.

        ``retry_codes`` (from the service's table) are answered before any work started, so
        even an unsafe call may be sent again; ``final_codes`` are never retried.
        """
        if code is not None and code in final_codes:
            return False
        if status == 429:
            if code is not None and code in retry_codes:
                # Answered before any work started; a batch turns this off to adapt instead.
                return RETRY_THROTTLED.get()
            return safe
        return safe and (status == 408 or status >= 500)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """The server's requested wait (``retry-after-ms``, ``Retry-After`` seconds or date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
