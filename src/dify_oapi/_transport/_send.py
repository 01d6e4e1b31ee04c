"""Sending one request on a pool: a slot, the request, the answer's head, maybe its body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from ._body import Lease, aread_body, read_body

if TYPE_CHECKING:
    from .._engine import Send
    from .._hooks import Hooks
    from ._pool import Pool

__all__ = ["Answer", "asend", "send"]


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
            response = pool.http.send(request, stream=True)
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
            response = await pool.http.send(request, stream=True)
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
