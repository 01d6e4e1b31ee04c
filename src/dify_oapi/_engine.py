"""The life of one call, without I/O: plan, attempts, retries, redirects, the result.

:func:`drive` is a generator the sync and async clients run. It yields ``(SEND, send)`` to
have a request sent (receiving an :class:`Answer`, or the transport exception thrown in)
and ``(SLEEP, seconds)`` between attempts, and returns the call's result. Everything that
decides what happens — whether a failure may be retried, how long to wait, what a
redirect may do, which error to raise — is here or in :mod:`._retry`; the clients only do
the I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ._exceptions import (
    APITimeoutError,
    ClientClosedError,
    InvalidArgumentsError,
    ResponseDecodeError,
)
from ._headers import check_header
from ._options import OPTIONS, Config, check_api_key, to_timeout
from ._request import prepare
from ._response import RawResponse, decode_body, status_error
from ._retry import MAX_RETRY_AFTER, RetryPolicy, retry_after_seconds
from ._secret import Secret, mask
from ._transport import Answer, Send, transport_error

if TYPE_CHECKING:
    from ._hooks import Hooks
    from ._table import Endpoint

__all__ = ["COLLECT", "SEND", "SLEEP", "Answer", "Call", "Context", "Send", "drive"]

logger = logging.getLogger("dify_oapi")

SEND = "send"
SLEEP = "sleep"
COLLECT = "collect"
MAX_REDIRECTS = 20
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Header names the SDK sets or replaces per call, in the spelling it sends.
CANONICAL = {
    name.lower(): name
    for name in ("Accept", "Accept-Encoding", "Authorization", "Content-Type", "User-Agent")
}


class Call:
    """The per-call options of one operation call, taken out of its keyword arguments."""

    __slots__ = (
        "api_key",
        "collect",
        "deadline",
        "extra_headers",
        "idle_timeout",
        "max_retries",
        "raw",
        "retry_unsafe",
        "stream",
        "timeout",
    )

    def __init__(self, ep: Endpoint, kwargs: dict[str, Any], config: Config) -> None:
        pop = kwargs.pop
        op = ep.qualname
        self.stream: bool | None = pop("stream", None)
        self.raw = bool(pop("raw", False))
        self.collect = bool(pop("collect", False))
        key = pop("api_key", None)
        self.api_key = config.api_key if key is None else _option(op, check_api_key, key)
        timeout = pop("timeout", None)
        self.timeout = config.timeout if timeout is None else _option(op, to_timeout, timeout)
        retries = pop("max_retries", None)
        self.max_retries = (
            config.max_retries
            if retries is None
            else _option(op, OPTIONS["max_retries"].check, retries)
        )
        self.extra_headers: Mapping[str, str] | None = pop("extra_headers", None)
        self.retry_unsafe = bool(pop("retry_unsafe", False))
        deadline = pop("deadline", None)
        self.deadline = (
            config.deadline
            if deadline is None
            else _option(op, OPTIONS["deadline"].check, deadline)
        )
        idle = pop("idle_timeout", None)
        self.idle_timeout = (
            config.idle_timeout
            if idle is None
            else _option(op, OPTIONS["idle_timeout"].check, idle)
        )
        if self.stream is not None and not isinstance(self.stream, bool):
            raise InvalidArgumentsError(f"{op}(): stream must be True or False")
        if self.collect:
            if ep.stream is None or ep.response is None:
                raise InvalidArgumentsError(f"{op}() cannot collect a stream")
            if self.raw or self.stream is False:
                raise InvalidArgumentsError(
                    f"{op}(): collect=True contradicts {'raw=True' if self.raw else 'stream=False'}"
                )
            self.stream = True
        elif self.raw and self.stream:
            raise InvalidArgumentsError(
                f"{op}(): raw=True and stream=True contradict each other; a stream is its own "
                "raw answer (stream.response)"
            )


def _option(op: str, check: Any, value: Any) -> Any:
    from ._exceptions import ConfigurationError

    try:
        return check(value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{op}(): {exc}") from None


class Context:
    """What :func:`drive` needs from a client (the client itself provides it)."""

    config: Config
    hooks: Hooks
    _base_headers: dict[str, str]
    _follow_redirects: bool
    _is_async: bool
    _closed: bool
    _stopped_ids: dict[str, None]

    def _link(self, ep: Endpoint, link: Any, state: Any, call: Mapping[str, Any], key: Any) -> Any:
        raise NotImplementedError


def headers_for(client: Context, op: str, call: Call) -> dict[str, str]:
    headers = client._base_headers.copy()
    if call.extra_headers:
        for name, value in call.extra_headers.items():
            check_header(name, value, op)
            canonical = CANONICAL.get(name.lower())
            if canonical is None:
                for present in [k for k in headers if k.lower() == name.lower()]:
                    del headers[present]
            headers[canonical or name] = value
    return headers


def drive(
    client: Context, ep: Endpoint, request: Any, kwargs: dict[str, Any]
) -> Generator[tuple[str, Any], Any, Any]:
    """One call, from its arguments to its result (see the module docstring)."""
    op = ep.qualname
    if client._closed:
        raise ClientClosedError(f"{op}: the client is closed")
    config = client.config
    call = Call(ep, kwargs, config)
    # The arguments a follow-up call (stop, resume) takes from the original one.
    given = kwargs if request is None else {f: getattr(request, f, None) for f in ep.fields}
    links = {n: given.get(n) for link in (ep.resume, ep.stop) if link for n in link.from_call}
    prepared = prepare(ep, request, kwargs, stream=call.stream)
    headers = headers_for(client, op, call)
    if prepared.content is not None:
        headers["Content-Type"] = "application/json"
    if prepared.streaming and ep.stream is not None:
        headers["Accept"] = "text/event-stream"
    retries = call.max_retries if prepared.replayable else 0
    safe = ep.safe or call.retry_unsafe
    deadline = time.monotonic() + call.deadline if call.deadline else None
    send = Send(
        prepared,
        config.base_url + prepared.path,
        headers,
        call.api_key,
        call.timeout,
        config.max_json_bytes if ep.response is not bytes else config.max_binary_bytes,
        config.max_error_bytes,
        deadline,
    )
    hooks = client.hooks
    policy = RetryPolicy(retries)
    spec = ep.spec
    attempt = redirects = 0
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            raise APITimeoutError(f"deadline of {call.deadline:g}s passed", operation=op)
        failure: httpx.HTTPError | None = None
        try:
            answer: Answer = yield SEND, send
        except httpx.HTTPError as exc:
            failure = exc
        if failure is not None:
            # Decided and raised outside the except block, so the typed error has no
            # __context__: httpx's exception holds the request and its Authorization header,
            # and pickling that travels with tracebacks (tblib, installed by Dask) would
            # carry the key along.
            retry = policy.retry_on_error(failure, safe=safe)
            reason = type(failure).__name__
            delay = _delay(op, attempt, retries, reason, None, deadline)
            if not retry or delay is None:
                error = transport_error(op, failure, send.secret)
                del failure
                raise error
            del failure
            attempt += 1
            if hooks:
                hooks.emit("on-retry", op, ep, attempt, delay, reason)
            yield SLEEP, delay
            continue
        response = answer.response
        if hooks:
            hooks.emit("after-response", op, ep, response, attempt)
        status = response.status_code
        if status < 300:
            break
        if status in _REDIRECTS and response.headers.get("location"):
            redirects += 1
            send = _redirect(client, send, response, answer.body or b"", redirects)
            continue
        error = status_error(op, response, answer.body or b"", send.secret, spec)
        if policy.retry_on_status(
            status,
            error.code,
            safe=safe,
            retry_codes=spec.retry_codes,
            final_codes=spec.final_codes,
        ):
            delay = _delay(op, attempt, retries, f"HTTP {status}", response, deadline)
            if delay is not None:
                attempt += 1
                if hooks:
                    hooks.emit("on-retry", op, ep, attempt, delay, f"HTTP {status}")
                yield SLEEP, delay
                continue
        raise error
    if not prepared.streaming:
        result = decode_body(ep, response, answer.body, send.secret)
        return RawResponse(response, result) if call.raw else result
    # Streams and downloads load on first use: a blocking call needs none of them.
    from . import _streaming

    if answer.body is not None and ep.stream is not None:
        # A streaming request answered with something other than SSE.
        raise ResponseDecodeError(
            "expected an event stream, got "
            f"{response.headers.get('content-type') or 'no content type'!r}",
            operation=op,
            status_code=response.status_code,
            body=mask(answer.body[:4096], send.secret),
        )
    lease = answer.lease
    assert lease is not None
    if ep.stream is None:
        binary = _streaming.AsyncBinaryStream if client._is_async else _streaming.BinaryStream
        return binary(lease)
    events = _streaming.AsyncStream if client._is_async else _streaming.Stream
    stream: Any = events(
        lease,
        ep,
        config.max_event_bytes,
        secret=send.secret,
        hooks=hooks,
        deadline=deadline,
        idle_timeout=call.idle_timeout,
        follow=_follower(client, ep, links, call.api_key),
        stopped=client._stopped_ids,
    )
    if call.collect:
        result = yield COLLECT, stream
        return result
    return stream


def _follower(client: Context, ep: Endpoint, given: dict[str, Any], key: Secret) -> Any:
    """The follow-up calls a stream can make (resume, stop) with this call's arguments."""
    if ep.resume is None and ep.stop is None:
        return None

    def follow(what: str, state: Any) -> Any:
        link = ep.resume if what == "resume" else ep.stop
        return client._link(ep, link, state, given, key)

    return follow


def _redirect(
    client: Context, send: Send, response: httpx.Response, body: bytes, count: int
) -> Send:
    """The next hop of a redirect, or the typed error that ends it.

    A POST answered with 301, 302 or 303 is never re-sent as a GET (that would drop its body
    and could end as an empty success), and ``Authorization`` never leaves its origin.
    """
    op = send.prepared.endpoint.qualname
    status = response.status_code
    location = response.headers["location"]
    target = response.request.url.join(location) if response.request else httpx.URL(location)
    why = ""
    if not client._follow_redirects:
        why = "the client does not follow redirects (follow_redirects=True)"
    elif count > MAX_REDIRECTS:
        why = f"more than {MAX_REDIRECTS} redirects"
    elif send.method not in ("GET", "HEAD") and status in (301, 302, 303):
        why = f"a {send.method} is not re-sent as a GET"
    elif target.scheme not in ("http", "https"):
        why = f"refusing a redirect to {target.scheme!r}"
    elif send.method not in ("GET", "HEAD") and not send.prepared.replayable:
        why = "the request body cannot be sent again"
    if why:
        error = status_error(op, response, body, send.secret, send.prepared.endpoint.spec)
        raise type(error)(
            f"redirected with {status} to {mask(str(target), send.secret)}: {why}",
            operation=op,
            status_code=status,
            code=error.code,
            body=error.body,
            request_id=error.request_id,
            response=response,
        )
    hop = Send(
        send.prepared,
        str(target),
        send.headers,
        send.secret if _same_origin(httpx.URL(send.url), target) else None,
        send.timeout,
        send.json_cap,
        send.error_cap,
        send.deadline,
    )
    return hop


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _delay(
    op: str,
    attempt: int,
    retries: int,
    reason: str,
    response: httpx.Response | None,
    deadline: float | None,
) -> float | None:
    """The wait before the next attempt, or ``None`` to give up now."""
    if attempt >= retries:
        return None
    wait = retry_after_seconds(response.headers) if response is not None else None
    if wait is not None and wait > MAX_RETRY_AFTER:
        logger.debug("%s: not retrying, server asked to wait %.0fs", op, wait)
        return None
    delay = wait if wait is not None and wait > 0 else RetryPolicy(retries).backoff(attempt + 1)
    if deadline is not None and time.monotonic() + delay >= deadline:
        logger.debug("%s: not retrying, the deadline comes first", op)
        return None
    logger.debug("%s: retry %d of %d in %.2fs after %s", op, attempt + 1, retries, delay, reason)
    return delay
