"""A JSONL batch across a Dask cluster, under one cap on the app's calls in flight.

The same job as ``dify-oapi batch`` (resumable journal, results in input order), with the
calls made by the cluster's workers; at most ``--concurrency`` of them run at once on the
app, however many workers there are. From the command line::

    pip install 'dify-oapi2[dask]'
    dify-oapi batch chat.send -i prompts.jsonl -o answers.jsonl --dask tcp://scheduler:8786 -c 8

From Python, this script (a local cluster unless ``--scheduler`` is given)::

    export DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1
    python examples/distributed_batch.py chat.send prompts.jsonl answers.jsonl --collect

Each worker calls with the ``DIFY_API_KEY`` of its own environment: the key never travels
through the scheduler. See docs/distributed.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dify_oapi.jobs import cluster


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a dify-oapi batch on a Dask cluster.")
    parser.add_argument("name", help="operation, e.g. chat.send")
    parser.add_argument("input", help="input JSONL, one call per line")
    parser.add_argument("output", help="output JSONL: resumable, input order at the end")
    parser.add_argument("--scheduler", help="address of a running scheduler; else a local one")
    parser.add_argument("--workers", type=int, default=2, help="workers of the local cluster")
    parser.add_argument("--threads", action="store_true", help="local workers as threads")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight, in all")
    parser.add_argument("--collect", action="store_true", help="stream, answer in blocking shape")
    args = parser.parse_args(argv)

    dask = cluster.distributed()  # the optional "dask" extra
    local = None
    if args.scheduler is None:
        local = dask.LocalCluster(  # its HTTP server on any free port
            n_workers=args.workers, processes=not args.threads, dashboard_address=":0"
        )
    try:
        with dask.Client(args.scheduler or local) as dask_client:
            report = cluster.run_file(
                dask_client,
                args.name,
                args.input,
                args.output,
                concurrency=args.concurrency,
                **({"collect": True} if args.collect else {}),
            )
    finally:
        if local is not None:
            local.close()
    print(
        f"{report.ran} run ({report.failed} failed), {report.skipped} skipped -> {report.output}",
        file=sys.stderr,
    )
    return 1 if report.failed_total else 0


if __name__ == "__main__":
    sys.exit(main())
