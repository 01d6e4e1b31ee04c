"""Waiting for a status to settle, as a ``[[waiter]]`` row declares it.

A waiter polls one operation with the caller's arguments, reads the status at its path (in
the answer, or in every element of a list in it), and stops when every status is a success,
any is a failure, or all have settled. It is the same loop for every waiter; the client runs
it, sleeping between polls.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from ._exceptions import DifyError, InvalidArgumentsError
from ._table import Waiter

__all__ = ["WaiterError", "WaiterFailedError", "WaiterTimeoutError", "poll"]

# Tests replace this to drive time by hand.
_monotonic = time.monotonic


class WaiterError(DifyError):
    """A waiter ended without success; ``last`` is the last answer, ``items`` what it checked."""

    def __init__(self, message: str, *, waiter: str, last: Any, items: list[Any]) -> None:
        super().__init__(message)
        self.waiter = waiter
        self.last = last
        self.items = items

    @property
    def statuses(self) -> list[Any]:
        """The checked items (for a list, each element; else the answer)."""
        return self.items


class WaiterFailedError(WaiterError):
    """A status reached one of the waiter's failure values."""


class WaiterTimeoutError(WaiterError, TimeoutError):
    """The status had not settled at the deadline; ``last`` holds the last poll."""


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


def _items(waiter: Waiter, answer: Any) -> list[Any]:
    if not waiter.items:
        return [answer]
    found = _get(answer, waiter.items)
    return list(found or ())


def poll(waiter: Waiter, kwargs: dict[str, Any]) -> Generator[tuple[str, Any], Any, Any]:
    """The waiter's life without I/O: yields ``("call", arguments)`` and receives the answer,
    yields ``("sleep", seconds)`` between polls; returns what the waiter returns."""
    timeout = kwargs.pop("timeout", waiter.timeout)
    interval = kwargs.pop("poll_interval", waiter.delay)
    raise_on_failure = kwargs.pop("raise_on_failure", True)
    for value, name in ((timeout, "timeout"), (interval, "poll_interval")):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise InvalidArgumentsError(f"{waiter.method_name}(): {name} must be seconds >= 0")
    deadline = _monotonic() + timeout
    while True:
        answer = yield "call", dict(kwargs)
        items = _items(waiter, answer)
        statuses = [_get(item, waiter.status) for item in items]
        settled = waiter.success | waiter.failure | waiter.settled
        if items and all(s in settled for s in statuses):
            failed = [i for i, s in zip(items, statuses, strict=True) if s in waiter.failure]
            if failed and raise_on_failure:
                raise WaiterFailedError(
                    f"{waiter.method_name}: {len(failed)} of {len(items)} ended in "
                    f"{sorted({_get(i, waiter.status) for i in failed})}: "
                    + "; ".join(_describe(waiter, i) for i in failed),
                    waiter=waiter.name,
                    last=answer,
                    items=items,
                )
            return items if waiter.items else answer
        remaining = deadline - _monotonic()
        if remaining <= 0:
            pending = [
                (waiter.key and _get(i, waiter.key)) or s
                for i, s in zip(items, statuses, strict=True)
                if s not in settled
            ]
            raise WaiterTimeoutError(
                f"{waiter.method_name}: not settled after {timeout:g}s; still pending: "
                f"{pending or 'no status yet'}",
                waiter=waiter.name,
                last=answer,
                items=items,
            )
        yield "sleep", min(interval, remaining)


def _describe(waiter: Waiter, item: Any) -> str:
    ident = _get(item, waiter.key) if waiter.key else None
    reason = (_get(item, waiter.reason) if waiter.reason else None) or "failed"
    return f"{ident}: {reason}" if ident else str(reason)
