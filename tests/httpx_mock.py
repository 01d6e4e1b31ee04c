"""The ``httpx_mock`` fixture: canned answers for every httpx transport, through ``MockTransport``.

Registered answers are matched in order (url, method, JSON body); each is used once unless
``is_reusable=True``, after which the last matching one repeats. A request nothing matches
raises ``httpx.TimeoutException`` and fails the test at teardown, as does an answer never asked
for. Kept here rather than taken from a plugin so the suite runs on any httpx release users get.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx

_UNSET: Any = object()


class IteratorStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body handed out chunk by chunk, to sync and async clients alike."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class _Rule:
    def __init__(
        self,
        answer: Callable[[httpx.Request], httpx.Response],
        url: str | httpx.URL | None = None,
        method: str | None = None,
        match_json: Any = _UNSET,
        is_reusable: bool = False,
    ) -> None:
        self.answer = answer
        self.url = httpx.URL(url) if url is not None else None
        self.method = method.upper() if method else None
        self.json = match_json
        self.reusable = is_reusable
        self.calls = 0

    def matches(self, request: httpx.Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if self.url is not None and not _same_url(self.url, request.url):
            return False
        if self.json is not _UNSET:
            try:
                return bool(jsonlib.loads(request.content) == self.json)
            except ValueError:
                return False
        return True

    def __str__(self) -> str:
        what = " ".join(str(p) for p in (self.method, self.url) if p is not None) or "any request"
        return what + (f" with JSON {self.json!r}" if self.json is not _UNSET else "")


def _same_url(expected: httpx.URL, got: httpx.URL) -> bool:
    # Query parameters compare as a multiset: their order on the wire carries no meaning here.
    if expected.copy_with(query=None) != got.copy_with(query=None):
        return False
    return sorted(expected.params.multi_items()) == sorted(got.params.multi_items())


class HTTPXMock:
    """Registered answers, the requests received, and the transport that joins them."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._requests: list[httpx.Request] = []
        self._unexpected: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def add_response(
        self,
        status_code: int = 200,
        *,
        headers: Any = None,
        content: bytes | None = None,
        text: str | None = None,
        json: Any = None,
        stream: IteratorStream | None = None,
        **match: Any,
    ) -> None:
        """Answer the next matching request with this status, headers and body."""
        if stream is None:
            # Encoded now, so the answer is fixed at registration and each use gets a fresh,
            # unread body: the client reads it as it would read one from a socket.
            ready = httpx.Response(
                status_code, headers=headers, content=content, text=text, json=json
            )
            headers, body = ready.headers, ready.content

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                status_code,
                headers=headers,
                stream=stream if stream is not None else httpx.ByteStream(body),
                extensions={"http_version": b"HTTP/1.1"},
            )

        self._rules.append(_Rule(answer, **match))

    def add_exception(self, exception: Exception, **match: Any) -> None:
        """Raise ``exception`` for the next matching request."""

        def answer(request: httpx.Request) -> httpx.Response:
            if isinstance(exception, httpx.RequestError):
                exception.request = request
            raise exception

        self._rules.append(_Rule(answer, **match))

    def get_requests(self) -> list[httpx.Request]:
        """Every request received, in order, bodies read."""
        return list(self._requests)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self._requests.append(request)
        candidates = [rule for rule in self._rules if rule.matches(request)]
        rule = next((r for r in candidates if r.calls == 0), None)
        if rule is None and candidates and candidates[-1].reusable:
            rule = candidates[-1]
        if rule is None:
            self._unexpected.append(request)
            known = "".join(f"\n- {r}" for r in self._rules) or " none"
            raise httpx.TimeoutException(
                f"no answer registered for {request.method} {request.url}; registered:{known}",
                request=request,
            )
        rule.calls += 1
        return rule.answer(request)

    def verify(self) -> None:
        """Fail when a registered answer went unused or a request had no answer."""
        unused = [str(rule) for rule in self._rules if rule.calls == 0]
        assert not unused, "answers registered but never requested:\n- " + "\n- ".join(unused)
        stray = [f"{r.method} {r.url}" for r in self._unexpected]
        assert not stray, "requests with no registered answer:\n- " + "\n- ".join(stray)
