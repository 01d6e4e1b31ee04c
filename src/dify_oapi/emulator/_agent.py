"""An agent-chat answer as Dify's function-calling agent streams it: rounds of thoughts.

Each round opens with an empty ``agent_thought`` and publishes the same thought (same
``id`` and ``position``) again as it fills in. With tools, a first round has the model
call every tool of the app (the thought gains ``tool`` and ``tool_input``, then the
``observation``); the answer streams in the last round, whose thought ends holding it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ._base import Ctx
from ._state import Record

__all__ = ["agent_events", "stored_thoughts"]


def agent_events(
    ctx: Ctx, ids: Record, body: list[Record], end: Record, answer: str, failed: bool
) -> list[Record]:
    """The stream: thought rounds around the answer pieces ``body``, then ``end`` (the
    ``message_end``, or the ``error`` of a model that ``failed`` mid-answer, after which
    no thought is updated)."""
    # A model chunk with no text: what Dify relays while the model writes a tool call or
    # closes its answer.
    silent = {"event": "agent_message", "id": ids["message_id"], **ids, "answer": ""}
    events: list[Record] = []
    tools, position = ctx.app.tools, 1
    if tools:
        opened = _thought(ctx, ids, position)
        names = ";".join(t.name for t in tools)  # one thought names all the round's tools
        labels = {t.name: dict(t.labels) or {"en_US": t.name} for t in tools}
        arguments = {t.name: dict(t.arguments) for t in tools}
        called = opened | {"tool": names, "tool_labels": labels}
        called["tool_input"] = json.dumps(arguments, ensure_ascii=False)
        results = {t.name: _run(t.run, arguments[t.name]) for t in tools}
        observed = called | {"observation": json.dumps(results, ensure_ascii=False)}
        events += [opened, silent, called, observed]
        position += 1
    last = _thought(ctx, ids, position)
    events += [last, *body]
    if failed:
        return [*events, end]
    return [*events, silent, last | {"thought": answer}, end]


def _thought(ctx: Ctx, ids: Record, position: int) -> Record:
    empty = {"thought": "", "observation": "", "tool": "", "tool_labels": {}, "tool_input": ""}
    return (
        {"event": "agent_thought", **ids, "id": ctx.id(), "position": position}
        | empty
        | {"message_files": []}
    )


def _run(tool: Callable[[Mapping[str, Any]], str], arguments: dict[str, Any]) -> str:
    try:
        return str(tool(arguments))
    except Exception as exc:  # the agent reads a failing tool's error as its observation
        return f"tool invoke error: {exc}"


def stored_thoughts(events: list[Record]) -> list[Record]:
    """The message's ``agent_thoughts`` in its history: each thought as last published."""
    latest: dict[str, Record] = {}
    for event in events:
        if event["event"] == "agent_thought":
            latest[event["id"]] = event
    keys = ("id", "message_id", "position", "thought", "tool", "tool_labels", "tool_input")
    return [
        {k: t[k] for k in keys}
        | {"chain_id": None, "created_at": t["created_at"], "observation": t["observation"]}
        | {"files": []}
        for t in latest.values()
    ]
