"""``batch``: a JSONL file through one operation, resumable, here or across a Dask cluster."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import AuthenticationError
from .context import Context, err, format_duration, with_user
from .errors import CLIError, Exit, UsageError
from .progress import progress

if TYPE_CHECKING:
    from .._table import Endpoint
    from ..batch.result import BatchResult, BatchStats
    from ..jobs.local import JobReport, JsonlJob

__all__ = ["cmd_batch"]


def cmd_batch(ctx: Context) -> int:
    from ..jobs.local import JsonlJob

    args = ctx.args
    ep = ctx.endpoint(args.name)
    if args.dask and (args.api_key or args.emulator):
        raise UsageError(
            "with --dask each worker calls Dify with the DIFY_API_KEY of its own environment "
            "(the key never travels through the scheduler): drop --api-key and --emulator"
        )
    with JsonlJob(args.input, args.output) as job:
        runner = _on_cluster(ctx, args.dask) if args.dask else _here(ctx.client_for(ep))
        job.open(args.retry_failed)  # holds the lock until the end, the final rewrite included
        return _run(ctx, ep, runner, job)


Runner = Callable[..., "BatchStats | None"]


def _here(client: Any) -> Runner:
    """Run the job's items from this process, through ``client.iter_batch``."""

    def run(job: JsonlJob, name: str, advance: Callable[[bool], None], **settings: Any) -> Any:
        def on_result(result: BatchResult[Any], done: int) -> None:
            advance(result.ok)

        return job.run(client, name, on_result=on_result, **settings)

    return run


def _on_cluster(ctx: Context, address: str) -> Runner:
    """Run the job's items as tasks on the Dask cluster at ``address``."""
    from ..jobs import cluster

    try:
        dask_client = cluster.distributed().Client(address, timeout=ctx.args.timeout or 30)
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:  # distinct before 3.11
        message = f"cannot reach the Dask scheduler at {address} ({exc})"
        raise CLIError(message, Exit.TRANSIENT) from None
    ctx.on_close(dask_client.close)

    def run(job: JsonlJob, name: str, advance: Callable[[bool], None], **settings: Any) -> Any:
        def on_record(record: Mapping[str, Any], done: int) -> None:
            advance(bool(record["ok"]))

        options = settings.pop("options")
        cluster.run_job(
            dask_client,
            job,
            name,
            base_url=ctx.args.base_url,
            client_options=ctx.client_options(),
            on_record=on_record,
            **settings,
            **options,
        )
        return None

    return run


def _prepare(ep: Endpoint, user: str) -> Any:
    """What every input line's arguments need: a ``user``, and file fields as paths."""

    def prepare(arguments: dict[str, Any]) -> dict[str, Any]:
        for name in ep.file_fields:
            value = arguments.get(name)
            if isinstance(value, str) and value.startswith("@"):
                arguments[name] = value[1:]
        return with_user(ep, arguments, user)

    return prepare


def _run(ctx: Context, ep: Endpoint, runner: Runner, job: JsonlJob) -> int:
    args = ctx.args
    target = job.target
    total = len(job.keys)
    options: dict[str, Any] = {}
    if ep.stream is not None and ep.response is not None:
        options["collect"] = True  # each result is the blocking answer, streamed underneath
    label = f"batch {ep.qualname}"
    if job.skipped and not ctx.json:
        running = len(job.to_run)
        err(f"{label}: {job.skipped} of {total} items already in {target}; running {running}")
    shown = progress(label, len(job.to_run), args.progress_interval, args.progress)
    try:
        stats = runner(
            job,
            ep.qualname,
            shown.advance,
            concurrency=args.concurrency,
            prepare=_prepare(ep, ctx.user),
            options=options,
        )
    except KeyboardInterrupt:
        shown.close()
        err(
            f"\n{label}: interrupted; {job.done()} of {total} results are in {target}: "
            "run the same command again to resume"
        )
        raise
    except AuthenticationError as exc:
        shown.close()
        raise CLIError(
            f"the API key was rejected (HTTP 401: {exc.message}) for the first calls, so the "
            f"batch stopped without sending the other items ({job.done()} of {total} results "
            f"are in {target}); check --api-key or DIFY_API_KEY, then run it again",
            Exit.AUTH,
        ) from exc
    finally:
        shown.close()
    report = job.finish(stats)
    _summary(ctx, label, report)
    if report.failed_total:
        raise CLIError(
            f"{report.failed_total} of {total} items failed (their errors are in {target}); "
            "add --retry-failed to run them again"
        )
    return 0


def _summary(ctx: Context, label: str, report: JobReport) -> None:
    if ctx.json:
        summary = {"operation": label.partition(" ")[2], **report.as_dict()}
        summary.pop("extras")
        if report.stats is not None:
            summary["width"] = report.stats.width
            summary["throttled"] = report.stats.throttled
        ctx.out(json.dumps(summary))
    elif ctx.args.progress:
        rate = report.ran / report.seconds if report.seconds > 0 else 0.0
        width = ""
        stats = report.stats
        if stats is not None and stats.throttled:
            width = f", settled at {stats.width} in flight after {stats.throttled} 429s"
        err(
            f"{label}: {report.ran} run ({report.failed} failed), {report.skipped} skipped, "
            f"{rate:.1f}/s, {format_duration(report.seconds)}{width} -> {report.output}"
        )
    if report.extras:
        err(
            f"{label}: kept {report.extras} line(s) of {report.output} that match no input "
            "line at the end"
        )
