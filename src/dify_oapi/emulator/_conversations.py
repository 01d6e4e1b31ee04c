"""Conversations, their messages and variables, and annotations."""

from __future__ import annotations

import json
from typing import Any

from ._base import Ctx, Reply, after, handles, invalid, not_found, page, require_uuid
from ._messages import conversation_of
from ._state import Record, public


@handles("chat.list_conversations")
def list_conversations(ctx: Ctx) -> Any:
    user = ctx.p.get("user")
    convs = [c for c in ctx.state.conversations.values() if user in (None, c["_user"])]
    order = ctx.p.get("sort_by", "-updated_at")
    tie = "_tick" if order.endswith("updated_at") else "_seq"
    convs.sort(key=lambda c: (c[order.lstrip("-")], c[tie]), reverse=order.startswith("-"))
    result = after(convs, ctx.p, "Last Conversation")
    return result | {"data": [public(c) for c in result["data"]]}


@handles("chat.list_messages")
def list_messages(ctx: Ctx) -> Any:
    require_uuid(ctx, "conversation_id", "MessageListQuery", "must be a valid UUID")
    conv = conversation_of(ctx)
    items = [m for m in ctx.state.messages.values() if m["conversation_id"] == conv["id"]]
    result = after(items[::-1], ctx.p, "First Message", key="first_id")  # newest first
    data = []
    for m in result["data"][::-1]:
        feedback = ctx.state.feedbacks.get(m["id"])
        data.append(public(m) | {"feedback": {"rating": feedback["rating"]} if feedback else None})
    return result | {"data": data}


def variable_view(var: Record) -> Record:
    value = var["value"]
    return var | {"value": value if isinstance(value, str) else json.dumps(value)}


@handles("chat.list_conversation_variables")
def list_variables(ctx: Ctx) -> Any:
    name = ctx.p.get("variable_name")
    found = [v for v in conversation_of(ctx)["_vars"] if name in (None, v["name"])]
    result = after(found, ctx.p, "Last Variable")
    return result | {"data": [variable_view(v) for v in result["data"]]}


_VALUE_TYPES: dict[str, Any] = {"string": str, "secret": str, "number": (int, float)}
_VALUE_TYPES |= {"boolean": bool, "object": dict}


@handles("chat.update_conversation_variable")
def update_variable(ctx: Ctx) -> Any:
    var = next((v for v in conversation_of(ctx)["_vars"] if v["id"] == ctx.p["variable_id"]), None)
    if var is None:
        raise not_found("Conversation variable not found.")
    value, kind = ctx.p["value"], var["value_type"]
    expected = list if kind.startswith("array") else _VALUE_TYPES.get(kind, object)
    if not isinstance(value, expected) or (kind == "number" and isinstance(value, bool)):
        message = f"The value does not match the variable type {kind}."
        raise invalid(message, "conversation_variable_type_mismatch")
    var.update(value=value, updated_at=ctx.now())
    return variable_view(var)


@handles("chat.rename_conversation")
def rename_conversation(ctx: Ctx) -> Any:
    conv = conversation_of(ctx)
    if ctx.p.get("auto_generate"):
        queries = [
            m["query"] for m in ctx.state.messages.values() if m["conversation_id"] == conv["id"]
        ]
        conv["name"] = (queries or ["New conversation"])[0][:30]
    elif ctx.p.get("name"):
        conv["name"] = ctx.p["name"]
    else:
        raise invalid("name is required when auto_generate is false")
    conv["updated_at"] = ctx.now()
    return public(conv)


@handles("chat.delete_conversation")
def delete_conversation(ctx: Ctx) -> Any:
    st, conv = ctx.state, conversation_of(ctx)
    del st.conversations[conv["id"]]
    for mid in [m["id"] for m in st.messages.values() if m["conversation_id"] == conv["id"]]:
        del st.messages[mid]


# --- annotations -------------------------------------------------------------------------


def annotation_of(ctx: Ctx) -> Record:
    note = ctx.state.annotations.get(ctx.p["annotation_id"])
    if note is None:
        raise not_found("Annotation not found.")
    return note


@handles("chat.list_annotations")
def list_annotations(ctx: Ctx) -> Any:
    word = ctx.p.get("keyword", "").casefold()
    notes = list(ctx.state.annotations.values())[::-1]
    return page([n for n in notes if word in (n["question"] + n["answer"]).casefold()], ctx.p)


@handles("chat.create_annotation")
def create_annotation(ctx: Ctx) -> Any:
    note = {"id": ctx.id(), "question": ctx.p["question"], "answer": ctx.p["answer"]}
    ctx.state.annotations[note["id"]] = note | {"hit_count": 0, "created_at": ctx.now()}
    return Reply(201, ctx.state.annotations[note["id"]])


@handles("chat.update_annotation")
def update_annotation(ctx: Ctx) -> Any:
    note = annotation_of(ctx)
    note.update(question=ctx.p["question"], answer=ctx.p["answer"])
    return note


@handles("chat.delete_annotation")
def delete_annotation(ctx: Ctx) -> Any:
    del ctx.state.annotations[annotation_of(ctx)["id"]]


@handles("chat.update_annotation_reply")
def annotation_reply(ctx: Ctx) -> Any:
    job = ctx.id()
    ctx.state.jobs[job] = ctx.p["action"]
    ctx.state.annotation_reply = ctx.p["action"] == "enable"
    return {"job_id": job, "job_status": "waiting"}


@handles("chat.get_annotation_reply_status")
def annotation_reply_status(ctx: Ctx) -> Any:
    if ctx.state.jobs.get(ctx.p["job_id"]) != ctx.p["action"]:
        raise invalid("The job does not exist.")
    return {"job_id": ctx.p["job_id"], "job_status": "completed", "error_msg": ""}
