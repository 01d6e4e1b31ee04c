"""Sending one request on a pool: a slot, the request, the answer's head, maybe its body."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from ._body import Lease, aread_body, read_body
from ._head import head_by

if TYPE_CHECKING:
    from .._hooks import Hooks
    from .._request import Prepared
    from .._secret import Secret
    from ._pool import Pool

__all__ = ["Answer", "Send", "asend", "send"]


class Send:
    """One request as the I/O layer needs it; sent again unchanged on retry.

    ``secret`` becomes the ``Authorization`` header only when the request is built, so no
    local variable of the SDK holds the key as text.
    """

    __slots__ = (
        "deadline",
        "error_cap",
        "headers",
        "json_cap",
        "method",
        "prepared",
        "secret",
        "timeout",
        "url",
    )

    def __init__(
        self,
        prepared: Prepared,
        url: str,
        headers: dict[str, str],
        secret: Secret | None,
        timeout: httpx.Timeout,
        json_cap: int,
        error_cap: int,
        deadline: float | None,
    ) -> None:
        self.prepared = prepared
        self.method = prepared.endpoint.method
        self.url = url
        self.headers = headers
        self.secret = secret
        self.timeout = timeout
        self.json_cap = json_cap
        self.error_cap = error_cap
        self.deadline = deadline

    def cap(self, response: httpx.Response) -> tuple[int, bool]:
        """How much of the body to read now and whether to cut it there rather than refuse
        it; -1 leaves the body streaming."""
        if response.status_code >= 300:
            return self.error_cap, True  # an error keeps its status even with a huge body
        if not self.prepared.streaming:
            return self.json_cap, False
        media_type = response.headers.get("content-type", "").partition(";")[0].strip()
        if self.prepared.endpoint.stream is None or media_type.lower() == "text/event-stream":
            return -1, False
        return self.error_cap, True

    def timeouts(self) -> dict[str, float | None]:
        """httpx's timeout extension, each phase cut to what the deadline leaves."""
        values = self.timeout.as_dict()
        if self.deadline is not None:
            left = max(self.deadline - time.monotonic(), 0.001)
            values = {k: left if v is None else min(v, left) for k, v in values.items()}
        return values


class Answer:
    """An HTTP answer: its head, and either its whole body or the lease to stream it."""

    __slots__ = ("body", "lease", "response")

    def __init__(self, response: httpx.Response, body: bytes | None, lease: Lease | None) -> None:
        self.response = response
        self.body = body
        self.lease = lease


def _with_key(send: Send) -> dict[str, str]:
    # Called inside the request constructor's argument list, so no frame of the SDK that
    # can end up in a traceback holds the key as text.
    if send.secret is None:
        return send.headers
    return {**send.headers, "Authorization": "Bearer " + send.secret.reveal()}


def _build(pool: Pool, send: Send, files: Any, form: Any) -> httpx.Request:
    prepared = send.prepared
    http = pool.http
    # On the SDK's own pool (its headers merged in already, no base URL or params) skip
    # httpx's per-call merging, a tenth of a blocking call's CPU; cookies a server set
    # still need it.
    make: Any = httpx.Request if pool.own and not http.cookies else http.build_request
    return make(  # type: ignore[no-any-return]
        send.method,
        send.url,
        params=prepared.params,
        content=prepared.content,
        data=form,
        files=files,
        headers=_with_key(send),
        extensions={"timeout": send.timeouts()},
    )


def _direct(pool: Pool, request: httpx.Request) -> Any:
    """The transport to hand ``request`` to straight, or ``None`` to go through the client.

    On the SDK's own pool, with no cookies to send, ``httpx.Client.send`` only adds what the
    SDK does itself (redirects, auth) or never uses (event hooks, auth flows), at a third of
    an async call's CPU; the transport is what carries the request. The client's choice of
    transport (environment proxies, mounts) is kept.
    """
    http = pool.http
    if not pool.own or http.cookies:
        return None
    if pool.closed:
        raise RuntimeError("the connection pool is closed")
    return http._transport_for_url(request.url)


def _received(pool: Pool, request: httpx.Request, response: httpx.Response) -> httpx.Response:
    response.request = request
    if "set-cookie" in response.headers:
        pool.http.cookies.extract_cookies(response)  # later calls go through the client
    return response


def _dispatch(pool: Pool, request: httpx.Request) -> httpx.Response:
    transport = _direct(pool, request)
    if transport is None:
        return pool.http.send(request, stream=True)  # type: ignore[no-any-return]
    return _received(pool, request, transport.handle_request(request))


async def _adispatch(pool: Pool, request: httpx.Request) -> httpx.Response:
    transport = _direct(pool, request)
    if transport is None:
        return await pool.http.send(request, stream=True)  # type: ignore[no-any-return]
    return _received(pool, request, await transport.handle_async_request(request))


def _pool_wait(send: Send) -> float | None:
    wait = send.timeout.pool
    timeouts = send.timeouts() if send.deadline is not None else None
    return timeouts["pool"] if timeouts is not None else wait


def send(pool: Pool, send: Send, hooks: Hooks, attempt: int) -> Answer:
    """Send on a sync pool; reads the body unless it is a stream to hand over."""
    slots = pool.slots
    if slots is not None and not slots.acquire(_pool_wait(send)):
        raise httpx.PoolTimeout("no free connection slot within the pool timeout")
    op = send.prepared.endpoint.qualname
    try:
        with send.prepared.multipart() as (files, form):
            request = _build(pool, send, files, form)
            if hooks:
                hooks.emit("before-request", op, send.prepared.endpoint, request, attempt)
            with head_by(send.deadline):
                response = _dispatch(pool, request)
    except BaseException:
        if slots is not None:
            slots.release()
        raise
    lease = Lease(response, slots.release if slots is not None else None, op)
    cap, truncate = send.cap(response)
    if cap == -1:
        pool.leases.add(lease)
        return Answer(response, None, lease)
    return Answer(response, read_body(lease, cap, truncate, send.deadline), None)


async def asend(pool: Pool, send: Send, hooks: Hooks, attempt: int) -> Answer:
    """Async twin of :func:`send`."""
    slots = pool.bind()
    if slots is not None and not await slots.acquire(_pool_wait(send)):
        raise httpx.PoolTimeout("no free connection slot within the pool timeout")
    op = send.prepared.endpoint.qualname
    try:
        with send.prepared.multipart() as (files, form):
            request = _build(pool, send, files, form)
            if hooks:
                hooks.emit("before-request", op, send.prepared.endpoint, request, attempt)
            if send.deadline is None:
                response = await _adispatch(pool, request)
            else:
                response = await _within_deadline(_adispatch(pool, request), send.deadline)
    except BaseException:
        if slots is not None:
            slots.release()
        raise
    lease = Lease(response, slots.release if slots is not None else None, op, pool.loop)
    cap, truncate = send.cap(response)
    if cap == -1:
        pool.leases.add(lease)
        return Answer(response, None, lease)
    return Answer(response, await aread_body(lease, cap, truncate, send.deadline), None)


async def _within_deadline(waiting: Any, deadline: float) -> httpx.Response:
    """The answer's head by the deadline: per-read timeouts alone let a server that trickles
    a byte at a time go on without bound."""
    import asyncio

    try:
        return await asyncio.wait_for(waiting, max(deadline - time.monotonic(), 0.001))  # type: ignore[no-any-return]
    except asyncio.TimeoutError:
        raise httpx.ReadTimeout("the call's deadline passed before the answer's head") from None
