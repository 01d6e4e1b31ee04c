"""Workflow runs: their events (the graph the app declares), detail, logs, re-attach, stop."""

from __future__ import annotations

import json
from typing import Any

from ._base import (
    Ctx,
    Reply,
    end_user,
    handles,
    invalid,
    is_uuid,
    not_found,
    page,
    reply_text,
    require_mode,
    require_user,
    server_error,
    streaming,
    tokens,
    words,
)
from ._inputs import check_inputs
from ._nodes import TITLES, report
from ._state import STOPPED, Record, Task, public


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


#: Where the answer streams: inside the first node of these types, else before any node.
STREAMING_NODES = ("llm",)
#: A workflow streams text only from these nodes (an End node's outputs stream at once).
TEXT_NODES = ("llm", "end")


def graph(ctx: Ctx, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ctx.app.nodes) or default


def failure_at(ctx: Ctx, nodes: tuple[str, ...]) -> tuple[str | None, int | None]:
    """The node that fails (if any) and how many answer pieces stream before it does."""
    app = ctx.app
    if app.failing_node in nodes:
        return app.failing_node, None
    if app.fail_after is not None and "llm" in nodes:
        return "llm", app.fail_after
    return None, None


def run_events(
    ctx: Ctx,
    ids: Record,
    run: Record,
    body: list[Record],
    nodes: tuple[str, ...],
    outputs: Record,
    failing: str | None = None,
    error: str | None = None,
    answer: str = "",
) -> list[Record]:
    """workflow_started, a node pair per node of the graph (the answer streams inside the
    first LLM node, or before the nodes when there is none, as Dify's answer streaming
    does), and the closing events (``message_end`` before ``workflow_finished``). With
    ``failing`` the run stops at that node: it finishes ``failed``, and so does the run.
    ``answer`` is the LLM node's text."""
    now, inputs = ctx.now(), json.loads(run["inputs"])
    started = {"id": run["id"], "workflow_id": run["workflow_id"], "inputs": inputs}
    started |= {"created_at": now, "reason": "initial"}
    events: list[Record] = [{"event": "workflow_started", **ids, "data": started}]
    inside = next((n for n in nodes if n in STREAMING_NODES), None)
    events += [] if inside else body
    user_inputs = {k: v for k, v in inputs.items() if not k.startswith("sys.")}
    error = (error or ctx.app.failure) if failing else None
    prompt = inputs.get("sys.query") or " ".join(str(v) for v in user_inputs.values())
    for kind in nodes:
        node: Record = {"id": ctx.id(), "node_id": kind, "node_type": kind}
        node |= {"title": TITLES.get(kind, kind.title()), "index": 1}
        node |= {"predecessor_node_id": None, "inputs": None, "inputs_truncated": False}
        node["created_at"] = now
        loose = {"iteration_id": None, "loop_id": None}
        started = node | {"extras": {}} | loose | {"agent_strategy": None}
        events.append({"event": "node_started", **ids, "data": started})
        events += body if kind == inside else []
        failed = kind == failing
        node |= report(ctx.app, kind, failed, user_inputs, outputs, prompt, answer)
        node |= {"process_data_truncated": False, "outputs_truncated": False}
        node |= {"status": "failed" if failed else "succeeded", "error": error if failed else None}
        node["elapsed_time"] = 0.0
        node |= {"finished_at": now, "files": []} | loose
        events.append({"event": "node_finished", **ids, "data": node})
        if failed:
            break
    finished = {k: run[k] for k in ("id", "workflow_id", "total_steps", "created_at")}
    finished |= {"status": "failed" if failing else "succeeded", "error": error}
    finished |= {"outputs": {} if failing else outputs, "elapsed_time": 0.0}
    finished |= {"total_tokens": 0, "created_by": {"id": run["_end_user"]["id"]}}
    finished["created_by"]["user"] = run["_user"]
    finished |= {"finished_at": now, "exceptions_count": 1 if failing else 0, "files": []}
    if failing:
        run["_failed"] = error
    return [*events, {"event": "workflow_finished", **ids, "data": finished}]


def finish_run(ctx: Ctx, run: Record, task: Task, outputs: Record, spent: int) -> None:
    if task.stopped:
        run.update(status="stopped", outputs={}, error=STOPPED)
    elif run.get("_failed"):
        run.update(status="failed", outputs={}, error=run["_failed"])
    else:
        run.update(status="succeeded", outputs=outputs)
    spent = 0 if task.stopped else spent
    run.update(finished_at=ctx.now(), total_tokens=spent)
    for event in task.events:
        if event["event"] == "workflow_finished":
            event["data"]["total_tokens"] = spent


def workflow_task(
    ctx: Ctx,
    inputs: dict[str, Any],
    user: str,
    outputs: Record,
    text: str,
    broken: str | None = None,
) -> Task:
    """A workflow run whose answer ``text`` streams as text chunks; ``broken``: the error
    of the app's own code, failing the last node."""
    tid, nodes = ctx.id(), graph(ctx, ("start", "end"))
    run = new_run(ctx, inputs, user, tid, len(nodes))
    ids = {"task_id": tid, "workflow_run_id": run["id"]}
    source = ["llm", "text"] if "llm" in nodes else ["start", next(iter(inputs), "text")]
    selector = {"from_variable_selector": source}
    failing, shown = failure_at(ctx, nodes)
    failing = nodes[-1] if broken else failing
    pieces = words(text)[:shown] if shown is not None else words(text)
    pieces = pieces if any(n in TEXT_NODES for n in nodes) else []
    body = [{"event": "text_chunk", **ids, "data": {"text": w, **selector}} for w in pieces]
    events = run_events(ctx, ids, run, body, nodes, outputs, failing, broken, text)

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
    require_user(ctx)
    if "workflow_id" in p and not is_uuid(p["workflow_id"]):
        raise invalid(f"Invalid workflow_id format: {p['workflow_id']!r}. ", "bad_request")
    if "workflow_id" in p and p["workflow_id"] != st.workflow_id:
        raise not_found("Workflow not found.")
    inputs = p["inputs"]
    check_inputs(ctx.app.user_input_form, inputs)
    broken = None
    try:
        text = reply_text(ctx, " ".join(str(v) for v in inputs.values()), inputs)
        outputs = ctx.app.outputs(inputs) if ctx.app.outputs else {"text": text}
    except Exception as exc:
        text, outputs, broken = "", {}, str(exc) or type(exc).__name__
    task = workflow_task(ctx, inputs, p["user"], outputs, text, broken)
    return streaming(ctx, task, lambda: run_answer(ctx, task))


@handles("workflow.get_run")
def get_run(ctx: Ctx) -> Any:
    if not is_uuid(ctx.p["workflow_run_id"]):
        raise server_error()  # Dify's database refuses the id: an unhandled error
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
        # A finished run: its closing event alone, with no ping, as Dify re-sends it.
        return Reply(stream=True, prefix=closing[-1:], ping=False)
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
