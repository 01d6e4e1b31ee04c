"""The published dify-oapi2 1.x on PyPI (pydantic, builders), in its own virtual environment.

Its clients come from a process-wide pool keyed by domain and accept no transport, so the
in-process workloads hand that pool an ``httpx.Client`` on ``httpx.MockTransport``. Its
streams yield raw byte chunks: the SSE framing and json.loads its user writes are included.
dify-oapi2 takes the host as its domain and puts ``/v1`` in every path itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .base import Adapter, Wire


def _chat_request(user: str, mode: str) -> Any:
    import payloads as p
    from dify_oapi.api.chat.v1.model.chat_request import ChatRequest
    from dify_oapi.api.chat.v1.model.chat_request_body import ChatRequestBody

    body = (
        ChatRequestBody.builder().query(p.QUERY).user(user).inputs({}).response_mode(mode).build()
    )
    return ChatRequest.builder().request_body(body).build()


def _workflow_request(user: str) -> Any:
    import payloads as p
    from dify_oapi.api.workflow.v1.model.run_workflow_request import RunWorkflowRequest
    from dify_oapi.api.workflow.v1.model.run_workflow_request_body import RunWorkflowRequestBody
    from dify_oapi.api.workflow.v1.model.workflow_inputs import WorkflowInputs

    inputs = WorkflowInputs.builder().inputs({"query": p.QUERY}).build()
    body = RunWorkflowRequestBody.builder().inputs(inputs).user(user).response_mode("streaming")
    return RunWorkflowRequest.builder().request_body(body.build()).build()


class DifyOapi2(Adapter):
    def w1(self) -> Any:
        from dify_oapi.api.chat.v1.model.chat_request import ChatRequest
        from dify_oapi.api.chat.v1.model.chat_request_body import ChatRequestBody
        from dify_oapi.client import Client
        from dify_oapi.core.model.request_option import RequestOption

        client = Client.builder().domain("https://api.dify.ai").build()
        option = RequestOption.builder().api_key("app-KEY").build()
        return client, option, ChatRequest, ChatRequestBody

    def client(self, wire: Wire) -> Any:
        import httpx
        import payloads as p
        from dify_oapi.client import Client
        from dify_oapi.core.http.transport.connection_pool import connection_pool
        from dify_oapi.core.model.request_option import RequestOption

        from . import mock_httpx

        builder = Client.builder().domain(wire.url.removesuffix("/v1")).max_retry_count(2)
        if wire.timeout is not None:
            builder = builder.timeout(wire.timeout)
        if n := wire.connections:
            builder = builder.max_connections(n).max_keepalive_connections(n)
        if (transport := mock_httpx.transport(wire)) is not None:
            injected = httpx.Client(transport=transport)
            connection_pool.get_sync_client = lambda *args, **kwargs: injected  # type: ignore[method-assign]
        client = builder.build()
        client.bench_option = RequestOption.builder().api_key(p.API_KEY).build()
        return client

    async def aclient(self, wire: Wire) -> Any:
        from .base import unavailable

        if wire.inproc:
            raise unavailable("async contenders run over the loopback socket only")
        return self.client(wire)

    def chat(self, client: Any, user: str) -> Callable[[], Any]:
        chat, option = client.chat.v1.chat, client.bench_option
        return lambda: chat.chat(request=_chat_request(user, "blocking"), request_option=option)

    def achat(self, client: Any, user: str) -> Callable[[], Any]:
        chat, option = client.chat.v1.chat, client.bench_option

        async def call() -> Any:
            return await chat.achat(request=_chat_request(user, "blocking"), request_option=option)

        return call

    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        import json

        from . import sse

        option = client.bench_option
        if case == "chat":
            request = _chat_request(user, "streaming")
            chunks = client.chat.v1.chat.chat(request=request, request_option=option, stream=True)
        else:
            chunks = client.workflow.v1.workflow.run(
                request=_workflow_request(user), request_option=option, stream=True
            )
        yield from sse.events(chunks, json.loads)

    async def astream(self, client: Any, case: str, user: str) -> AsyncIterator[Any]:
        import json

        from . import sse

        option = client.bench_option
        if case == "chat":
            request = _chat_request(user, "streaming")
            chunks = await client.chat.v1.chat.achat(
                request=request, request_option=option, stream=True
            )
        else:
            chunks = await client.workflow.v1.workflow.arun(
                request=_workflow_request(user), request_option=option, stream=True
            )
        async for event in sse.aevents(chunks, json.loads):
            yield event

    def lists(self, client: Any, kind: str, n: int) -> Callable[[], Any]:
        import payloads as p
        import pydantic
        from dify_oapi.api.chat.v1.model.message_history_request import GetMessageHistoryRequest
        from dify_oapi.api.knowledge.v1.model.list_documents_request import ListDocumentsRequest

        from .base import unavailable

        option = client.bench_option
        if kind == "documents":
            documents = client.knowledge.v1.document

            def call() -> Any:
                request = (
                    ListDocumentsRequest.builder().dataset_id(p.DATASET_ID).page(1).limit(n).build()
                )
                return documents.list(request, option)
        else:
            messages = client.chat.v1.message

            def call() -> Any:
                request = (
                    GetMessageHistoryRequest.builder()
                    .conversation_id(p.CONVERSATION_ID)
                    .user(p.USER)
                    .limit(n)
                    .build()
                )
                return messages.history(request, option)

        try:
            call()
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(x) for x in error["loc"] if not isinstance(x, int))
            raise unavailable(f"fails on the spec's payload: {where}: {error['msg']}") from None
        return call

    def download(self, client: Any, user: str, path: str) -> int:
        import payloads as p
        from dify_oapi.api.dify.v1.model.text_to_audio_request import TextToAudioRequest
        from dify_oapi.api.dify.v1.model.text_to_audio_request_body import TextToAudioRequestBody

        body = TextToAudioRequestBody.builder().text(p.QUERY).user(user).build()
        request = TextToAudioRequest.builder().request_body(body).build()
        response = client.dify.v1.audio.from_text(request, client.bench_option)
        content: bytes = response.raw.content  # the whole answer, in memory
        with open(path, "wb") as f:
            f.write(content)
        return len(content)


ADAPTER = DifyOapi2
