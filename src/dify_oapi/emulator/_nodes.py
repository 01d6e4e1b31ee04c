"""What each node type of a graph reports when it finishes, as Dify 1.14.2's nodes do."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ._base import usage
from ._definition import AppDefinition
from ._state import Record

__all__ = ["TITLES", "report"]

TITLES = {"start": "Start", "llm": "LLM", "answer": "Answer", "end": "End", "http-request": "HTTP"}


def report(
    app: AppDefinition,
    kind: str,
    failed: bool,
    user_inputs: Record,
    outputs: Record,
    prompt: str,
    answer: str,
) -> Record:
    """A finished node's ``inputs``, ``process_data``, ``outputs`` and
    ``execution_metadata``. A failed node keeps what it knew before it ran (an LLM its
    model, an HTTP node its request) and reports no outputs."""
    sent: Record = {}
    done: Record = {"process_data": {}, "outputs": {}, "execution_metadata": None}
    if kind == "start":  # the user inputs, both ways
        sent = done["outputs"] = user_inputs
    elif kind == "end":  # its outputs, both ways
        sent = done["outputs"] = outputs
    elif kind == "answer":  # no inputs
        done["outputs"] = outputs
    elif kind == "llm":
        sent = {"model_provider": app.model_provider, "model_name": app.model_name}
        done |= _llm(app, sent, prompt, answer)
    elif kind == "http-request":
        done |= _http(app.http_url)
    if failed:
        done |= {"outputs": {}}
        done["execution_metadata"] = None
        done["process_data"] = {} if kind == "llm" else done["process_data"]
    return {"inputs": sent} | done


def _llm(app: AppDefinition, model: Record, prompt: str, answer: str) -> Record:
    spent = usage(prompt, answer) | {"time_to_first_token": 0.0, "time_to_generate": 0.0}
    system = [{"role": "system", "text": app.system_prompt}] if app.system_prompt else []
    prompts: list[Record] = [m | {"files": []} for m in [*system, {"role": "user", "text": prompt}]]
    process: Record = {"model_mode": "chat", "prompts": prompts, "usage": spent}
    process |= {"finish_reason": "stop"} | model
    outputs = {"text": answer, "reasoning_content": "", "usage": spent, "finish_reason": "stop"}
    cost = {k: spent[k] for k in ("total_tokens", "total_price", "currency")}
    return {"process_data": process, "outputs": outputs, "execution_metadata": cost}


def _http(url: str) -> dict[str, Any]:
    """The request as Dify's HTTP node shows it, and an empty 200 answer."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n"
    headers = {"content-type": "text/plain", "content-length": "0"}
    answered = {"status_code": 200, "body": "", "headers": headers, "files": []}
    return {"process_data": {"request": request}, "outputs": answered}
