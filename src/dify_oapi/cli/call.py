"""``call``: any operation by name, its answer as JSON (or bytes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .context import Context, dump_json, err, with_user
from .errors import UsageError
from .values import parse_call_arguments

__all__ = ["cmd_call"]


def cmd_call(ctx: Context) -> int:
    args = ctx.args
    if args.list:
        return _list_operations(ctx)
    if not args.name:
        args.command_parser.error("an operation NAME is needed (--list shows them)")
    ep = ctx.endpoint(args.name)
    arguments = with_user(ep, parse_call_arguments(ep, args.arguments), ctx.user)
    client = ctx.client_for(ep)
    if args.all:
        if not ep.paginate:
            raise UsageError(f"{ep.qualname} is not a paged list; --all needs a list_ operation")
        from .._services import iter_name_for

        items = getattr(getattr(client, ep.service), iter_name_for(ep))(**arguments)
        for item in items:
            ctx.out(dump_json(item, compact=True))
        return 0
    if args.stream:
        if ep.stream is None:
            raise UsageError(f"{ep.qualname} does not stream events")
        with client.call(ep.qualname, **arguments, stream=True) as stream:
            for event in stream:
                ctx.out(dump_json(event, compact=True))
        return 0
    if args.collect:
        arguments["collect"] = True
    result = client.call(ep.qualname, **arguments)
    if isinstance(result, bytes):
        return _write_bytes(ctx, result, args.output)
    if args.output:
        Path(args.output).write_text(dump_json(result, compact=ctx.json) + "\n", "utf-8")
        return 0
    if result is None:
        if ctx.json:
            ctx.out("null")
        else:
            err("done (no content)")
        return 0
    ctx.out(dump_json(result, compact=ctx.json))
    return 0


def _write_bytes(ctx: Context, data: bytes, output: str | None) -> int:
    if output:
        Path(output).write_bytes(data)
        err(f"wrote {len(data)} bytes to {output}")
        return 0
    if sys.stdout.isatty():
        raise UsageError(f"the answer is {len(data)} bytes of binary data: pass --output FILE")
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


def _list_operations(ctx: Context) -> int:
    from .._services import ENDPOINTS

    rows = [(ep.qualname, ep.method, ep.path, ep.doc) for eps in ENDPOINTS.values() for ep in eps]
    if ctx.json:
        keys = ("name", "method", "path", "doc")
        ctx.out(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], ensure_ascii=False))
        return 0
    width = max(len(row[0]) for row in rows)
    for name, method, path, doc in rows:
        ctx.out(f"{name:<{width}}  {method:<6} {path}  {doc}".rstrip())
    return 0
