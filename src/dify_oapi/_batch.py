"""Running one operation over many inputs with bounded concurrency.

Results come back in input order, each holding either the value or the error it raised: one
failure never cancels the rest. Every call goes through the client's normal send path, so
the retry policy applies to each item.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._exceptions import InvalidArgumentsError

if TYPE_CHECKING:
    from ._client import AsyncClient, Client

__all__ = ["BatchResult"]

T = TypeVar("T")
Progress = Callable[["BatchResult[Any]", int], None]


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


def _check(concurrency: int) -> None:
    if not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentsError("batch concurrency must be an int >= 1")


def _invoke(client: Client, name: str, item: Any, options: Mapping[str, Any]) -> Any:
    if isinstance(item, Mapping):
        return client.call(name, **{**options, **item})
    return client.call(name, item, **options)


def iter_batch(
    client: Client,
    name: str,
    items: Iterable[Any],
    *,
    concurrency: int,
    on_result: Progress | None,
    options: Mapping[str, Any],
) -> Iterator[BatchResult[Any]]:
    """Yield results in input order; at most ``concurrency`` calls run, and only a bounded
    window of inputs is read ahead, so an input of any length streams through."""
    _check(concurrency)
    client._endpoint(name)  # fail fast on an unknown operation, before any thread starts
    from concurrent.futures import Future, ThreadPoolExecutor  # only batch users pay for it

    window: deque[tuple[int, Any, Future[Any]]] = deque()
    done = 0
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dify-batch") as pool:
        source = iter(enumerate(items))
        exhausted = False
        while window or not exhausted:
            while not exhausted and len(window) < concurrency * 2:
                try:
                    index, item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                window.append((index, item, pool.submit(_invoke, client, name, item, options)))
            if not window:
                break
            index, item, future = window.popleft()
            error = future.exception()
            result: BatchResult[Any] = BatchResult(
                index, item, None if error else future.result(), error
            )
            if error is not None and not isinstance(error, Exception):
                raise error  # KeyboardInterrupt and friends stop the batch
            done += 1
            if on_result is not None:
                on_result(result, done)
            yield result


async def aiter_batch(
    client: AsyncClient,
    name: str,
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    concurrency: int,
    on_result: Progress | None,
    options: Mapping[str, Any],
) -> AsyncIterator[BatchResult[Any]]:
    """Async twin of :func:`iter_batch`: tasks instead of threads, same ordering and bounds."""
    import asyncio

    _check(concurrency)
    client._endpoint(name)

    async def invoke(item: Any) -> Any:
        if isinstance(item, Mapping):
            return await client.call(name, **{**options, **item})
        return await client.call(name, item, **options)

    async def source() -> AsyncIterator[Any]:
        if isinstance(items, AsyncIterable):
            async for item in items:
                yield item
        else:
            for item in items:
                yield item

    window: deque[tuple[int, Any, asyncio.Task[Any]]] = deque()
    semaphore = asyncio.Semaphore(concurrency)

    async def bounded(item: Any) -> Any:
        async with semaphore:
            return await invoke(item)

    done = 0
    index = 0
    inputs = source()
    exhausted = False
    try:
        while window or not exhausted:
            while not exhausted and len(window) < concurrency * 2:
                try:
                    item = await inputs.__anext__()
                except StopAsyncIteration:
                    exhausted = True
                    break
                window.append((index, item, asyncio.ensure_future(bounded(item))))
                index += 1
            if not window:
                break
            position, item, task = window.popleft()
            try:
                value = await task
                result: BatchResult[Any] = BatchResult(position, item, value)
            except Exception as exc:  # captured as a value: one failure never stops the rest
                result = BatchResult(position, item, None, exc)
            done += 1
            if on_result is not None:
                on_result(result, done)
            yield result
    finally:
        for _, _, task in window:
            task.cancel()
