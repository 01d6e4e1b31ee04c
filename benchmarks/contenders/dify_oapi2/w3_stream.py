"""W3: ``stream=True`` yields raw byte chunks; the user's framing + json.loads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import payloads as p
from dify_oapi.api.chat.v1.model.chat_request import ChatRequest
from dify_oapi.api.chat.v1.model.chat_request_body import ChatRequestBody
from dify_oapi.api.workflow.v1.model.run_workflow_request import RunWorkflowRequest
from dify_oapi.api.workflow.v1.model.run_workflow_request_body import RunWorkflowRequestBody
from dify_oapi.api.workflow.v1.model.workflow_inputs import WorkflowInputs
from harness import final_ok, stream_runs, time_stream

from contenders import _mock_httpx as mock

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    sizes = p.Sizes.from_dict(params["sizes"])
    case = params["case"]
    frames = p.chat_stream(sizes) if case == "chat" else p.workflow_stream(sizes)
    recorder = mock.Recorder()
    if params["mode"] == "inproc":
        client = c.client(mock.stream_transport(frames, recorder))
    else:
        client = c.client(domain=c.domain_of(params["base_url"]))
    option = c.option()

    def events() -> Iterator[Any]:
        if case == "chat":
            body = (
                ChatRequestBody.builder()
                .query(p.QUERY)
                .user(p.USER)
                .inputs({})
                .response_mode("streaming")
                .build()
            )
            request = ChatRequest.builder().request_body(body).build()
            chunks = client.chat.v1.chat.chat(request=request, request_option=option, stream=True)
        else:
            inputs = WorkflowInputs.builder().inputs({"query": p.QUERY}).build()
            wbody = (
                RunWorkflowRequestBody.builder()
                .inputs(inputs)
                .user(p.USER)
                .response_mode("streaming")
                .build()
            )
            wrequest = RunWorkflowRequest.builder().request_body(wbody).build()
            chunks = client.workflow.v1.workflow.run(
                request=wrequest, request_option=option, stream=True
            )
        yield from c.events(chunks)

    result = stream_runs(
        lambda: time_stream(events, final_ok(case)),
        params["runs"],
        p.stream_event_count(frames),
        params["mode"] == "inproc",
    )
    if params["mode"] == "inproc":
        path = "/v1/chat-messages" if case == "chat" else "/v1/workflows/run"
        recorder.verify("POST", path, body={"user": p.USER, "response_mode": "streaming"})
    return result
