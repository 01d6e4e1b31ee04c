"""A resumable JSONL batch job: input file in, output journal out, one line per input.

:func:`run_file` runs one on this machine through ``client.iter_batch``;
:func:`dify_oapi.jobs.cluster.run_file` runs the same job across a Dask cluster. Both skip
the items the output already holds (``retry_failed``: except those that failed), write
each result as soon as it is known, and leave the output in input order at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import msgspec

from ..batch.result import BatchResult, BatchStats
from .journal import InputFile, JournalError, OutputFile, result_record

__all__ = ["JobReport", "JsonlJob", "run_file"]

Prepare = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class JobReport:
    """What a finished job did: counts over its whole input, this run's share, its output.

    ``extras``: output lines that match no input line (kept at the end). ``stats``: how
    this run's batch went (``None`` when it ran nothing).
    """

    total: int
    skipped: int
    ran: int
    ok: int
    failed: int
    failed_total: int
    extras: int
    output: str
    seconds: float
    stats: BatchStats | None = None

    def as_dict(self) -> dict[str, Any]:
        """The counts and the output, as JSON-ready values."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "stats"}


class JsonlJob:
    """The two files of one job and the items this run must do. Holds the output's lock
    from :meth:`open` to :meth:`close`."""

    def __init__(self, source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        self.source = Path(source)
        self.target = Path(target)
        if self.source.resolve() == self.target.resolve():
            raise JournalError("the output must not be the input file")
        self.inputs = InputFile(self.source)
        self.output = OutputFile(self.target)
        self.to_run: list[int] = []
        self.failed = 0
        self.started = time.monotonic()
        self._encoder = msgspec.json.Encoder()

    @property
    def keys(self) -> list[Any]:
        return self.inputs.keys

    def open(self, retry_failed: bool = False) -> JsonlJob:
        self.output.open()
        latest = self.output.latest
        self.to_run = [
            index
            for index, key in enumerate(self.keys)
            if key not in latest or (retry_failed and not latest[key].ok)
        ]
        return self

    @property
    def skipped(self) -> int:
        return len(self.keys) - len(self.to_run)

    def arguments(self, prepare: Prepare | None = None) -> Iterator[dict[str, Any]]:
        """The call arguments of the items to run, in input order."""
        return self.inputs.arguments(set(self.to_run), prepare)

    def item_id(self, index: int) -> Any:
        return self.inputs.ids[index]

    def write(self, index: int, record: Mapping[str, Any]) -> None:
        """Journal one result (``record`` as :func:`result_record` makes it)."""
        ok = bool(record["ok"])
        self.output.write(self.keys[index], self._encoder.encode(record) + b"\n", ok)
        self.failed += 0 if ok else 1

    def run(
        self,
        client: Any,
        name: str,
        *,
        concurrency: int,
        prepare: Prepare | None = None,
        on_result: Callable[[BatchResult[Any], int], None] | None = None,
        options: Mapping[str, Any],
    ) -> BatchStats:
        """Run the items with ``client.iter_batch`` (its options from ``options``),
        journaling each result; ``on_result(result, done)`` sees it once journaled."""
        with client.iter_batch(
            name, self.arguments(prepare), concurrency=concurrency, **options
        ) as results:
            for result in results:
                index = self.to_run[result.index]
                self.write(index, result_record(self.item_id(index), index, result))
                if on_result is not None:
                    on_result(result, result.index + 1)
            stats: BatchStats = results.stats
            return stats

    def done(self) -> int:
        """How many inputs have a result in the output."""
        return sum(1 for key in self.keys if key in self.output.latest)

    def finish(self, stats: BatchStats | None = None) -> JobReport:
        """Put the output in input order and say what the job did."""
        extras = self.output.finish(self.keys)
        latest = self.output.latest
        return JobReport(
            total=len(self.keys),
            skipped=self.skipped,
            ran=len(self.to_run),
            ok=len(self.to_run) - self.failed,
            failed=self.failed,
            failed_total=sum(1 for key in self.keys if not latest[key].ok),
            extras=extras,
            output=str(self.target),
            seconds=round(time.monotonic() - self.started, 3),
            stats=stats,
        )

    def close(self) -> None:
        self.output.close()

    def __enter__(self) -> JsonlJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_file(
    client: Any,
    name: str,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    concurrency: int = 8,
    retry_failed: bool = False,
    prepare: Prepare | None = None,
    on_result: Callable[[BatchResult[Any], int], None] | None = None,
    **options: Any,
) -> JobReport:
    """Run operation ``name`` once per line of ``source`` with ``client.iter_batch``,
    journaling to ``target``; run it again after a kill and it does only the rest.

    ``prepare`` turns an input line's arguments into the call's (e.g. fill in ``user``);
    ``on_result(result, done)`` sees each result once it is journaled.
    """
    with JsonlJob(source, target) as job:
        job.open(retry_failed)
        stats = job.run(
            client,
            name,
            concurrency=concurrency,
            prepare=prepare,
            on_result=on_result,
            options=options,
        )
        return job.finish(stats)
