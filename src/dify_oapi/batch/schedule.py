"""The batch's decisions, without I/O: what to start, how wide to run, what to yield, when to stop.

The thread runner and the task runner drive one :class:`Plan` each. The rules:

- **Order and memory.** Results come out in input order; at most ``2 x concurrency``
  inputs are read ahead of the last result given out.
- **Nothing starts unasked.** A call starts only while the runner is being asked for the
  next result, so a consumer that stops (``break``, an exception, Ctrl-C) starts nothing.
- **Width.** A 429 ``too_many_requests`` (Dify's per-app concurrency cap, answered before
  any generation starts, so sending the item again is safe) halves the number of calls run
  at once, once per width, and remembers the width that drew it as too wide; every other
  answer widens by ``1/width`` (one call per round), up to the widest known to pass. After a
  long clean run at that width, one wider is tried again.
- **A wrong key.** Until some call gets an answer other than 401, a 401 stops new calls;
  once the calls in flight end, if none got another answer, the batch raises that
  :class:`~dify_oapi.AuthenticationError` instead of sending every item to be refused.
  Items that carry their own ``api_key`` do not count.
- **A failing input.** When reading the input raises, every item read so far is run to its
  result and given out, then the error is raised.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .._exceptions import AuthenticationError, InvalidArgumentsError, RateLimitError
from .result import BatchResult, BatchStats

__all__ = ["Job", "Plan", "Width", "check_concurrency"]

#: How often one item may be sent again after a throttle before its 429 is its result.
MAX_THROTTLES = 10
#: Clean rounds at the widest known width before one wider is tried.
PROBE_ROUNDS = 8


def check_concurrency(concurrency: int) -> None:
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InvalidArgumentsError("batch concurrency must be an int >= 1")


class Job:
    """One input item on its way: where it is in the input and how its last send went."""

    __slots__ = ("epoch", "index", "item", "load", "not_before", "own_key", "throttles")

    def __init__(self, index: int, item: Any) -> None:
        self.index = index
        self.item = item
        self.own_key = isinstance(item, Mapping) and item.get("api_key") is not None
        self.throttles = 0
        self.not_before = 0.0
        self.epoch = 0  # the width's epoch when the call started
        self.load = 0  # calls in flight when it started, itself included

    def __lt__(self, other: Job) -> bool:  # retries: the earliest input first
        return self.index < other.index


class Width:
    """Additive increase, multiplicative decrease of the calls run at once."""

    __slots__ = ("calm", "ceiling", "epoch", "limit", "settled", "top")

    def __init__(self, concurrency: int) -> None:
        self.top = concurrency
        self.ceiling = concurrency  # the widest not known to draw a 429
        self.settled = concurrency  # the widest known to run clean
        self.limit = float(concurrency)
        self.epoch = 0
        self.calm = 0

    @property
    def allowed(self) -> int:
        return max(1, min(self.ceiling, int(self.limit)))

    def throttled(self, job: Job) -> None:
        self.ceiling = max(1, min(self.ceiling, job.load - 1))
        self.settled = min(self.settled, self.ceiling)
        self.calm = 0
        if job.epoch == self.epoch:  # the first 429 at this width; later ones are its echo
            self.epoch += 1
            self.limit = max(1.0, min(self.limit, float(job.load)) / 2)

    def answered(self) -> None:
        self.calm += 1
        if self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + 1 / self.limit)
        elif self.calm >= PROBE_ROUNDS * self.ceiling:
            self.settled = self.ceiling
            self.calm = 0
            if self.ceiling < self.top:
                self.ceiling += 1  # the cap may have grown (another client left): try it


class Plan:
    """The state of one batch run; see the module docstring for its rules."""

    def __init__(
        self,
        concurrency: int,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_concurrency(concurrency)
        self.stats = BatchStats(concurrency)
        self.width = Width(concurrency)
        self.window = 2 * concurrency
        self.on_result = on_result
        self.clock = clock
        self.in_flight = 0
        self.reading = True
        self.given = 0  # results given out; the next one to give has this index
        self._admitted = 0
        self._done: dict[int, BatchResult[Any]] = {}
        self._retries: list[Job] = []
        self._input_error: BaseException | None = None
        self._refused: AuthenticationError | None = None  # a 401 holding new calls back
        self._key_works = False

    # -- starting ---------------------------------------------------------------------

    def room(self) -> bool:
        return self._refused is None and self.in_flight < self.width.allowed

    def due(self) -> Job | None:
        """A throttled item whose wait is over, earliest input first."""
        if self._retries and self._retries[0].not_before <= self.clock():
            return heapq.heappop(self._retries)
        return None

    def may_read(self) -> bool:
        return self.reading and self._admitted - self.given < self.window

    def admit(self, item: Any) -> Job:
        job = Job(self._admitted, item)
        self._admitted += 1
        return job

    def input_ended(self, error: BaseException | None = None) -> None:
        self.reading = False
        self._input_error = error

    def start(self, job: Job) -> None:
        self.in_flight += 1
        job.epoch = self.width.epoch
        job.load = self.in_flight
        stats = self.stats
        stats.started += 1
        stats.peak = max(stats.peak, self.in_flight)

    # -- answers ----------------------------------------------------------------------

    def finish(self, job: Job, value: Any, error: BaseException | None) -> None:
        self.in_flight -= 1
        # A 429 the server answered before any work (the app's concurrency cap, as the
        # service's table declares its code): fewer calls at once, and send it again.
        throttled = isinstance(error, RateLimitError) and error.before_work
        if isinstance(error, AuthenticationError):
            if not job.own_key and not self._key_works and self._refused is None:
                self._refused = error
        elif isinstance(error, Exception) or error is None:
            self._key_works = True  # any other answer shows the key is good
            self._refused = None
        if throttled and job.throttles < MAX_THROTTLES:
            self.stats.throttled += 1
            self.width.throttled(job)
            self.stats.width = self.width.settled
            job.throttles += 1
            wait = min(8.0, 0.25 * 2.0 ** (job.throttles - 1)) * (0.5 + random.random() / 2)
            job.not_before = self.clock() + wait
            heapq.heappush(self._retries, job)
            return
        if not throttled:
            self.width.answered()
            self.stats.width = self.width.settled
        self._done[job.index] = BatchResult(job.index, job.item, value, error)

    def ready(self) -> Iterator[BatchResult[Any]]:
        """The results that are next in input order, each passed to ``on_result`` first."""
        while self._refused is None and self.given in self._done:
            result = self._done.pop(self.given)
            self.given += 1
            if result.error is not None and not isinstance(result.error, Exception):
                raise result.error  # KeyboardInterrupt and friends stop the batch
            if self.on_result is not None:
                self.on_result(result, self.given)
            yield result

    # -- waiting and ending -----------------------------------------------------------

    def wait_time(self) -> float | None:
        """How long to wait for an answer before a throttled item is due (``None``: as long
        as it takes)."""
        if not self._retries or self._refused is not None:
            return None
        return max(0.0, self._retries[0].not_before - self.clock())

    def over(self) -> bool:
        """Whether the run is over; raises the error it ends with, if any."""
        if self.in_flight:
            return False
        if self._refused is not None:
            raise self._refused
        if self._retries or self._done or self.reading:
            return False
        if self._input_error is not None:
            raise self._input_error
        return True
