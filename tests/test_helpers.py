"""Pagination iterators, the indexing waiter, collected streaming and workflow resume."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import dify_oapi._waiters as waiters
from dify_oapi import (
    AsyncClient,
    Client,
    DifyError,
    InvalidArgumentsError,
    StreamInterruptedError,
    StreamState,
)
from dify_oapi import (
    WaiterFailedError as IndexingFailedError,
)
from dify_oapi import (
    WaiterTimeoutError as IndexingTimeoutError,
)
from dify_oapi.types import ChatResponse, ListDocumentsRequest, WorkflowRunResponse
from dify_oapi.types import events as ev

from .conftest import BASE, SSE_HEADERS, sse
from .httpx_mock import HTTPXMock, IteratorStream

DOCS = f"{BASE}/datasets/d5000000-0000-4000-8000-000000000001/documents"


def doc_page(ids: list[str], has_more: bool, page: int) -> dict[str, Any]:
    return {
        "data": [{"id": i, "name": f"{i}.txt"} for i in ids],
        "has_more": has_more,
        "limit": 2,
        "total": 5,
        "page": page,
    }


def add_doc_pages(httpx_mock: HTTPXMock, suffix: str = "") -> None:
    httpx_mock.add_response(url=f"{DOCS}?limit=2{suffix}", json=doc_page(["a", "b"], True, 1))
    httpx_mock.add_response(
        url=f"{DOCS}?limit=2&page=2{suffix}", json=doc_page(["c", "d"], True, 2)
    )
    httpx_mock.add_response(url=f"{DOCS}?limit=2&page=3{suffix}", json=doc_page(["e"], False, 3))


def test_page_iterator_reads_three_pages(client: Client, httpx_mock: HTTPXMock) -> None:
    add_doc_pages(httpx_mock)
    ids = [
        d.id
        for d in client.knowledge.iter_documents(
            dataset_id="d5000000-0000-4000-8000-000000000001", limit=2
        )
    ]
    assert ids == ["a", "b", "c", "d", "e"]
    assert [str(r.url) for r in httpx_mock.get_requests()] == [
        f"{DOCS}?limit=2",
        f"{DOCS}?page=2&limit=2",
        f"{DOCS}?page=3&limit=2",
    ]


def test_page_iterator_from_a_request_struct(client: Client, httpx_mock: HTTPXMock) -> None:
    add_doc_pages(httpx_mock, "&keyword=x")
    request = ListDocumentsRequest(
        dataset_id="d5000000-0000-4000-8000-000000000001", limit=2, keyword="x"
    )
    assert len(list(client.knowledge.iter_documents(request))) == 5


def test_iterator_stops_early_without_reading_more(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{DOCS}?limit=2", json=doc_page(["a", "b"], True, 1))
    iterator = client.knowledge.iter_documents(
        dataset_id="d5000000-0000-4000-8000-000000000001", limit=2
    )
    assert next(iterator).id == "a"
    assert len(httpx_mock.get_requests()) == 1


def test_total_pages_without_has_more(client: Client, httpx_mock: HTTPXMock) -> None:
    url = f"{BASE}/datasets/d0000000-0000-4000-8000-0000000000d1/documents/d0000000-0000-4000-8000-0000000000d2/segments/d0000000-0000-4000-8000-0000000000d3/child_chunks"
    httpx_mock.add_response(url=url, json={"data": [{"id": "1"}], "total_pages": 2, "page": 1})
    httpx_mock.add_response(
        url=f"{url}?page=2", json={"data": [{"id": "2"}], "total_pages": 2, "page": 2}
    )
    chunks = client.knowledge.iter_child_chunks(
        dataset_id="d0000000-0000-4000-8000-0000000000d1",
        document_id="d0000000-0000-4000-8000-0000000000d2",
        segment_id="d0000000-0000-4000-8000-0000000000d3",
    )
    assert [c.id for c in chunks] == ["1", "2"]


def test_cursor_first_id_for_message_history(client: Client, httpx_mock: HTTPXMock) -> None:
    url = f"{BASE}/messages?conversation_id=c0000000-0000-4000-8000-0000000000c1&user=u"
    httpx_mock.add_response(url=url, json={"data": [{"id": "m5"}, {"id": "m6"}], "has_more": True})
    httpx_mock.add_response(
        url=f"{url}&first_id=m5", json={"data": [{"id": "m3"}, {"id": "m4"}], "has_more": True}
    )
    httpx_mock.add_response(
        url=f"{url}&first_id=m3", json={"data": [{"id": "m2"}], "has_more": False}
    )
    ids = [
        m.id
        for m in client.chat.iter_messages(
            conversation_id="c0000000-0000-4000-8000-0000000000c1", user="u"
        )
    ]
    assert ids == ["m6", "m5", "m4", "m3", "m2"]  # newest first throughout


def test_cursor_last_id_for_conversations(client: Client, httpx_mock: HTTPXMock) -> None:
    url = f"{BASE}/conversations?user=u"
    httpx_mock.add_response(url=url, json={"data": [{"id": "c1"}, {"id": "c2"}], "has_more": True})
    httpx_mock.add_response(
        url=f"{url}&last_id=c2", json={"data": [{"id": "c3"}], "has_more": True}
    )
    httpx_mock.add_response(url=f"{url}&last_id=c3", json={"data": [], "has_more": True})
    assert [c.id for c in client.chat.iter_conversations(user="u")] == ["c1", "c2", "c3"]


def test_short_page_ends_lists_without_has_more(client: Client, httpx_mock: HTTPXMock) -> None:
    url = f"{BASE}/app/feedbacks?limit=2"
    httpx_mock.add_response(url=url, json={"data": [{"id": "f1"}, {"id": "f2"}]})
    httpx_mock.add_response(
        url=f"{BASE}/app/feedbacks?page=2&limit=2", json={"data": [{"id": "f3"}]}
    )
    assert [f.id for f in client.dify.iter_feedbacks(limit=2)] == ["f1", "f2", "f3"]
    assert len(httpx_mock.get_requests()) == 2


def test_iterator_refuses_stream_and_raw(client: Client) -> None:
    with pytest.raises(InvalidArgumentsError):
        list(client.knowledge.iter_documents(dataset_id="d", raw=True))


async def test_async_page_iterator(aclient: AsyncClient, httpx_mock: HTTPXMock) -> None:
    add_doc_pages(httpx_mock)
    ids = [
        d.id
        async for d in aclient.knowledge.iter_documents(
            dataset_id="d5000000-0000-4000-8000-000000000001", limit=2
        )
    ]
    assert ids == ["a", "b", "c", "d", "e"]


# -- waiter --------------------------------------------------------------------------

STATUS = f"{BASE}/datasets/d5000000-0000-4000-8000-000000000001/documents/batch-1/indexing-status"


def statuses(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "data": [
            {"id": i, "indexing_status": s, "error": "bad file" if s == "error" else None}
            for i, s in pairs
        ]
    }


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> list[float]:
    """Time advances only by the waits the waiter asks for."""
    monkeypatch.setattr(waiters, "_monotonic", lambda: sum(sleeps))
    return sleeps


def test_waiter_success(client: Client, httpx_mock: HTTPXMock, clock: list[float]) -> None:
    httpx_mock.add_response(url=STATUS, json=statuses(("d1", "waiting"), ("d2", "parsing")))
    httpx_mock.add_response(url=STATUS, json=statuses(("d1", "indexing"), ("d2", "completed")))
    httpx_mock.add_response(url=STATUS, json=statuses(("d1", "completed"), ("d2", "completed")))
    final = client.knowledge.wait_for_indexing(
        dataset_id="d5000000-0000-4000-8000-000000000001", batch="batch-1", poll_interval=3
    )
    assert [(s.id, s.indexing_status) for s in final] == [("d1", "completed"), ("d2", "completed")]
    assert clock == [3, 3]


def test_waiter_reports_failures(client: Client, httpx_mock: HTTPXMock, clock: list[float]) -> None:
    body = statuses(("d1", "completed"), ("d2", "error"))
    httpx_mock.add_response(url=STATUS, json=body)
    httpx_mock.add_response(url=STATUS, json=body)
    with pytest.raises(IndexingFailedError) as info:
        client.knowledge.wait_for_indexing(
            dataset_id="d5000000-0000-4000-8000-000000000001", batch="batch-1"
        )
    assert "d2: bad file" in str(info.value)
    assert [s.indexing_status for s in info.value.statuses] == ["completed", "error"]
    final = client.knowledge.wait_for_indexing(
        dataset_id="d5000000-0000-4000-8000-000000000001", batch="batch-1", raise_on_failure=False
    )
    assert final[1].error == "bad file"


def test_waiter_timeout(client: Client, httpx_mock: HTTPXMock, clock: list[float]) -> None:
    httpx_mock.add_response(url=STATUS, json=statuses(("d1", "indexing")), is_reusable=True)
    with pytest.raises(IndexingTimeoutError) as info:
        client.knowledge.wait_for_indexing(
            dataset_id="d5000000-0000-4000-8000-000000000001",
            batch="batch-1",
            timeout=10,
            poll_interval=4,
        )
    assert clock == [4, 4, 2]
    assert len(httpx_mock.get_requests()) == 4
    assert "still pending: ['d1']" in str(info.value) and isinstance(info.value, TimeoutError)


async def test_async_waiter(
    aclient: AsyncClient, httpx_mock: HTTPXMock, clock: list[float]
) -> None:
    httpx_mock.add_response(url=STATUS, json=statuses(("d1", "splitting")))
    httpx_mock.add_response(url=STATUS, json=statuses(("d1", "completed")))
    final = await aclient.knowledge.wait_for_indexing(
        dataset_id="d5000000-0000-4000-8000-000000000001", batch="batch-1", poll_interval=1
    )
    assert final[0].indexing_status == "completed" and clock == [1]


# -- collected streaming -------------------------------------------------------------

IDS = {"task_id": "t", "message_id": "m", "conversation_id": "c", "created_at": 5}


def test_collect_returns_the_blocking_shape(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/chat-messages",
        headers=SSE_HEADERS,
        content=sse(
            [
                "event: ping",
                {"event": "message", **IDS, "answer": "Hel"},
                {"event": "message", **IDS, "answer": "lo"},
                {"event": "message_end", **IDS, "metadata": {"usage": {"total_tokens": 9}}},
            ]
        ),
    )
    result = client.chat.send(query="q", user="u", collect=True)
    assert json.loads(httpx_mock.get_requests()[0].content)["response_mode"] == "streaming"
    assert isinstance(result, ChatResponse)
    assert (result.answer, result.task_id, result.conversation_id, result.message_id) == (
        "Hello",
        "t",
        "c",
        "m",
    )
    assert result.metadata is not None and result.metadata.usage is not None
    assert result.metadata.usage.total_tokens == 9


WF = {"task_id": "t", "workflow_run_id": "a0000000-0000-4000-8000-00000000000a"}
RUN = [
    {
        "event": "workflow_started",
        **WF,
        "data": {"id": "a0000000-0000-4000-8000-00000000000a", "workflow_id": "w"},
    },
    {"event": "node_started", **WF, "data": {"id": "n1", "node_id": "start", "index": 1}},
    {
        "event": "node_finished",
        **WF,
        "data": {"id": "n1", "node_id": "start", "status": "succeeded"},
    },
    {"event": "node_started", **WF, "data": {"id": "n2", "node_id": "llm", "index": 2}},
    {"event": "text_chunk", **WF, "data": {"text": "Bon"}},
    {"event": "text_chunk", **WF, "data": {"text": "jour"}},
    {"event": "node_finished", **WF, "data": {"id": "n2", "node_id": "llm", "status": "succeeded"}},
    {
        "event": "workflow_finished",
        **WF,
        "data": {
            "id": "a0000000-0000-4000-8000-00000000000a",
            "status": "succeeded",
            "outputs": {"text": "Bonjour"},
            "total_steps": 2,
        },
    },
]


def test_workflow_collect(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/workflows/run", headers=SSE_HEADERS, content=sse(RUN))
    result = client.workflow.run(inputs={"x": 1}, user="u", collect=True)
    assert isinstance(result, WorkflowRunResponse)
    assert (
        result.workflow_run_id == "a0000000-0000-4000-8000-00000000000a" and result.task_id == "t"
    )
    assert result.data is not None and result.data.outputs == {"text": "Bonjour"}


def test_collect_keeps_partial_state_on_failure(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/workflows/run", headers=SSE_HEADERS, content=sse(RUN[:5]))
    with pytest.raises(StreamInterruptedError) as info:
        client.workflow.run(user="u", collect=True)
    assert info.value.partial is not None
    assert (
        info.value.partial.workflow_run_id == "a0000000-0000-4000-8000-00000000000a"
        and info.value.partial.answer == "Bon"
    )


def test_collect_refused_where_nothing_streams(client: Client) -> None:
    with pytest.raises(InvalidArgumentsError, match="cannot collect"):
        client.dify.get_info(collect=True)


# -- resume --------------------------------------------------------------------------


def test_resume_after_a_cut_equals_an_uninterrupted_run(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/workflows/run", headers=SSE_HEADERS, stream=IteratorStream([sse(RUN[:5])])
    )
    # The events endpoint replays the node events of the running node, then continues.
    replay = [RUN[3], *RUN[5:]]
    httpx_mock.add_response(
        url=f"{BASE}/workflow/a0000000-0000-4000-8000-00000000000a/events?user=u-1&include_state_snapshot=true",
        headers=SSE_HEADERS,
        content=sse(["event: ping", *replay]),
    )
    stream = client.workflow.run(inputs={}, user="u-1", stream=True)
    first: list[Any] = []
    with pytest.raises(StreamInterruptedError):
        for event in stream:
            first.append(event)
    resumed = stream.resume()
    rest = list(resumed)
    assert first + rest == [msgspec.convert(e, ev.WorkflowEvent) for e in RUN]
    assert [type(e).__name__ for e in first + rest] == [
        "WorkflowStartedEvent",
        "NodeStartedEvent",
        "NodeFinishedEvent",
        "NodeStartedEvent",
        "TextChunkEvent",
        "TextChunkEvent",
        "NodeFinishedEvent",
        "WorkflowFinishedEvent",
    ]
    assert resumed.answer == "Bonjour" and len(resumed.state.events) == len(RUN)


def test_long_stream_keeps_recent_events_and_every_replay_key(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    chunks = [{"event": "text_chunk", **WF, "data": {"text": f"{i} "}} for i in range(300)]
    httpx_mock.add_response(
        url=f"{BASE}/workflows/run",
        headers=SSE_HEADERS,
        stream=IteratorStream([sse([*RUN[:4], *chunks])]),
    )
    # The re-attached run replays from the start: its node events left the window long ago.
    httpx_mock.add_response(
        url=f"{BASE}/workflow/a0000000-0000-4000-8000-00000000000a/events?user=u-1&include_state_snapshot=true",
        headers=SSE_HEADERS,
        content=sse([*RUN[:4], *RUN[6:]]),
    )
    stream = client.workflow.run(inputs={}, user="u-1", stream=True)
    with pytest.raises(StreamInterruptedError) as info:
        for _ in stream:
            pass
    partial = info.value.partial
    assert partial is not None and partial.count == 304
    assert len(partial.events) == StreamState.MAX_EVENTS == 256
    assert partial.events[0].data.text == "44 " and partial.events[-1].data.text == "299 "
    assert partial.answer == "".join(f"{i} " for i in range(300))
    resumed = stream.resume()
    assert [type(e).__name__ for e in resumed] == ["NodeFinishedEvent", "WorkflowFinishedEvent"]
    assert resumed.state.count == 306 and resumed.state.finished


def test_follow_resumes_transparently(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/workflows/run", headers=SSE_HEADERS, content=sse(RUN[:2]))
    httpx_mock.add_response(
        url=f"{BASE}/workflow/a0000000-0000-4000-8000-00000000000a/events?user=u&include_state_snapshot=true",
        headers=SSE_HEADERS,
        content=sse(RUN[1:5]),
    )
    # Node events are replayed after a re-attach; text chunks are not.
    httpx_mock.add_response(
        url=f"{BASE}/workflow/a0000000-0000-4000-8000-00000000000a/events?user=u&include_state_snapshot=true",
        headers=SSE_HEADERS,
        content=sse([RUN[3], *RUN[5:]]),
    )
    stream = client.workflow.run(user="u", stream=True)
    events = list(stream.follow(max_resumes=2))
    assert events == [msgspec.convert(e, ev.WorkflowEvent) for e in RUN]
    assert len(httpx_mock.get_requests()) == 3


def test_follow_gives_up_after_max_resumes(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/workflows/run", headers=SSE_HEADERS, content=sse(RUN[:2]))
    httpx_mock.add_response(
        url=f"{BASE}/workflow/a0000000-0000-4000-8000-00000000000a/events?user=u&include_state_snapshot=true",
        headers=SSE_HEADERS,
        content=sse(RUN[2:3]),
    )
    stream = client.workflow.run(user="u", stream=True)
    with pytest.raises(StreamInterruptedError) as info:
        list(stream.follow(max_resumes=1))
    assert info.value.partial is not None and len(info.value.partial.events) == 3


def test_collect_after_resume_builds_the_original_blocking_shape(
    client: Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{BASE}/workflows/run", headers=SSE_HEADERS, content=sse(RUN[:3]))
    httpx_mock.add_response(
        url=f"{BASE}/workflow/a0000000-0000-4000-8000-00000000000a/events?user=u&include_state_snapshot=true",
        headers=SSE_HEADERS,
        content=sse(RUN[3:]),
    )
    stream = client.workflow.run(user="u", stream=True)
    with pytest.raises(StreamInterruptedError):
        stream.collect()
    result = stream.resume().collect()
    assert isinstance(result, WorkflowRunResponse)
    assert result.data is not None and result.data.outputs == {"text": "Bonjour"}


def test_resume_needs_a_run_id(client: Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/chat-messages",
        headers=SSE_HEADERS,
        content=sse([{"event": "message", **IDS, "answer": "x"}]),
    )
    stream = client.chat.send(query="q", user="u", stream=True)
    with pytest.raises(StreamInterruptedError):
        list(stream)
    # A chat stream re-attaches only once it carries a run id (a chatflow app's does).
    with pytest.raises(DifyError, match="no workflow_run_id received yet; cannot resume"):
        stream.resume()


async def test_async_resume_and_collect(aclient: AsyncClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/workflows/run", headers=SSE_HEADERS, content=sse(RUN[:4]))
    httpx_mock.add_response(
        url=f"{BASE}/workflow/a0000000-0000-4000-8000-00000000000a/events?user=u&include_state_snapshot=true",
        headers=SSE_HEADERS,
        content=sse(RUN[2:]),
    )
    stream = await aclient.workflow.run(user="u", stream=True)
    got = []
    with pytest.raises(StreamInterruptedError):
        async for event in stream:
            got.append(event)
    resumed = await stream.resume()
    got += [event async for event in resumed]
    assert got == [msgspec.convert(e, ev.WorkflowEvent) for e in RUN]
