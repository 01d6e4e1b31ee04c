"""What a batch gives back: a :class:`BatchResult` per input and the run's :class:`BatchStats`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

__all__ = ["BatchResult", "BatchResults", "BatchStats"]

T = TypeVar("T")

#: What a pickled result holds instead of an ``api_key`` an input item carried.
MASK = "***"


class BatchResult(Generic[T]):
    """One input's outcome: ``value`` when ``ok``, else ``error``."""

    __slots__ = ("error", "index", "input", "value")

    def __init__(
        self, index: int, input: Any, value: T | None = None, error: BaseException | None = None
    ) -> None:
        self.index = index
        self.input = input
        self.value = value
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        outcome = f"error={self.error!r}" if self.error is not None else "ok"
        return f"<BatchResult #{self.index} {outcome}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # A result crosses processes (a pool, a Dask worker, a result store): a key the
        # input item carried for its own call stays behind.
        return (BatchResult, (self.index, _masked(self.input), self.value, self.error))


def _masked(item: Any) -> Any:
    if isinstance(item, Mapping) and item.get("api_key") is not None:
        return {**item, "api_key": MASK}
    return item


class BatchStats:
    """How a batch ran, updated as it runs.

    ``width``: the number of calls it lets run at once now; at the end, the width it settled
    at (below ``concurrency`` when the app's concurrency cap answered 429
    ``too_many_requests``). ``peak``: the most calls that ran at once. ``started``: calls
    sent, re-sends after a 429 included. ``throttled``: 429 ``too_many_requests`` answers
    the batch absorbed by narrowing and sending the item again.
    """

    __slots__ = ("concurrency", "peak", "started", "throttled", "width")

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.width = concurrency
        self.peak = 0
        self.started = 0
        self.throttled = 0

    def __repr__(self) -> str:
        fields = " ".join(f"{name}={getattr(self, name)}" for name in self.__slots__)
        return f"<BatchStats {fields}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_stats, (self.concurrency, self.width, self.peak, self.started, self.throttled))


def _stats(concurrency: int, width: int, peak: int, started: int, throttled: int) -> BatchStats:
    stats = BatchStats(concurrency)
    stats.width, stats.peak, stats.started, stats.throttled = width, peak, started, throttled
    return stats


class BatchResults(list[BatchResult[Any]]):
    """The results of ``client.batch`` in input order (a list), with the run's ``stats``."""

    def __init__(self, results: Any = (), stats: BatchStats | None = None) -> None:
        super().__init__(results)
        self.stats = stats if stats is not None else BatchStats(0)
