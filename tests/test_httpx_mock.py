"""The suite's own ``httpx_mock``: matching, one use per answer, and loud failures."""

from __future__ import annotations

import httpx
import pytest

from .httpx_mock import HTTPXMock, IteratorStream


def test_answers_in_order_and_records_requests() -> None:
    mock = HTTPXMock()
    mock.add_response(url="https://x.test/a?b=2&c=3", json={"n": 1})
    mock.add_response(url="https://x.test/a?c=3&b=2", status_code=503, text="busy")
    with httpx.Client(transport=mock.transport) as http:
        first = http.get("https://x.test/a", params={"c": "3", "b": "2"})
        second = http.get("https://x.test/a?b=2&c=3")
    assert (first.status_code, first.json()) == (200, {"n": 1})
    assert first.headers["content-type"] == "application/json"
    assert (second.status_code, second.text) == (503, "busy")
    assert [str(r.url) for r in mock.get_requests()] == [
        "https://x.test/a?c=3&b=2",
        "https://x.test/a?b=2&c=3",
    ]
    mock.verify()


def test_method_and_json_body_select_the_answer() -> None:
    mock = HTTPXMock()
    mock.add_response(method="POST", match_json={"q": "b"}, json="b")
    mock.add_response(method="POST", match_json={"q": "a"}, json="a")
    with httpx.Client(transport=mock.transport) as http:
        assert http.post("https://x.test/", json={"q": "a"}).json() == "a"
        assert http.post("https://x.test/", json={"q": "b"}).json() == "b"
    mock.verify()


def test_unmatched_request_raises_and_fails_verify() -> None:
    mock = HTTPXMock()
    mock.add_response(url="https://x.test/a")
    with httpx.Client(transport=mock.transport) as http:
        http.get("https://x.test/a")
        with pytest.raises(httpx.TimeoutException, match="no answer registered for GET"):
            http.get("https://x.test/a")  # used once already, not reusable
    with pytest.raises(AssertionError, match="no registered answer"):
        mock.verify()


def test_unused_answer_fails_verify() -> None:
    mock = HTTPXMock()
    mock.add_response(url="https://x.test/never")
    with pytest.raises(AssertionError, match=r"never requested:\n- https://x\.test/never"):
        mock.verify()


def test_reusable_answer_repeats_and_exception_carries_request() -> None:
    mock = HTTPXMock()
    mock.add_exception(httpx.ConnectError("refused"), url="https://x.test/e", is_reusable=True)
    with httpx.Client(transport=mock.transport) as http:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError) as caught:
                http.get("https://x.test/e")
            assert caught.value.request.url == "https://x.test/e"
    assert len(mock.get_requests()) == 3
    mock.verify()


async def test_streamed_body_reaches_async_clients_in_chunks() -> None:
    mock = HTTPXMock()
    mock.add_response(stream=IteratorStream([b"ab", b"cd"]))
    async with (
        httpx.AsyncClient(transport=mock.transport) as http,
        http.stream("GET", "https://x.test/s") as response,
    ):
        assert [chunk async for chunk in response.aiter_raw()] == [b"ab", b"cd"]
    mock.verify()


def test_fixture_patches_the_default_transport(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://x.test/p", content=b"patched")
    assert httpx.get("https://x.test/p").content == b"patched"
