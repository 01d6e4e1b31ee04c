"""Errors, results and events cross process boundaries, without the key (issue 12, items 1
and 2). Every error is made by a real call on a socket of the test's own server, by every
client kind; the pools are real ``ProcessPoolExecutor`` and ``multiprocessing.Pool``."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx
import pytest

import dify_oapi
from dify_oapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    BatchResult,
    Client,
    ClientClosedError,
    ConfigurationError,
    DifyError,
    InvalidArgumentsError,
    LoopMismatchError,
    RawResponse,
    RequestValidationError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamInterruptedError,
)
from dify_oapi._exceptions import _STATUS_ERRORS, InternalServerError, status_error_class
from dify_oapi._waiters import WaiterFailedError, WaiterTimeoutError

from ..faults.conftest import IDS, KEY
from ..faults.kit import Kit, kinds
from ..faults.server import Exchange, FaultServer, closed_port, frames, respond, sse, stall

INFO = "/v1/info"
CHAT = "/v1/chat-messages"
STATUSES = [*sorted(_STATUS_ERRORS), 418, 500, 503]
FORK = multiprocessing.get_context("fork")
WAIT = 10.0  # the longest a pool may take to give an answer back
# The test server runs on threads of this process; the workers never touch them.
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def _echo_key(ex: Exchange) -> None:
    """An error whose body and headers hold the caller's Authorization header, verbatim."""
    status = int(ex.request.header("x-want") or "400")
    auth = ex.request.header("authorization") or ""
    body = {"code": f"code_{status}", "message": f"rejected {auth}", "status": status}
    headers = {"X-Request-Id": f"req-{status}", "X-Echo": auth}
    respond(status, json=body, headers=headers)(ex)


def _echo_ok(ex: Exchange) -> None:
    auth = ex.request.header("authorization") or ""
    respond(json={"name": auth, "description": "d"}, headers={"X-Echo": auth})(ex)


def _same_fields(a: BaseException, b: BaseException) -> None:
    assert type(a) is type(b)
    assert a.args == b.args and str(a) == str(b)
    for name, value in vars(a).items():
        if name in getattr(a, "_local", ()):
            assert getattr(b, name) is None  # live HTTP objects stay behind
        elif name == "partial":
            assert (value is None) == (b.partial is None)  # type: ignore[attr-defined]
        else:
            assert getattr(b, name) == value, name


def _roundtrip(error: BaseException) -> BaseException:
    data = pickle.dumps(error)
    assert KEY.encode() not in data
    back = pickle.loads(data)
    _same_fields(error, back)
    return back  # type: ignore[no-any-return]


def _fail(kit: Kit, op: str, **kwargs: Any) -> DifyError:
    with pytest.raises(DifyError) as info:
        result = kit.call(op, **kwargs)
        if kwargs.get("stream"):
            kit.all_events(result)
    return info.value


# -- in one process, every client kind ------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_every_status_error_pickles_with_its_class_fields_and_no_key(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    server.route("GET", INFO, _echo_key)
    kit = make_kit(kind, max_retries=0)
    for status in STATUSES:
        error = _fail(kit, "dify.get_info", extra_headers={"X-Want": str(status)})
        assert type(error) is status_error_class(status)
        assert isinstance(error, APIStatusError) and error.response is not None
        back = _roundtrip(error)
        assert isinstance(back, APIStatusError)
        assert (back.status_code, back.code, back.request_id) == (
            status,
            f"code_{status}",
            f"req-{status}",
        )
        assert back.headers["x-request-id"] == f"req-{status}"
    assert {type(_fail(kit, "dify.get_info", extra_headers={"X-Want": "502"}))} == {
        InternalServerError
    }


@pytest.mark.parametrize("kind", kinds())
def test_a_stream_interruption_pickles_with_what_arrived(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    first = {"event": "message", **IDS, "answer": "Hel"}
    # a pause: the frame arrives on its own, before the connection is cut
    server.route("POST", CHAT, sse(frames([first]), end="close", pause=0.1))
    error = _fail(make_kit(kind), "chat.send", query="q", user="u", stream=True)
    assert isinstance(error, StreamInterruptedError) and error.partial is not None
    back = _roundtrip(error)
    assert isinstance(back, StreamInterruptedError) and back.partial is not None
    assert back.partial.answer == "Hel"
    assert back.partial.ids["task_id"] == "t-1" and back.partial.ids["message_id"] == "m-1"
    assert [type(e).__name__ for e in back.partial.events] == ["MessageEvent"]


@pytest.mark.parametrize("kind", kinds())
def test_decode_timeout_and_connection_errors_pickle(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    server.route("GET", INFO, respond(body=b"{not json", content_type="application/json"))
    kit = make_kit(kind, max_retries=0, timeout=httpx.Timeout(0.3, connect=0.5))
    decode = _fail(kit, "dify.get_info")
    assert isinstance(decode, ResponseDecodeError)
    back = _roundtrip(decode)
    assert back.status_code == 200 and back.body == b"{not json"  # type: ignore[attr-defined]

    server.route("GET", INFO, stall(2.0))
    assert isinstance(_roundtrip(_fail(kit, "dify.get_info")), APITimeoutError)

    refused = make_kit(kind, max_retries=0, base_url=f"http://127.0.0.1:{closed_port()}/v1")
    error = _fail(refused, "dify.get_info")
    assert type(error) is APIConnectionError
    assert type(_roundtrip(error)) is APIConnectionError


@pytest.mark.parametrize("kind", kinds())
def test_errors_raised_before_sending_pickle(server: FaultServer, make_kit: Any, kind: str) -> None:
    kit = make_kit(kind)
    invalid = _fail(kit, "chat.send", query=5, user="u")
    assert isinstance(invalid, RequestValidationError)
    back = _roundtrip(invalid)
    assert (back.operation, back.field) == (invalid.operation, invalid.field)  # type: ignore[attr-defined]
    assert isinstance(
        _roundtrip(_fail(kit, "chat.send", query="q", user="u", nope=1)), InvalidArgumentsError
    )
    assert server.requests == []


def test_errors_without_a_socket_pickle_too() -> None:
    from dify_oapi.types.chat import ChatResponse

    last = ChatResponse(answer="a", message_id="m")
    made: list[BaseException] = [
        ConfigurationError("verify: cannot load CA bundle 'x.pem'"),
        ClientClosedError("chat.send: the client is closed"),
        LoopMismatchError("bound to another loop"),
        ResponseTooLargeError("too big", operation="dify.get_info"),
        WaiterFailedError("failed", waiter="w", last=last, items=[last]),
        WaiterTimeoutError("timed out", waiter="w", last=last, items=[last]),
    ]
    for error in made:
        back = _roundtrip(error)
        assert getattr(back, "last", last) == last
    # every public error class is one this module makes and checks
    public = {
        obj
        for obj in vars(dify_oapi).values()
        if isinstance(obj, type) and issubclass(obj, DifyError)
    }
    covered = {
        *map(status_error_class, STATUSES),
        APIStatusError,
        StreamInterruptedError,
        ResponseDecodeError,
        APITimeoutError,
        APIConnectionError,
        RequestValidationError,
        InvalidArgumentsError,
        *map(type, made),
        DifyError,
        dify_oapi.APIError,
        dify_oapi.EndpointTableError,
    }
    assert public - covered == set()


@pytest.mark.parametrize("kind", kinds())
def test_results_events_and_raw_responses_pickle_without_the_key(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    server.route("GET", INFO, _echo_ok)
    events = [
        {"event": "message", **IDS, "answer": "Hel"},
        {"event": "message_end", **IDS, "id": "m-1"},
    ]
    server.route("POST", CHAT, sse(frames(events)))
    kit = make_kit(kind)
    raw = kit.call("dify.get_info", raw=True)
    assert isinstance(raw, RawResponse) and KEY in raw.data.name  # the server echoed it
    data = pickle.dumps(raw, protocol=pickle.HIGHEST_PROTOCOL)
    # what the server sent back is the caller's data; the request's own headers are not
    assert data.count(KEY.encode()) == 2 and b"authorization" not in data.lower()
    back = pickle.loads(data)
    assert (back.status_code, back.data, back.http_response) == (200, raw.data, None)
    assert back.headers["x-echo"] == raw.headers["x-echo"]

    got = kit.all_events(kit.call("chat.send", query="q", user="u", stream=True))
    assert pickle.loads(pickle.dumps(got)) == got
    assert [type(e).__name__ for e in pickle.loads(pickle.dumps(got))] == [
        "MessageEvent",
        "MessageEndEvent",
    ]


# -- through real process pools ----------------------------------------------------------------


def _call_in_worker(base_url: str, status: int, backend: str) -> Any:
    """One call in a pool worker: its value, or its error raised."""
    options: dict[str, Any] = {"api_key": KEY, "base_url": base_url, "max_retries": 0}
    headers = {"X-Want": str(status)}
    if backend == "sync":
        with Client(**options) as client:
            return client.dify.get_info(extra_headers=headers)

    async def run() -> Any:
        extra = {"backend": "aiohttp"} if backend == "aiohttp" else {}
        async with AsyncClient(**options, **extra) as client:
            return await client.dify.get_info(extra_headers=headers)

    return asyncio.run(run())


def _batch_in_worker(base_url: str, statuses: list[int]) -> Any:
    with Client(api_key=KEY, base_url=base_url, max_retries=0) as client:
        items = [{"extra_headers": {"X-Want": str(s)}} for s in statuses]
        return client.batch("dify.get_info", items, concurrency=2)


def _route_by_want(server: FaultServer) -> None:
    def handler(ex: Exchange) -> None:
        if ex.request.header("x-want") == "200":
            respond(json={"name": "ok"})(ex)
        else:
            _echo_key(ex)

    server.route("GET", INFO, handler)


@pytest.mark.parametrize("kind", kinds())
def test_a_failed_item_comes_back_through_a_process_pool_executor(
    server: FaultServer, kind: str
) -> None:
    _route_by_want(server)
    with ProcessPoolExecutor(2, mp_context=FORK) as pool:
        futures = [pool.submit(_call_in_worker, server.base_url, s, kind) for s in (200, 404, 200)]
        ok, failed, again = (f.exception(timeout=WAIT) or f.result() for f in futures)
    assert ok.name == "ok" and again.name == "ok"
    assert type(failed) is dify_oapi.NotFoundError
    assert (failed.status_code, failed.code, failed.request_id) == (404, "code_404", "req-404")
    assert KEY not in str(failed) and KEY not in repr(failed.headers)
    assert len(server.requests_to(INFO)) == 3


@pytest.mark.parametrize("kind", kinds())
def test_multiprocessing_pool_map_returns_with_the_error(server: FaultServer, kind: str) -> None:
    _route_by_want(server)
    with FORK.Pool(2) as pool:
        pending = pool.starmap_async(
            _call_in_worker, [(server.base_url, s, kind) for s in (200, 429)]
        )
        with pytest.raises(dify_oapi.RateLimitError) as info:
            pending.get(timeout=WAIT)
    assert info.value.status_code == 429 and info.value.code == "code_429"


def test_batch_results_come_back_through_pool_map(server: FaultServer) -> None:
    _route_by_want(server)
    with FORK.Pool(2) as pool:
        done = pool.starmap_async(
            _batch_in_worker, [(server.base_url, [200, 400]), (server.base_url, [500, 200])]
        ).get(timeout=WAIT)
    results = [r for batch in done for r in batch]
    assert all(isinstance(r, BatchResult) for r in results)
    assert [r.ok for r in results] == [True, False, False, True]
    assert type(results[1].error) is dify_oapi.BadRequestError
    assert type(results[2].error) is InternalServerError and results[2].error.status_code == 500
    assert results[0].value.name == "ok"
