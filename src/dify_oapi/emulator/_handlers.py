"""Behaviour per operation for app keys: messages, conversations, workflow runs, files, info.

A handler is registered under the ``service.name`` of a row and receives a :class:`Ctx`
with the validated request fields. It returns a JSON value (answered with 200), ``None``
(204) or a :class:`Reply`; it raises :class:`ApiError` for Dify's error answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._state import STOPPED, AppState, KnowledgeState, Record, StoredFile, Task, Upload, public

if TYPE_CHECKING:
    from ._core import AppDefinition, Emulator
    from ._routes import Route
    from ._sse import Feed

Handler = Callable[["Ctx"], Any]
HANDLERS: dict[str, Handler] = {}


def handles(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS.update(dict.fromkeys(names, fn))
        return fn

    return register


class ApiError(Exception):
    """An error answer with Dify's body ``{"code", "message", "status"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def reply(self) -> Reply:
        return Reply(
            self.status, {"code": self.code, "message": self.message, "status": self.status}
        )


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def invalid(message: str, code: str = "invalid_param") -> ApiError:
    return ApiError(400, code, message)


@dataclass
class Reply:
    """An answer: JSON ``data``, raw ``content``, or an event stream (``stream``) made of
    ``prefix`` events then the ``task``'s."""

    status: int = 200
    data: Any = None
    content: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    task: Task | None = None
    prefix: list[Record] = field(default_factory=list)
    feed: Feed | None = None  # set by the emulator for streams
    route: Route | None = None


@dataclass
class Ctx:
    """One call: the emulator, its route, validated fields ``p``, file parts, app, origin."""

    em: Emulator
    route: Route
    p: dict[str, Any]
    files: dict[str, Upload]
    app: AppDefinition
    origin: str

    @property
    def state(self) -> AppState:
        return self.em.app_state(self.app)

    @property
    def kb(self) -> KnowledgeState:
        return self.em.knowledge

    def id(self) -> str:
        return self.em.ids.new()

    def now(self) -> int:
        return self.em.ids.now()

    def file_url(self, f: StoredFile) -> str:
        """The signed download URL Dify hands out (served without a key)."""
        return f"{self.origin}/files/{f.id}/file-preview?timestamp={self.now()}&nonce=0&sign=emu"


# --- helpers ---------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """The answer in one-word chunks (each with its trailing space); they join back exactly."""
    return re.findall(r"\S+\s*|\s+", text)


def tokens(text: str) -> int:
    return len(text.split())


def usage(prompt: str, answer: str) -> Record:
    p, c = tokens(prompt), tokens(answer)
    return (
        {"prompt_tokens": p, "prompt_unit_price": "0.001", "prompt_price_unit": "0.001"}
        | {"prompt_price": f"{p * 1e-6:.7f}", "completion_tokens": c}
        | {"completion_unit_price": "0.002", "completion_price_unit": "0.001"}
        | {"completion_price": f"{c * 2e-6:.7f}", "total_tokens": p + c}
        | {"total_price": f"{p * 1e-6 + c * 2e-6:.7f}", "currency": "USD", "latency": 0.0}
    )


def page(items: list[Any], p: dict[str, Any]) -> Record:
    """A page-numbered answer: ``data``, ``has_more``, ``limit``, ``total``, ``page``."""
    number, limit = p.get("page", 1), p.get("limit", 20)
    if number < 1 or not 1 <= limit <= 100:
        raise invalid("page must be >= 1 and limit between 1 and 100")
    data = items[(number - 1) * limit : number * limit]
    more = number * limit < len(items)
    return {"data": data, "has_more": more, "limit": limit, "total": len(items), "page": number}


def after(items: list[Record], p: dict[str, Any], what: str, key: str = "last_id") -> Record:
    """A cursor page: the items after the one whose id is ``p[key]``."""
    limit = p.get("limit", 20)
    if not 1 <= limit <= 100:
        raise invalid("limit must be between 1 and 100")
    if p.get(key):
        ids = [i["id"] for i in items]
        if p[key] not in ids:
            raise not_found(f"{what} Not Exists.")
        items = items[ids.index(p[key]) + 1 :]
    return {"limit": limit, "has_more": len(items) > limit, "data": items[:limit]}


def require_mode(ctx: Ctx, *modes: str) -> None:
    if ctx.app.mode is not None and ctx.app.mode not in modes:
        code = {"workflow": "not_workflow_app", "completion": "not_completion_app"}
        raise invalid(
            "Please check if your app mode matches the right API route.",
            code.get(modes[0], "not_chat_app"),
        )


def end_user(ctx: Ctx, user: str | None) -> Record:
    users, iso = ctx.state.end_users, ctx.em.ids.iso()
    if (user or "") not in users:
        users[user or ""] = (
            {"id": ctx.id(), "tenant_id": ctx.em.tenant_id, "app_id": ctx.state.app_id}
            | {"type": "service-api", "external_user_id": user, "name": user}
            | {"is_anonymous": not user, "session_id": user or ctx.id()}
            | {"created_at": iso, "updated_at": iso}
        )
    return users[user or ""]


def reply_text(ctx: Ctx, query: str, inputs: dict[str, Any], annotated: bool = False) -> str:
    """An annotation's answer, a scripted reply, the app's replies, else an echo."""
    st = ctx.state
    for note in st.annotations.values() if annotated and st.annotation_reply else ():
        if note["question"].strip().casefold() == query.strip().casefold():
            note["hit_count"] += 1
            return str(note["answer"])
    scripted = ctx.em.next_scripted()
    if scripted is not None:
        return scripted
    replies = ctx.app.replies
    if callable(replies):
        return replies(query, inputs)
    if replies and st.replies_used < len(replies):
        st.replies_used += 1
        return replies[st.replies_used - 1]
    return query


def streaming(ctx: Ctx, task: Task, blocking: Callable[[], Any]) -> Any:
    """A stream of the task's events, or (blocking mode) its answer once it has run."""
    if ctx.p.get("response_mode") == "streaming":
        return Reply(stream=True, task=task)
    task.drain()
    return blocking()


# --- workflow runs -----------------------------------------------------------------------


def new_run(ctx: Ctx, inputs: dict[str, Any], user: str, task_id: str, steps: int) -> Record:
    st, now, run_id = ctx.state, ctx.now(), ctx.id()
    system = {"sys.files": [], "sys.user_id": user, "sys.app_id": st.app_id}
    system |= {"sys.workflow_id": st.workflow_id, "sys.workflow_run_id": run_id}
    inputs = inputs | system
    run: Record = (
        {"id": run_id, "workflow_id": st.workflow_id, "status": "running"}
        | {"inputs": json.dumps(inputs), "outputs": {}, "error": None}  # inputs as JSON text
        | {"total_steps": steps, "total_tokens": 0, "created_at": now, "finished_at": None}
        | {"elapsed_time": 0.0, "_user": user, "_task": task_id, "_log": ctx.id()}
        | {"_end_user": end_user(ctx, user), "_tick": st.touch()}
    )
    st.runs[run["id"]] = run
    return run


TITLES = {"start": "Start", "llm": "LLM", "answer": "Answer", "end": "End"}
#: Where the answer streams: inside the first node of these types, else before any node.
STREAMING_NODES = ("llm",)


def graph(ctx: Ctx, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ctx.app.nodes) or default


def run_events(
    ctx: Ctx, ids: Record, run: Record, body: list[Record], nodes: tuple[str, ...], outputs: Record
) -> list[Record]:
    """workflow_started, a node pair per node of the graph (the answer streams inside the
    first LLM node, or before the nodes when there is none, as Dify's answer streaming
    does), and the closing events (``message_end`` before ``workflow_finished``)."""
    now, inputs = ctx.now(), json.loads(run["inputs"])
    started = {"id": run["id"], "workflow_id": run["workflow_id"], "inputs": inputs}
    started |= {"created_at": now, "reason": "initial"}
    events: list[Record] = [{"event": "workflow_started", **ids, "data": started}]
    inside = next((n for n in nodes if n in STREAMING_NODES), None)
    events += [] if inside else body
    user_inputs = {k: v for k, v in inputs.items() if not k.startswith("sys.")}
    for kind in nodes:
        node: Record = {"id": ctx.id(), "node_id": kind, "node_type": kind}
        node |= {"title": TITLES.get(kind, kind.title()), "index": 1}
        node |= {"predecessor_node_id": None, "inputs": None, "inputs_truncated": False}
        node |= {"created_at": now, "extras": {}, "iteration_id": None, "loop_id": None}
        events.append({"event": "node_started", **ids, "data": node | {"agent_strategy": None}})
        events += body if kind == inside else []
        node_io = user_inputs if kind == "start" else (outputs if kind in ("end", "answer") else {})
        node |= {"inputs": node_io, "process_data": {}, "process_data_truncated": False}
        node |= {"outputs": node_io, "outputs_truncated": False, "status": "succeeded"}
        node |= {"error": None, "elapsed_time": 0.0, "execution_metadata": None}
        node |= {"finished_at": now, "files": []}
        events.append({"event": "node_finished", **ids, "data": node})
    finished = {k: run[k] for k in ("id", "workflow_id", "error", "total_steps", "created_at")}
    finished |= {"status": "succeeded", "outputs": outputs, "elapsed_time": 0.0}
    finished |= {"total_tokens": 0, "created_by": {"id": run["_end_user"]["id"]}}
    finished["created_by"]["user"] = run["_user"]
    finished |= {"finished_at": now, "exceptions_count": 0, "files": []}
    return [*events, {"event": "workflow_finished", **ids, "data": finished}]


def finish_run(ctx: Ctx, run: Record, task: Task, outputs: Record, spent: int) -> None:
    if task.stopped:
        run.update(status="stopped", outputs={}, error=STOPPED)
    else:
        run.update(status="succeeded", outputs=outputs)
    spent = 0 if task.stopped else spent
    run.update(finished_at=ctx.now(), total_tokens=spent)
    for event in task.events:
        if event["event"] == "workflow_finished":
            event["data"]["total_tokens"] = spent


def workflow_task(ctx: Ctx, inputs: dict[str, Any], user: str, outputs: Record, text: str) -> Task:
    """A workflow run whose answer ``text`` streams as text chunks."""
    tid, nodes = ctx.id(), graph(ctx, ("start", "end"))
    run = new_run(ctx, inputs, user, tid, len(nodes))
    ids = {"task_id": tid, "workflow_run_id": run["id"]}
    source = ["llm", "text"] if "llm" in nodes else ["start", next(iter(inputs), "text")]
    selector = {"from_variable_selector": source}
    body = [{"event": "text_chunk", **ids, "data": {"text": w, **selector}} for w in words(text)]
    events = run_events(ctx, ids, run, body, nodes, outputs)

    def settle(task: Task) -> None:
        finish_run(ctx, run, task, outputs, tokens(text))

    task = ctx.state.tasks[tid] = Task(tid, user, events, settle, run_id=run["id"])
    return task


def run_answer(ctx: Ctx, task: Task) -> Record:
    """The blocking answer of a workflow run."""
    run = ctx.state.runs[task.run_id or ""]
    data = {k: run[k] for k in ("id", "workflow_id", "status", "outputs", "error", "created_at")}
    data |= {k: run[k] for k in ("elapsed_time", "total_tokens", "total_steps", "finished_at")}
    return {"task_id": task.id, "workflow_run_id": run["id"], "data": data}


@handles("workflow.run", "workflow.run_by_id")
def run_workflow(ctx: Ctx) -> Any:
    require_mode(ctx, "workflow")
    p, st = ctx.p, ctx.state
    if "workflow_id" in p and p["workflow_id"] != st.workflow_id:
        raise not_found("Workflow not found.")
    inputs = p["inputs"]
    text = reply_text(ctx, " ".join(str(v) for v in inputs.values()), inputs)
    outputs = ctx.app.outputs(inputs) if ctx.app.outputs else {"text": text}
    task = workflow_task(ctx, inputs, p["user"], outputs, text)
    return streaming(ctx, task, lambda: run_answer(ctx, task))


@handles("workflow.get_run")
def get_run(ctx: Ctx) -> Any:
    run = ctx.state.runs.get(ctx.p["workflow_run_id"])
    if run is None:
        raise not_found("Workflow run not found.")
    return public(run)


@handles("workflow.list_logs")
def list_logs(ctx: Ctx) -> Any:
    p, logs = ctx.p, []
    for r in sorted(ctx.state.runs.values(), key=lambda r: r["_tick"], reverse=True):
        if p.get("status", r["status"]) != r["status"]:
            continue
        if p.get("keyword", "") not in r["inputs"] + json.dumps(r["outputs"]):
            continue
        summary = {k: r[k] for k in ("id", "status", "error", "elapsed_time", "total_tokens")}
        summary |= {k: r[k] for k in ("total_steps", "created_at", "finished_at")}
        summary |= {"version": "draft", "exceptions_count": 0, "triggered_from": "app-run"}
        user = {k: r["_end_user"][k] for k in ("id", "type", "is_anonymous", "session_id")}
        logs.append(
            {"id": r["_log"], "workflow_run": summary, "created_from": "service-api"}
            | {"created_by_role": "end_user", "created_by_account": None}
            | {"created_by_end_user": user, "created_at": r["created_at"], "details": None}
        )
    return page(logs, p)


@handles("workflow.stream_events")
def stream_events(ctx: Ctx) -> Reply:
    """Re-attach: the events not yet delivered, or just the closing one of a finished run."""
    run = ctx.state.runs.get(ctx.p["workflow_run_id"])
    if run is None or run["_user"] != ctx.p["user"]:
        raise not_found("Workflow run not found.")
    task = ctx.state.tasks[run["_task"]]
    if task.cursor == len(task.events):
        closing = [e for e in task.events if e["event"] == "workflow_finished"]
        return Reply(stream=True, prefix=closing[-1:])
    kinds = ("workflow_started", "node_started", "node_finished")
    snapshot = ctx.p.get("include_state_snapshot")
    prefix = [e for e in task.delivered() if e["event"] in kinds] if snapshot else []
    return Reply(stream=True, task=task, prefix=prefix)


@handles("chat.stop", "completion.stop", "workflow.stop")
def stop(ctx: Ctx) -> Any:
    task = ctx.state.tasks.get(ctx.p["task_id"])
    if task is not None and task.user == ctx.p["user"]:
        task.stop()
    return {"result": "success"}  # for unknown tasks too, as Dify does


@handles("workflow.get_human_input_form", "workflow.submit_human_input_form")
def human_input(ctx: Ctx) -> Any:
    raise not_found("Form not found.")  # emulated runs never pause for input


# --- messages ----------------------------------------------------------------------------


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
    body = [{"event": kind, "id": mid, **ids, "answer": w, **extra} for w in words(answer)]
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
        *events, closing = run_events(ctx, run_ids, run, body, nodes, outputs)
        events += [end, closing]
    elif kind == "agent_message":
        thought = {"event": "agent_thought", "id": ctx.id(), **ids, "position": 1, "thought": ""}
        events = [thought, *body, end]
    else:
        events = [*body, end]

    def settle(task: Task) -> None:
        text = "".join(
            e["answer"] for e in task.events if e["event"] == kind
        )  # a stop keeps one more
        spent = usage(message["query"], text)
        message.update(answer=text, answer_tokens=spent["completion_tokens"])
        message.update(total_tokens=spent["total_tokens"], total_price=spent["total_price"])
        if conv is not None:
            conv.update(updated_at=ctx.now(), _tick=st.touch())
        if run is not None:
            finish_run(ctx, run, task, {"answer": text, "files": []}, spent["total_tokens"])

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


def new_message(ctx: Ctx, query: str, inputs: dict[str, Any], conversation_id: str) -> Record:
    st, n = ctx.state, tokens(query)
    history = [m for m in st.messages.values() if m["conversation_id"] == conversation_id]
    message = (
        {"id": ctx.id(), "conversation_id": conversation_id}
        | {"parent_message_id": history[-1]["id"] if history else None}
        | {"inputs": inputs, "query": query, "answer": "", "status": "normal", "error": None}
        | {"message_files": [message_file(ctx, f) for f in ctx.p.get("files", ())]}
        | {"feedback": None, "retriever_resources": [], "agent_thoughts": []}
        | {"created_at": ctx.now(), "extra_contents": [], "message_tokens": n}
        | {"answer_tokens": 0, "total_tokens": n, "provider_response_latency": 0.0}
        | {"total_price": "0", "currency": "USD", "_user": ctx.p["user"]}
    )
    st.messages[message["id"]] = message
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
        | {"inputs": p["inputs"], "status": "normal", "introduction": ctx.app.opening_statement}
        | {"created_at": now, "updated_at": now, "_user": p["user"], "_seq": tick, "_tick": tick}
        | {"_vars": variables}
    )
    st.conversations[conv["id"]] = conv
    return conv


@handles("chat.send")
def send_chat(ctx: Ctx) -> Any:
    require_mode(ctx, "chat", "agent-chat", "advanced-chat")
    p, mode = ctx.p, ctx.app.mode or "chat"
    if mode == "agent-chat" and p.get("response_mode") != "streaming":
        raise invalid("Agent Chat App does not support blocking mode")
    end_user(ctx, p["user"])
    conv = conversation_of(ctx) if p.get("conversation_id") else new_conversation(ctx)
    answer = reply_text(ctx, p["query"], conv["inputs"], annotated=True)
    message = new_message(ctx, p["query"], conv["inputs"], conv["id"])
    task = message_task(ctx, message, answer, mode, conv)
    return streaming(ctx, task, lambda: blocking_answer(task, message, mode, conv["id"]))


def blocking_answer(task: Task, message: Record, mode: str, conversation_id: str | None) -> Record:
    meta = {"usage": usage(message["query"], message["answer"]), "retriever_resources": []}
    answer = {"event": "message", "task_id": task.id, "id": message["id"]}
    answer |= {"message_id": message["id"]}
    answer |= {"conversation_id": conversation_id} if conversation_id else {}
    answer |= {"mode": mode, "answer": message["answer"], "metadata": meta}
    return answer | {"created_at": message["created_at"]}


@handles("completion.send")
def send_completion(ctx: Ctx) -> Any:
    require_mode(ctx, "completion")
    p, inputs = ctx.p, ctx.p["inputs"]
    query = p.get("query") or str(inputs.get("query") or " ".join(map(str, inputs.values())))
    end_user(ctx, p["user"])
    answer = reply_text(ctx, query, inputs)
    message = new_message(ctx, query, inputs, ctx.id())  # in a conversation nobody lists
    task = message_task(ctx, message, answer, "completion", None)
    return streaming(ctx, task, lambda: blocking_answer(task, message, "completion", None))


@handles("chat.get_suggested")
def suggested(ctx: Ctx) -> Any:
    message_of(ctx, ctx.p["message_id"], ctx.p["user"])
    return {"result": "success", "data": list(ctx.app.follow_ups)}


# --- conversations -----------------------------------------------------------------------


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


# --- app-level: feedback, files, audio, info -------------------------------------------


@handles("dify.submit_feedback")
def submit_feedback(ctx: Ctx) -> Any:
    p, st = ctx.p, ctx.state
    message = message_of(ctx, p["message_id"], p["user"])
    if p.get("rating") is None:
        st.feedbacks.pop(message["id"], None)
        return {"result": "success"}
    iso = ctx.em.ids.iso()
    st.feedbacks[message["id"]] = (
        st.feedbacks.get(message["id"], {"id": ctx.id(), "created_at": iso})
        | {"app_id": st.app_id, "conversation_id": message["conversation_id"]}
        | {"message_id": message["id"], "rating": p["rating"], "content": p.get("content")}
        | {"from_source": "user", "from_end_user_id": end_user(ctx, p["user"])["id"]}
        | {"from_account_id": None, "updated_at": iso}
    )
    return {"result": "success"}


@handles("dify.list_feedbacks")
def list_feedbacks(ctx: Ctx) -> Any:
    return {"data": page(list(ctx.state.feedbacks.values())[::-1], ctx.p)["data"]}


@handles("dify.upload_file")
def upload_file(ctx: Ctx) -> Any:
    f = ctx.em.store(ctx.files["file"], end_user(ctx, ctx.p.get("user"))["id"])
    return Reply(
        201,
        {"id": f.id, "name": f.name, "size": len(f.content), "extension": f.extension}
        | {"mime_type": f.mime_type, "created_by": f.created_by, "created_at": f.created_at}
        | {"preview_url": None, "source_url": ctx.file_url(f), "original_url": None}
        | {"user_id": None, "tenant_id": ctx.em.tenant_id, "conversation_id": None}
        | {"file_key": f"upload_files/{ctx.em.tenant_id}/{f.id}.{f.extension}", "reference": None},
    )


def file_reply(f: StoredFile, attachment: bool) -> Reply:
    headers = {"content-disposition": f'attachment; filename="{f.name}"'} if attachment else {}
    return Reply(content=f.content, content_type=f.mime_type, headers=headers)


@handles("dify.preview_file")
def preview_file(ctx: Ctx) -> Any:
    f = ctx.em.files.get(ctx.p["file_id"])
    if f is None:
        raise not_found("File not found.")
    return file_reply(f, bool(ctx.p.get("as_attachment")))


_AUDIO = frozenset({"mp3", "mp4", "mpeg", "mpga", "m4a", "wav", "webm", "amr"})


@handles("dify.audio_to_text")
def audio_to_text(ctx: Ctx) -> Any:
    """The "transcript" of an upload is its bytes read as UTF-8 text (empty if they are not)."""
    up = ctx.files["file"]
    if up.name.rpartition(".")[2].lower() not in _AUDIO:
        raise ApiError(415, "unsupported_audio_type", "Audio type not allowed.")
    try:
        return {"text": up.content.decode("utf-8").strip()}
    except UnicodeDecodeError:
        return {"text": ""}


@handles("dify.text_to_audio")
def text_to_audio(ctx: Ctx) -> Any:
    """An MP3 header followed by the text: deterministic bytes a test can check."""
    if ctx.p.get("message_id"):
        text = message_of(ctx, ctx.p["message_id"], None)["answer"]
    elif ctx.p.get("text"):
        text = ctx.p["text"]
    else:
        raise invalid("Either message_id or text is required.")
    return Reply(
        content=b"ID3\x04\x00\x00\x00\x00\x00\x00" + text.encode(), content_type="audio/mpeg"
    )


@handles("dify.get_end_user")
def get_end_user(ctx: Ctx) -> Any:
    for user in ctx.state.end_users.values():
        if user["id"] == ctx.p["end_user_id"]:
            return user
    raise not_found("End user not found.")


@handles("dify.get_info")
def get_info(ctx: Ctx) -> Any:
    app = ctx.app
    info = {"name": app.name, "description": app.description, "tags": list(app.tags)}
    return info | {"mode": app.mode or "chat", "author_name": app.author_name}


@handles("dify.get_parameters")
def get_parameters(ctx: Ctx) -> Any:
    app, on, off = ctx.app, {"enabled": True}, {"enabled": False}
    image = {"enabled": True, "number_limits": 3, "transfer_methods": ["remote_url", "local_file"]}
    limits = {"file_size_limit": 15, "image_file_size_limit": 10, "audio_file_size_limit": 50}
    limits |= {"video_file_size_limit": 100, "workflow_file_upload_limit": 10}
    return (
        {"opening_statement": app.opening_statement}
        | {"suggested_questions": list(app.suggested_questions)}
        | {"suggested_questions_after_answer": on, "speech_to_text": on}
        | {"text_to_speech": on | {"voice": "alloy", "language": "en-US"}}
        | {"retriever_resource": on, "annotation_reply": {"enabled": ctx.state.annotation_reply}}
        | {"more_like_this": off, "sensitive_word_avoidance": off}
        | {"user_input_form": list(app.user_input_form), "file_upload": {"image": image}}
        | {"system_parameters": limits}
        | dict(app.parameters)
    )


@handles("dify.get_meta")
def get_meta(ctx: Ctx) -> Any:
    return {"tool_icons": {}}


@handles("dify.get_site")
def get_site(ctx: Ctx) -> Any:
    return (
        {"title": ctx.app.name, "chat_color_theme": "#1C64F2", "chat_color_theme_inverted": False}
        | {"icon_type": "emoji", "icon": "🤖", "icon_background": "#FFEAD5", "icon_url": None}
        | {"description": ctx.app.description, "copyright": "", "privacy_policy": ""}
        | {"input_placeholder": None, "custom_disclaimer": "", "default_language": "en-US"}
        | {"show_workflow_steps": True, "use_icon_as_answer_icon": False}
        | dict(ctx.app.site)
    )
