"""Turning an HTTP answer into a result or a typed error."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
import msgspec

from ._codecs import json_decoder
from ._exceptions import APIStatusError, ResponseDecodeError, status_error_class
from ._secret import Secret, mask
from ._table import EMPTY_SPEC, ServiceSpec

if TYPE_CHECKING:
    from ._table import Endpoint

__all__ = ["RawResponse", "decode_body", "status_error"]

T = TypeVar("T")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_TAGS = re.compile(rb"<[^>]+>")
_error_decoder = msgspec.json.Decoder()
# Answers that carry no content by definition.
_EMPTY_STATUSES = frozenset({204, 205})


class RawResponse(Generic[T]):
    """A decoded result with the HTTP answer it came from (``raw=True``).

    ``http_response`` is the ``httpx.Response`` in the process that made the call; a
    pickled copy keeps the status, headers and data only.
    """

    __slots__ = ("data", "headers", "http_response", "status_code")

    def __init__(self, http_response: httpx.Response | None, data: T) -> None:
        self.http_response = http_response
        self.data = data
        self.status_code = http_response.status_code if http_response is not None else 0
        self.headers: httpx.Headers = (
            http_response.headers if http_response is not None else httpx.Headers()
        )

    @property
    def request_id(self) -> str | None:
        return request_id(self.headers)

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status_code}] {type(self.data).__name__}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_raw, (self.status_code, list(self.headers.multi_items()), self.data))


def _raw(status: int, headers: list[tuple[str, str]], data: Any) -> RawResponse[Any]:
    raw: RawResponse[Any] = RawResponse(None, data)
    raw.status_code = status
    raw.headers = httpx.Headers(headers)
    return raw


def request_id(headers: Any) -> str | None:
    value: str | None = headers.get("x-request-id") or headers.get("x-trace-id")
    return value


def decode_body(
    ep: Endpoint, response: httpx.Response, body: bytes | None, secret: Secret | None = None
) -> Any:
    """Decode a 2xx body into the row's response type."""
    tp = ep.response
    if tp is None:
        return None
    if tp is bytes:
        return body or b""
    result, reason = _decode(tp, response, body or b"")
    if reason is None:
        return result
    # Raised from a frame that holds the answer's bytes masked only: a traceback printer that
    # shows locals (rich, Sentry) never shows a key the server echoed.
    body = mask((body or b"")[:4096], secret)
    reason = mask(reason, secret)
    raise ResponseDecodeError(
        reason,
        operation=ep.qualname,
        status_code=response.status_code,
        body=body,
    )


def _decode(tp: Any, response: httpx.Response, data: bytes) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, why)`` when the body is not a ``tp``."""
    status = response.status_code
    stripped = data.strip()
    if not stripped or stripped == b"null":
        if status not in _EMPTY_STATUSES:
            return None, f"HTTP {status} with an empty answer; {tp.__name__} was expected"
        data = b"{}"  # no content, by definition: every field stays unset
    content_type = response.headers.get("content-type", "")
    if "html" in content_type:
        return None, f"expected JSON, got {content_type!r}: {_snippet(data)}"
    try:
        return json_decoder(tp).decode(data), None
    except RecursionError:
        return None, "could not decode the answer: nested too deeply"
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return None, f"could not decode the answer as {tp.__name__}: {exc}"


def status_error(
    op: str,
    response: httpx.Response,
    body: bytes,
    secret: Secret | None = None,
    spec: ServiceSpec = EMPTY_SPEC,
) -> APIStatusError:
    """The typed error for an error status; the service's header says where its error body
    holds the code and the message.

    ``secret`` (the API key) is masked wherever the server echoed it back: body, message,
    headers.
    """
    body = mask(body, secret)
    status = response.status_code
    code: str | None = None
    message: str | None = None
    parsed: Any = None
    try:
        parsed = _error_decoder.decode(body) if body else None
    except (msgspec.DecodeError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        found = parsed.get(spec.error_code) if spec.error_code else None
        code = found if isinstance(found, str) else None
        for name in spec.error_message:
            text = parsed.get(name)
            if isinstance(text, str) and text:
                message = text
                break
    if message is None:
        reason = response.reason_phrase or "error"
        if status == 404 and "html" in response.headers.get("content-type", ""):
            request = response.request
            target = f"{request.method} {request.url.path}" if request is not None else "this"
            message = (
                f"the server has no route for {target} (an older or newer Dify than this "
                "SDK's tables describe?)"
            )
        else:
            message = f"{reason}: {_snippet(body)}" if body.strip() else reason
    headers = {k: mask(v, secret) for k, v in response.headers.items()}
    error = status_error_class(status)(
        message,
        operation=op,
        status_code=status,
        code=code,
        body=parsed if parsed is not None else body[:4096],
        request_id=request_id(headers),
        response=response,
        headers=headers,
    )
    error.before_work = code is not None and code in spec.retry_codes
    return error


def _snippet(body: bytes, limit: int = 200) -> str:
    """A short human-readable view of a body; for HTML, its title or its text."""
    title = _TITLE.search(body)
    text = title.group(1) if title else _TAGS.sub(b" ", body)
    clean = b" ".join(text.split()).decode("utf-8", "replace")
    return clean[:limit] + ("…" if len(clean) > limit else "")
