"""A batch that outgrows one machine: the same JSONL batch, run over a Dask cluster.

The input is split into contiguous partitions; each Dask task builds its own ``Client``
from the environment of the worker it runs on (``DIFY_API_KEY``, ``DIFY_BASE_URL``) and runs
``client.iter_batch`` over its partition, so concurrency is ``partitions x concurrency``
calls at most and the SDK's retry policy applies to every call. The partitions' results
are gathered in partition order, so the output has one line per input line, in input
order, in the same shape as ``dify-oapi batch``::

    pip install 'dify-oapi2[dask]'
    export DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1
    python examples/distributed_batch.py chat.send in.jsonl out.jsonl --collect
    python examples/distributed_batch.py chat.send in.jsonl out.jsonl --collect \\
        --scheduler tcp://scheduler:8786 --partitions 64

Without ``--scheduler`` it starts a local cluster. The workers of a real cluster need the
two variables in their own environment (and dify-oapi2 installed). See docs/distributed.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from dify_oapi import APIStatusError, BatchResult, Client

Item = tuple[int, Any, dict[str, Any]]  # (index in the input, id, call arguments)
Record = dict[str, Any]


def read_items(path: str) -> list[Item]:
    """The input JSONL: ``{"id": ..., "args": {...}}`` or the arguments themselves."""
    items: list[Item] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            data = json.loads(line)
            arguments = (
                data["args"] if "args" in data else {k: v for k, v in data.items() if k != "id"}
            )
            items.append((len(items), data.get("id"), arguments))
    return items


def partition(items: Sequence[Item], parts: int) -> list[list[Item]]:
    """Contiguous, nearly equal slices: concatenated in order they give the input back."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    slices: list[list[Item]] = []
    start = 0
    for number in range(parts):
        end = start + size + (1 if number < extra else 0)
        slices.append(list(items[start:end]))
        start = end
    return slices


def to_record(item: Item, result: BatchResult[Any]) -> Record:
    """One output line, as ``dify-oapi batch`` writes it."""
    index, item_id, _ = item
    if result.ok:
        plain = msgspec.to_builtins(result.value)  # structs as dicts: picklable, JSON-ready
        return {"id": item_id, "index": index, "ok": True, "result": plain}
    error = result.error
    status = error.status_code if isinstance(error, APIStatusError) else None
    code = error.code if isinstance(error, APIStatusError) else None
    message = error.message if isinstance(error, APIStatusError) else str(error)
    return {
        "id": item_id,
        "index": index,
        "ok": False,
        "error": {"type": type(error).__name__, "status": status, "code": code, "message": message},
    }


def run_partition(
    name: str, items: list[Item], concurrency: int, options: dict[str, Any]
) -> list[Record]:
    """One Dask task: a client from this worker's environment, one ``iter_batch``."""
    with Client() as client:
        arguments = [args for _, _, args in items]
        return [
            to_record(items[result.index], result)
            for result in client.iter_batch(name, arguments, concurrency=concurrency, **options)
        ]


def run_on_cluster(
    dask_client: Any,
    name: str,
    items: Sequence[Item],
    *,
    partitions: int,
    concurrency: int = 4,
    options: dict[str, Any] | None = None,
) -> list[Record]:
    """Submit one task per partition and gather the results in input order."""
    chunks = partition(items, partitions)
    futures = [
        dask_client.submit(run_partition, name, chunk, concurrency, options or {}, pure=False)
        for chunk in chunks
    ]
    gathered: list[list[Record]] = dask_client.gather(futures)  # in partition order
    return [record for chunk in gathered for record in chunk]


def write_records(path: str, records: Sequence[Record]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def distributed() -> Any:
    """``dask.distributed``, imported when used: it is the optional ``dask`` extra."""
    return importlib.import_module("dask.distributed")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a dify-oapi batch on a Dask cluster.")
    parser.add_argument("name", help="operation, e.g. chat.send")
    parser.add_argument("input", help="input JSONL")
    parser.add_argument("output", help="output JSONL (one line per input, input order)")
    parser.add_argument("--scheduler", help="address of a running scheduler; else a local one")
    parser.add_argument("--workers", type=int, default=2, help="local cluster workers")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight per task")
    parser.add_argument("--collect", action="store_true", help="streaming operations: collect")
    parser.add_argument(
        "--in-process", action="store_true", help="local cluster of threads, not processes"
    )
    args = parser.parse_args(argv)

    dask = distributed()
    if args.scheduler:
        cluster = None
        dask_client = dask.Client(args.scheduler)
    else:
        cluster = dask.LocalCluster(
            n_workers=args.workers, processes=not args.in_process, dashboard_address=":0"
        )
        dask_client = dask.Client(cluster)
    try:
        records = run_on_cluster(
            dask_client,
            args.name,
            read_items(args.input),
            partitions=args.partitions,
            concurrency=args.concurrency,
            options={"collect": True} if args.collect else {},
        )
    finally:
        dask_client.close()
        if cluster is not None:
            cluster.close()
    write_records(args.output, records)
    failed = sum(1 for record in records if not record["ok"])
    print(f"{len(records)} results, {failed} failed -> {args.output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
