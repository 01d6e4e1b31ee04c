"""``Client.iter_batch``: one operation over many inputs on a pool of threads."""

from __future__ import annotations

import queue
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from .._retry import RETRY_THROTTLED
from .caller import Caller, arguments
from .result import BatchResult
from .schedule import Job, Plan

__all__ = ["BatchIterator"]

Progress = Callable[[BatchResult[Any], int], None]
_Answers = queue.SimpleQueue[tuple[Job, "Future[Any]"]]


class BatchIterator(Iterator[BatchResult[Any]]):
    """The results of :meth:`~dify_oapi.Client.iter_batch`, in input order.

    Calls start only while the next result is being asked for, so a consumer that stops
    starts nothing more; :meth:`close` (or leaving a ``with`` block) also drops the calls
    not yet begun. ``stats`` (:class:`BatchStats`) tells how the run went.
    """

    def __init__(
        self,
        caller: Caller,
        name: str,
        items: Iterable[Any],
        *,
        concurrency: int,
        on_result: Progress | None,
        options: Mapping[str, Any],
    ) -> None:
        self._plan = Plan(concurrency, on_result)
        caller._endpoint(name)  # an unknown operation fails here, before any thread starts
        self.stats = self._plan.stats
        self._results = self._run(caller, name, iter(items), dict(options))

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> BatchResult[Any]:
        return next(self._results)

    def close(self) -> None:
        """Stop: nothing more is sent; calls already running end on their own."""
        self._results.close()

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(
        self, caller: Caller, name: str, source: Iterator[Any], options: dict[str, Any]
    ) -> Generator[BatchResult[Any], None, None]:
        plan = self._plan
        answers: _Answers = queue.SimpleQueue()
        pool = ThreadPoolExecutor(plan.stats.concurrency, thread_name_prefix="dify-batch")
        pending: set[Future[Any]] = set()
        try:
            while True:
                while plan.room():
                    job = plan.due()
                    if job is None:
                        if not plan.may_read():
                            break
                        try:
                            item = next(source)
                        except StopIteration:
                            plan.input_ended()
                            break
                        except Exception as exc:  # what already ran is given out first
                            plan.input_ended(exc)
                            break
                        job = plan.admit(item)
                    plan.start(job)
                    future = pool.submit(_call, caller, name, job.item, options)
                    pending.add(future)
                    future.add_done_callback(partial(_answered, answers, job))
                gave = False
                for result in plan.ready():
                    gave = True
                    yield result
                if gave:
                    continue  # the window moved on: start what it lets in before waiting
                if plan.over():
                    return
                try:
                    job, future = answers.get(timeout=plan.wait_time())
                except queue.Empty:  # a throttled item is due
                    continue
                while True:
                    pending.discard(future)
                    error = future.exception()
                    plan.finish(job, None if error else future.result(), error)
                    try:
                        job, future = answers.get_nowait()
                    except queue.Empty:
                        break
        finally:
            # Calls not begun are dropped; running ones cannot be stopped and end on their own.
            for future in pending:
                if future.cancel():
                    plan.stats.started -= 1
            pool.shutdown(wait=False)


def _call(caller: Caller, name: str, item: Any, options: Mapping[str, Any]) -> Any:
    request, kwargs = arguments(item, options)
    token = RETRY_THROTTLED.set(False)  # a 429 too_many_requests comes back to the plan
    try:
        return caller.call(name, request, **kwargs)
    finally:
        RETRY_THROTTLED.reset(token)


def _answered(answers: _Answers, job: Job, future: Future[Any]) -> None:
    if not future.cancelled():
        answers.put((job, future))
