"""``AsyncClient.iter_batch``: one operation over many inputs as asyncio tasks."""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any

from .._retry import RETRY_THROTTLED
from .caller import AsyncCaller, arguments
from .result import BatchResult
from .schedule import Job, Plan

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncBatchIterator"]

Progress = Callable[[BatchResult[Any], int], None]


class AsyncBatchIterator(AsyncIterator[BatchResult[Any]]):
    """The results of :meth:`~dify_oapi.AsyncClient.iter_batch`, in input order.

    The async twin of :class:`BatchIterator`: calls start only while the next result is
    awaited; :meth:`aclose` (or leaving an ``async with`` block) cancels the calls in flight.
    """

    def __init__(
        self,
        caller: AsyncCaller,
        name: str,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int,
        on_result: Progress | None,
        options: Mapping[str, Any],
    ) -> None:
        self._plan = Plan(concurrency, on_result)
        caller._endpoint(name)
        self.stats = self._plan.stats
        self._results = self._run(caller, name, _source(items), dict(options))

    def __aiter__(self) -> AsyncBatchIterator:
        return self

    async def __anext__(self) -> BatchResult[Any]:
        return await self._results.__anext__()

    async def aclose(self) -> None:
        """Stop: nothing more is sent and the calls in flight are cancelled."""
        await self._results.aclose()

    async def __aenter__(self) -> AsyncBatchIterator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(
        self, caller: AsyncCaller, name: str, source: AsyncIterator[Any], options: dict[str, Any]
    ) -> AsyncGenerator[BatchResult[Any], None]:
        import asyncio  # only async batches pay for it

        plan = self._plan
        running: dict[asyncio.Future[Any], Job] = {}
        try:
            while True:
                while plan.room():
                    job = plan.due()
                    if job is None:
                        if not plan.may_read():
                            break
                        try:
                            item = await source.__anext__()
                        except StopAsyncIteration:
                            plan.input_ended()
                            break
                        except Exception as exc:  # what already ran is given out first
                            plan.input_ended(exc)
                            break
                        job = plan.admit(item)
                    plan.start(job)
                    running[asyncio.ensure_future(_call(caller, name, job.item, options))] = job
                gave = False
                for result in plan.ready():
                    gave = True
                    yield result
                if gave:
                    continue  # the window moved on: start what it lets in before waiting
                if plan.over():
                    return
                timeout = plan.wait_time()
                if not running:
                    await asyncio.sleep(timeout or 0.0)
                    continue
                done, _ = await asyncio.wait(
                    running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    job = running.pop(task)
                    cancelled = task.cancelled()
                    error = asyncio.CancelledError() if cancelled else task.exception()
                    plan.finish(job, None if error else task.result(), error)
        finally:
            for task in running:
                task.cancel()


async def _call(caller: AsyncCaller, name: str, item: Any, options: Mapping[str, Any]) -> Any:
    request, kwargs = arguments(item, options)
    RETRY_THROTTLED.set(False)  # in this task only: a 429 too_many_requests comes back to the plan
    return await caller.call(name, request, **kwargs)


def _source(items: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        return items.__aiter__()
    return _from_sync(iter(items))


async def _from_sync(items: Iterator[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
