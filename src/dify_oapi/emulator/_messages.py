"""Answers: chat, chatflow, agent and completion sends, as streams or blocking."""

from __future__ import annotations

from typing import Any

from ._agent import agent_events, stored_thoughts
from ._base import (
    ApiError,
    Ctx,
    end_user,
    handles,
    invalid,
    not_found,
    pydantic_error,
    reply_text,
    require_mode,
    require_user,
    require_uuid,
    streaming,
    usage,
    words,
)
from ._inputs import check_inputs, stored_inputs
from ._runs import failure_at, finish_run, graph, new_run, run_events
from ._state import Record, Task


def message_task(ctx: Ctx, message: Record, answer: str, mode: str, conv: Record | None) -> Task:
    """The events of one answer; a chatflow answer runs inside a workflow run."""
    st, tid, mid = ctx.state, ctx.id(), message["id"]
    ids: Record = {"task_id": tid, "message_id": mid, "created_at": message["created_at"]}
    ids |= {"conversation_id": conv["id"]} if conv else {}
    kind = "agent_message" if mode == "agent-chat" else "message"
    flow = mode == "advanced-chat"
    nodes = graph(ctx, ("start", "llm", "answer")) if flow else ()
    source = (["llm", "text"] if "llm" in nodes else ["answer", "answer"]) if flow else None
    extra = {"from_variable_selector": source} if kind == "message" else {}
    failing, shown = failure_at(ctx, nodes) if flow else (None, ctx.app.fail_after)
    pieces = words(answer)[:shown] if shown is not None else words(answer)
    body = [{"event": kind, "id": mid, **ids, "answer": w, **extra} for w in pieces]
    # Dify times the first token only inside a workflow run (null in plain chat).
    timing: Record = dict.fromkeys(
        ("time_to_first_token", "time_to_generate"), 0.0 if flow else None
    )
    meta: Record = {"annotation_reply": None, "retriever_resources": []}
    meta["usage"] = usage(message["query"], answer) | timing
    end = {"event": "message_end", "id": mid, **ids, "metadata": meta}
    end["files"] = [] if flow else None
    run = None
    if flow:
        turns = sum(
            m["conversation_id"] == message["conversation_id"] for m in st.messages.values()
        )
        system = {"sys.query": message["query"], "sys.dialogue_count": turns}
        run = new_run(ctx, message["inputs"] | system, message["_user"], tid, len(nodes))
        run_ids = ids | {"workflow_run_id": run["id"]}
        outputs = {"answer": answer, "files": []}
        *events, closing = run_events(
            ctx, run_ids, run, body, nodes, outputs, failing, answer=answer
        )
        events += [closing] if failing else [end, closing]  # a failed run has no message_end
    else:
        if shown is not None:
            # The model failed: Dify's error event (no task_id), in place of message_end.
            end = {"event": "error", **{k: v for k, v in ids.items() if k != "task_id"}}
            end |= {"code": "completion_request_error", "status": 400}
            end["message"] = ctx.app.failure
        agent = kind == "agent_message"
        events = agent_events(ctx, ids, body, end, answer, shown is not None) if agent else []
        events = events or [*body, end]

    def settle(task: Task) -> None:
        text = "".join(
            e["answer"] for e in task.events if e["event"] == kind
        )  # a stop keeps one more
        message["answer"] = text
        if kind == "agent_message":
            message["agent_thoughts"] = stored_thoughts(task.events)
        if conv is not None:
            conv.update(updated_at=ctx.now(), _tick=st.touch())
        if run is not None:
            spent = usage(message["query"], text)["total_tokens"]
            finish_run(ctx, run, task, {"answer": text, "files": []}, spent)

    task = Task(tid, message["_user"], events, settle, run_id=run["id"] if run else None)
    st.tasks[tid] = task
    return task


def message_file(ctx: Ctx, f: Record) -> Record:
    stored = ctx.em.files.get(f.get("upload_file_id", ""))
    if stored is None:
        if f["transfer_method"] == "local_file":
            raise invalid(f"Invalid upload file id {f.get('upload_file_id')!r}.")
        source = {"filename": f.get("url", ""), "url": f.get("url"), "mime_type": None, "size": -1}
    else:
        source = {"filename": stored.name, "url": ctx.file_url(stored)}
        source |= {"mime_type": stored.mime_type, "size": len(stored.content)}
    return (
        {"id": ctx.id(), "type": f["type"], "transfer_method": f["transfer_method"]}
        | source
        | {"belongs_to": "user", "upload_file_id": f.get("upload_file_id")}
    )


#: The parent Dify gives every message sent through the Service API (FACTS 7).
NO_PARENT = "00000000-0000-0000-0000-000000000000"


def new_message(ctx: Ctx, query: str, inputs: dict[str, Any], conversation_id: str) -> Record:
    """A message with the keys of Dify's history (no token, price or latency fields)."""
    st = ctx.state
    message: Record = (
        {"id": ctx.id(), "conversation_id": conversation_id, "parent_message_id": NO_PARENT}
        | {"inputs": stored_inputs(ctx.app.user_input_form, inputs), "query": query}
        | {"answer": "", "status": "normal", "error": None}
        | {"message_files": [message_file(ctx, f) for f in ctx.p.get("files", ())]}
        | {"feedback": None, "retriever_resources": [], "agent_thoughts": []}
        | {"created_at": ctx.now(), "extra_contents": [], "_user": ctx.p["user"]}
    )
    st.messages[message["id"]] = message
    # Dify previews an upload only once a message of the app carries it (FACTS 2).
    st.used_files.update(f["upload_file_id"] or "" for f in message["message_files"])
    return message


def owned(records: dict[str, Record], key: str, user: str | None, what: str) -> Record:
    """A conversation or message of the user (Dify scopes them by ``user``)."""
    record = records.get(key)
    if record is None or (user is not None and record["_user"] != user):
        raise not_found(f"{what} Not Exists.")
    return record


def conversation_of(ctx: Ctx) -> Record:
    return owned(
        ctx.state.conversations, ctx.p["conversation_id"], ctx.p.get("user"), "Conversation"
    )


def message_of(ctx: Ctx, message_id: str, user: str | None) -> Record:
    return owned(ctx.state.messages, message_id, user, "Message")


def new_conversation(ctx: Ctx) -> Record:
    p, st, now, tick = ctx.p, ctx.state, ctx.now(), ctx.state.touch()
    named = p.get("auto_generate_name", True)
    variables = [
        {"id": ctx.id(), "name": v["name"], "value_type": v.get("value_type", "string")}
        | {"value": v.get("value", ""), "description": v.get("description", "")}
        | {"created_at": now, "updated_at": now}
        for v in ctx.app.variables
    ]
    conv = (
        {"id": ctx.id(), "name": p["query"][:30] if named else "New conversation"}
        | {"inputs": p["inputs"], "status": "normal"}
        | {"introduction": ctx.app.opening_statement or ""}
        | {"created_at": now, "updated_at": now, "_user": p["user"], "_seq": tick, "_tick": tick}
        | {"_vars": variables}
    )
    st.conversations[conv["id"]] = conv
    return conv


@handles("chat.send")
def send_chat(ctx: Ctx) -> Any:
    require_mode(ctx, "chat", "agent-chat", "advanced-chat")
    p, mode = ctx.p, ctx.app.mode or "chat"
    if "inputs" not in ctx.given:  # Dify requires it; the SDK's type defaults it
        raise pydantic_error("ChatRequestPayload", "inputs", "Field required", "missing", ctx.given)
    require_user(ctx)
    wording = "conversation_id must be a valid UUID"
    require_uuid(ctx, "conversation_id", "ChatRequestPayload", wording)
    if mode == "agent-chat" and p.get("response_mode") != "streaming":
        raise invalid("Agent Chat App does not support blocking mode")
    if not p.get("conversation_id"):
        check_inputs(ctx.app.user_input_form, p["inputs"])
    end_user(ctx, p["user"])
    conv = conversation_of(ctx) if p.get("conversation_id") else new_conversation(ctx)
    answer = reply_text(ctx, p["query"], conv["inputs"], annotated=True)
    message = new_message(ctx, p["query"], conv["inputs"], conv["id"])
    task = message_task(ctx, message, answer, mode, conv)
    return streaming(ctx, task, lambda: blocking_answer(task, message, mode, conv["id"]))


def blocking_answer(task: Task, message: Record, mode: str, conversation_id: str | None) -> Record:
    closing = task.events[-1] if task.events else {}
    if closing.get("event") == "error":
        raise ApiError(400, closing["code"], closing["message"])
    if closing.get("event") == "workflow_finished" and closing["data"]["status"] == "failed":
        raise invalid(f"Run failed: {closing['data']['error']}")
    timed = 0.0 if mode == "advanced-chat" else None
    timing = dict.fromkeys(("time_to_first_token", "time_to_generate"), timed)
    meta: Record = {"annotation_reply": None, "retriever_resources": []}
    meta["usage"] = usage(message["query"], message["answer"]) | timing
    answer = {"event": "message", "task_id": task.id, "id": message["id"]}
    answer |= {"message_id": message["id"]}
    answer |= {"conversation_id": conversation_id} if conversation_id else {}
    answer |= {"mode": mode, "answer": message["answer"], "metadata": meta}
    return answer | {"created_at": message["created_at"]}


@handles("completion.send")
def send_completion(ctx: Ctx) -> Any:
    require_mode(ctx, "completion")
    p, inputs = ctx.p, ctx.p["inputs"]
    require_user(ctx)
    check_inputs(ctx.app.user_input_form, inputs)
    query = p.get("query") or str(inputs.get("query") or " ".join(map(str, inputs.values())))
    end_user(ctx, p["user"])
    answer = reply_text(ctx, query, inputs)
    message = new_message(ctx, query, inputs, ctx.id())  # in a conversation nobody lists
    task = message_task(ctx, message, answer, "completion", None)
    return streaming(ctx, task, lambda: blocking_answer(task, message, "completion", None))
