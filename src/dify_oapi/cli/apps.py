"""Commands for apps: ``chat``, ``complete`` and ``run-workflow``, each streaming as it arrives."""

from __future__ import annotations

import json
import sys
from typing import Any

from .context import Context, dump_json, err
from .errors import CLIError, UsageError
from .values import parse_inputs

__all__ = ["cmd_chat", "cmd_complete", "cmd_run_workflow"]


def _read_query(given: str | None, what: str) -> str | None:
    if given is not None:
        return given
    if sys.stdin is None or sys.stdin.isatty():
        return None
    text = sys.stdin.read().strip()
    if not text:
        raise UsageError(f"no {what}: pass it as an argument or on standard input")
    return text


def _stream_answer(ctx: Context, stream: Any) -> Any:
    """Print answer chunks as they arrive; return the assembled blocking answer."""
    from ..types import AgentMessageEvent, MessageEvent, MessageReplaceEvent

    with stream:
        for event in stream:
            if ctx.json:
                continue
            if isinstance(event, (MessageEvent, AgentMessageEvent)) and event.answer:
                ctx.out(event.answer, end="")
            elif isinstance(event, MessageReplaceEvent):
                ctx.end_line()
                ctx.out(event.answer, end="")
        return stream.collect()


def cmd_chat(ctx: Context) -> int:
    args = ctx.args
    client = ctx.client("app")
    inputs = parse_inputs(args.input, args.inputs)
    conversation: str | None = args.conversation
    query = _read_query(args.query, "query")
    interactive = query is None
    while True:
        if interactive:
            sys.stderr.write("you> ")
            sys.stderr.flush()
            line = sys.stdin.readline()
            if not line:
                sys.stderr.write("\n")
                return 0
            query = line.strip()
            if not query:
                continue
        assert query is not None
        extra: dict[str, Any] = {"conversation_id": conversation} if conversation else {}
        stream = client.chat.send(query=query, user=ctx.user, inputs=inputs, stream=True, **extra)
        try:
            answer = _stream_answer(ctx, stream)
        finally:
            ctx.end_line()
        conversation = answer.conversation_id or conversation
        if ctx.json:
            ctx.out(dump_json(answer, compact=True))
        if conversation:
            err(f"conversation: {conversation}")
        if not interactive:
            return 0


def cmd_complete(ctx: Context) -> int:
    args = ctx.args
    client = ctx.client("app")
    inputs = parse_inputs(args.input, args.inputs)
    text = _read_query(args.text, "text")
    if text is not None:
        inputs[args.var] = text
    if not inputs:
        raise UsageError("nothing to complete: pass TEXT, -i key=value or --inputs JSON")
    stream = client.completion.send(user=ctx.user, inputs=inputs, stream=True)
    try:
        answer = _stream_answer(ctx, stream)
    finally:
        ctx.end_line()
    if ctx.json:
        ctx.out(dump_json(answer, compact=True))
    return 0


def cmd_run_workflow(ctx: Context) -> int:
    from ..types import (
        NodeFinishedEvent,
        NodeStartedEvent,
        TextChunkEvent,
        WorkflowFinishedEvent,
        WorkflowStartedEvent,
    )

    args = ctx.args
    client = ctx.client("app")
    inputs = parse_inputs(args.inputs_pairs, args.inputs)
    progress = not args.quiet
    if args.workflow_id:
        stream = client.workflow.run_by_id(
            workflow_id=args.workflow_id, user=ctx.user, inputs=inputs, stream=True
        )
    else:
        stream = client.workflow.run(user=ctx.user, inputs=inputs, stream=True)
    printed_text = False
    finished: Any = None
    with stream:
        try:
            for event in stream.follow():
                if isinstance(event, WorkflowStartedEvent) and progress:
                    err(f"workflow run {event.workflow_run_id or '?'} started")
                elif isinstance(event, NodeStartedEvent) and progress and event.data:
                    err(f"  node started:  {_node_name(event.data)}")
                elif isinstance(event, NodeFinishedEvent) and progress and event.data:
                    err(f"  node finished: {_node_outcome(event.data)}")
                elif isinstance(event, TextChunkEvent) and event.data and not ctx.json:
                    ctx.out(event.data.text, end="")
                    printed_text = printed_text or bool(event.data.text)
                elif isinstance(event, WorkflowFinishedEvent):
                    finished = event.data
        finally:
            ctx.end_line()
        result = stream.collect()
    data = finished if finished is not None else getattr(result, "data", None)
    status = getattr(data, "status", None)
    outputs = getattr(data, "outputs", None)
    if ctx.json:
        ctx.out(dump_json(result, compact=True))
    elif not printed_text and outputs:
        texts = list(outputs.values())
        if len(texts) == 1 and isinstance(texts[0], str):
            ctx.out(texts[0])
        else:
            ctx.out(json.dumps(outputs, ensure_ascii=False, indent=2))
    if progress and data is not None:
        took = f" in {data.elapsed_time:.2f}s" if data.elapsed_time is not None else ""
        tokens = f", {data.total_tokens} tokens" if data.total_tokens is not None else ""
        err(f"workflow run {stream.workflow_run_id or '?'} {status or 'finished'}{took}{tokens}")
    if status not in (None, "succeeded", "partial-succeeded"):
        error = getattr(data, "error", None)
        raise CLIError(f"the workflow run {status}" + (f": {error}" if error else ""))
    return 0


def _node_outcome(node: Any) -> str:
    took = f" in {node.elapsed_time:.2f}s" if node.elapsed_time is not None else ""
    error = f": {node.error}" if node.error else ""
    return f"{_node_name(node)} {node.status or 'done'}{took}{error}"


def _node_name(data: Any) -> str:
    title = data.title or data.node_id or "?"
    return f"{title} ({data.node_type})" if data.node_type else title
