"""What every contender's measurement shares: timers, memory probes, checks. Standard library only.

Contender modules run inside ``worker.py`` (one fresh process per measurement), possibly in a
peer's virtual environment, so nothing here imports httpx, msgspec or this repository's SDK.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from typing import Any

now = time.perf_counter
cpu_now = time.process_time


class NotAvailable(Exception):
    """The contender cannot run this case; the message is the reason shown as ``n/a``."""


def check(condition: bool, message: str) -> None:
    """A correctness check: every contender must do the same work, or the number is void."""
    if not condition:
        raise AssertionError(message)


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """Peak RSS growth over a section of code.

    Linux resets the high-water mark (VmHWM) when "5" is written to /proc/self/clear_refs;
    where that is refused, a sampling thread reads VmRSS every millisecond instead.
    """

    def __init__(self) -> None:
        self.baseline_kb = 0
        self.peak_kb = 0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        import gc

        gc.collect()
        self.baseline_kb = _status_kb("VmRSS") or int(max_rss_mb() * 1024)
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            self.method = "VmHWM after clear_refs"
        except OSError:
            self.method = "VmRSS sampled every 1 ms"
            self.peak_kb = self.baseline_kb
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            rss = _status_kb("VmRSS") or 0
            self.peak_kb = max(self.peak_kb, rss)

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:
            self.peak_kb = _status_kb("VmHWM") or int(max_rss_mb() * 1024)

    @property
    def growth_mb(self) -> float:
        return max(0, self.peak_kb - self.baseline_kb) / 1024.0


class Batches:
    """Per-call timing for sync and async code alike: iterate, run each batch, read the result.

    ``for size in timer: <size calls>``: the first batch is the untimed warm-up, then
    ``batches`` timed batches. ``us_per_call`` is this process's CPU time (in-process work is
    CPU-bound, and CPU time leaves out the time other processes on a shared machine take
    from it); ``us_per_call_wall`` is the wall-clock figure. Medians over the batches.
    """

    def __init__(self, calls: int, warmup: int, batches: int = 5) -> None:
        self.warmup = warmup
        self.size = max(1, calls // batches)
        self.count = max(1, min(batches, calls))
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def __iter__(self) -> Iterator[int]:
        yield self.warmup
        for _ in range(self.count):
            c0, w0 = cpu_now(), now()
            yield self.size
            self.cpu.append((cpu_now() - c0) / self.size * 1e6)
            self.wall.append((now() - w0) / self.size * 1e6)

    def result(self) -> dict[str, float]:
        return {
            "us_per_call": statistics.median(self.cpu),
            "us_per_call_wall": statistics.median(self.wall),
        }


def per_call_us(
    call: Callable[[], Any], calls: int, warmup: int, batches: int = 5
) -> dict[str, float]:
    """Microseconds per call after ``warmup`` calls (see :class:`Batches`)."""
    timer = Batches(calls, warmup, batches)
    for size in timer:
        for _ in range(size):
            call()
    return timer.result()


async def per_call_us_async(
    call: Callable[[], Awaitable[Any]], calls: int, warmup: int, batches: int = 5
) -> dict[str, float]:
    """:func:`per_call_us` for a coroutine function, one call in flight."""
    timer = Batches(calls, warmup, batches)
    for size in timer:
        for _ in range(size):
            await call()
    return timer.result()


Sample = tuple[int, float, float, float, float]


def stream_runs(
    run_once: Callable[[], Sample], runs: int, expected: int, cpu: bool
) -> dict[str, float]:
    """Times whole streams; ``run_once`` returns :func:`time_stream`'s figures."""
    run_once()  # warm-up: imports and first-use caches
    return stream_figures([run_once() for _ in range(runs)], expected, cpu)


def stream_figures(samples: list[Sample], expected: int, cpu: bool) -> dict[str, float]:
    """Medians of whole-stream samples.

    With ``cpu`` (in-process streams) the headline figures use this process's CPU time and
    the wall-clock ones are kept as ``*_wall``; over a socket, wall clock is the headline.
    ``cpu_us_per_event`` is always this process's CPU (all threads) per event.
    """
    for events, *_ in samples:
        check(events == expected, f"decoded {events} events, expected {expected}")
    rates_wall = [n / total for n, _, total, _, _ in samples]
    rates_cpu = [n / total_cpu for n, _, _, _, total_cpu in samples]
    firsts_wall = [first for _, first, _, _, _ in samples]
    firsts_cpu = [first_cpu for _, _, _, first_cpu, _ in samples]
    return {
        "events_per_s": statistics.median(rates_cpu if cpu else rates_wall),
        "first_event_us": statistics.median(firsts_cpu if cpu else firsts_wall) * 1e6,
        "events_per_s_wall": statistics.median(rates_wall),
        "first_event_us_wall": statistics.median(firsts_wall) * 1e6,
        "cpu_us_per_event": 1e6 / statistics.median(rates_cpu),
        "events": expected,
    }


class StreamClock:
    """Wall and CPU time from opening a stream to its first and its last event."""

    def __init__(self) -> None:
        self.start, self.start_cpu = now(), cpu_now()
        self.first = self.first_cpu = 0.0

    def first_event(self) -> None:
        self.first, self.first_cpu = now() - self.start, cpu_now() - self.start_cpu

    def done(self, n: int, last: Any, final_ok: Callable[[Any], bool] | None) -> Sample:
        total, total_cpu = now() - self.start, cpu_now() - self.start_cpu
        if final_ok is not None:
            check(final_ok(last), f"unexpected final event: {last!r}"[:300])
        return n, self.first, total, self.first_cpu, total_cpu


def time_stream(
    open_and_iterate: Callable[[], Iterable[Any]], final_ok: Callable[[Any], bool] | None = None
) -> Sample:
    """Open a stream and iterate it to the end.

    Returns (events, wall time to first event, wall total, CPU time to first event, CPU total).
    """
    clock, n, last = StreamClock(), 0, None
    for item in open_and_iterate():
        last = item
        if not n:
            clock.first_event()
        n += 1
    return clock.done(n, last, final_ok)


async def time_astream(
    open_and_iterate: Callable[[], AsyncIterable[Any]], final_ok: Callable[[Any], bool]
) -> Sample:
    """:func:`time_stream` for an async stream."""
    clock, n, last = StreamClock(), 0, None
    async for item in open_and_iterate():
        last = item
        if not n:
            clock.first_event()
        n += 1
    return clock.done(n, last, final_ok)


def field(obj: Any, *path: str) -> Any:
    """``obj.a.b`` or ``obj["a"]["b"]``: contenders return structs, models or dicts."""
    for name in path:
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def event_name(event: Any) -> Any:
    if isinstance(event, dict):
        return event.get("event")
    config = getattr(type(event), "__struct_config__", None)
    return getattr(config, "tag", None) if config is not None else getattr(event, "event", None)


def final_ok(case: str) -> Callable[[Any], bool]:
    """The check on the last event of a chat or workflow stream, for any contender."""
    if case == "workflow":
        return lambda e: (
            event_name(e) == "workflow_finished" and (field(e, "data", "status") == "succeeded")
        )
    return lambda e: (
        event_name(e) == "message_end" and (field(e, "metadata", "usage", "total_tokens") == 1161)
    )


def check_answer(answer: Any) -> None:
    """The decoded blocking chat answer has its usage and cited resources."""
    check(field(answer, "metadata", "usage", "total_tokens") == 1161, "usage not decoded")
    resources = field(answer, "metadata", "retriever_resources") or []
    check(len(resources) == 3, "retriever resources not decoded")
    check(str(field(answer, "answer")).startswith("The iPhone"), "answer not decoded")


def check_list(result: Any, n: int, kind: str) -> None:
    data = field(result, "data") or []
    check(len(data) == n, f"{kind}: decoded {len(data)} items, expected {n}")
    if kind == "documents":
        check(field(data[-1], "data_source_detail_dict", "upload_file") is not None, "detail")
        check(len(field(data[-1], "doc_metadata") or []) == 2, "doc_metadata not decoded")
    else:
        check(field(data[-1], "feedback", "rating") in ("like", "dislike"), "feedback")
        check(len(field(data[-1], "message_files") or []) == 1, "message_files not decoded")
        check(len(field(data[-1], "retriever_resources") or []) == 2, "resources not decoded")


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def drive_async(
    setup: Callable[[], Any], calls: int, concurrency: int, warmup: int
) -> dict[str, float]:
    """``calls`` requests with ``concurrency`` in flight; ``setup()`` is a coroutine giving
    ``(call, close)``. Returns requests/s and client CPU seconds per 1,000 requests."""
    import asyncio

    async def main() -> dict[str, float]:
        call, close = await setup()
        try:
            check_answer(await call())

            async def worker(n: int) -> None:
                for _ in range(n):
                    await call()

            await asyncio.gather(*(worker(n) for n in split(warmup, concurrency)))
            cpu0, t0 = cpu_seconds(), now()
            await asyncio.gather(*(worker(n) for n in split(calls, concurrency)))
            wall, cpu = now() - t0, cpu_seconds() - cpu0
        finally:
            await close()
        return {"rps": calls / wall, "cpu_per_1000": cpu / calls * 1000, "wall_s": wall}

    return asyncio.run(main())


def drive_threads(
    call: Callable[[], Any], calls: int, threads: int, warmup: int
) -> dict[str, float]:
    """``calls`` blocking requests from ``threads`` threads sharing one client."""
    check_answer(call())
    errors: list[BaseException] = []

    def run_all(counts: list[int]) -> float:
        barrier = threading.Barrier(len(counts) + 1)

        def worker(n: int) -> None:
            barrier.wait()
            try:
                for _ in range(n):
                    call()
            except BaseException as exc:  # reported after the join
                errors.append(exc)

        pool = [threading.Thread(target=worker, args=(n,)) for n in counts]
        for t in pool:
            t.start()
        barrier.wait()
        t0 = now()
        for t in pool:
            t.join()
        if errors:
            raise errors[0]
        return now() - t0

    run_all(split(warmup, threads))
    cpu0 = cpu_seconds()
    wall = run_all(split(calls, threads))
    cpu = cpu_seconds() - cpu0
    return {"rps": calls / wall, "cpu_per_1000": cpu / calls * 1000, "wall_s": wall}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


class Recorded:
    """The first request a contender sent: ``(method, path, query params, JSON body)``."""

    def __init__(self) -> None:
        self.first: tuple[str, str, dict[str, str], Any] | None = None

    def verify(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Every contender must send the same call: same method, path, parameters, body keys."""
        check(self.first is not None, "no request reached the transport")
        assert self.first is not None
        sent_method, sent_path, sent_params, sent_body = self.first
        check(sent_method == method, f"sent {sent_method}, expected {method}")
        check(sent_path == path, f"sent {sent_path}, expected {path}")
        for key, value in (params or {}).items():
            check(sent_params.get(key) == str(value), f"query {key}={sent_params.get(key)!r}")
        for key, value in (body or {}).items():
            got = sent_body.get(key) if isinstance(sent_body, dict) else None
            check(got == value, f"body {key}={got!r}, expected {value!r}")


def measure_memory(
    warm: Callable[[], Any], work: Callable[[], int], expected: int
) -> dict[str, Any]:
    """Peak RSS growth of ``work()`` after ``warm()`` loaded every code path it needs."""
    warm()
    with PeakRSS() as peak:
        start = now()
        got = work()
        seconds = now() - start
    check(got == expected, f"consumed {got}, expected {expected}")
    return {
        "rss_growth_mb": peak.growth_mb,
        "seconds": seconds,
        "baseline_rss_mb": peak.baseline_kb / 1024.0,
        "method": peak.method,
    }
