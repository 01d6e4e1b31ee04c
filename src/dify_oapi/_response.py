"""Turning an HTTP answer into a result or a typed error."""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from ._codecs import json_decoder
from ._exceptions import APIStatusError, ResponseDecodeError, status_error_class
from ._table import Endpoint

__all__ = ["RawResponse", "decode_body", "status_error"]

T = TypeVar("T")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_TAGS = re.compile(rb"<[^>]+>")
_error_decoder = msgspec.json.Decoder()


class RawResponse(Generic[T]):
    """A decoded result with the HTTP answer it came from (``raw=True``)."""

    __slots__ = ("data", "http_response")

    def __init__(self, http_response: httpx.Response, data: T) -> None:
        self.http_response = http_response
        self.data = data

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def request_id(self) -> str | None:
        return request_id(self.http_response)

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status_code}] {type(self.data).__name__}>"


def request_id(response: httpx.Response) -> str | None:
    headers = response.headers
    value: str | None = headers.get("x-request-id") or headers.get("x-trace-id")
    return value


def decode_body(ep: Endpoint, response: httpx.Response, body: bytes) -> Any:
    """Decode a 2xx body into the row's response type."""
    tp = ep.response
    if tp is None:
        return None
    if tp is bytes:
        return body
    if not body.strip():
        return tp()  # an empty 2xx (204, or a delete answering nothing) has every field unset
    content_type = response.headers.get("content-type", "")
    if "html" in content_type:
        raise ResponseDecodeError(
            f"expected JSON, got {content_type!r}: {_snippet(body)}",
            operation=ep.qualname,
            status_code=response.status_code,
            body=body[:4096],
        )
    try:
        return json_decoder(tp).decode(body)
    except RecursionError:
        raise ResponseDecodeError(
            "could not decode the answer: nested too deeply",
            operation=ep.qualname,
            status_code=response.status_code,
            body=body[:4096],
        ) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ResponseDecodeError(
            f"could not decode the answer as {tp.__name__}: {exc}",
            operation=ep.qualname,
            status_code=response.status_code,
            body=body[:4096],
        ) from None


def status_error(
    op: str, response: httpx.Response, body: bytes, secret: str | None = None
) -> APIStatusError:
    """The typed error for an error status, from Dify's ``{code, message, status}`` body.

    ``secret`` (the API key) is masked wherever the server echoed it back.
    """
    if secret and secret.encode() in body:
        body = body.replace(secret.encode(), b"***")
    status = response.status_code
    code: str | None = None
    message: str | None = None
    parsed: Any = None
    try:
        parsed = _error_decoder.decode(body) if body else None
    except (msgspec.DecodeError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        code = parsed.get("code") if isinstance(parsed.get("code"), str) else None
        raw_message = parsed.get("message") or parsed.get("error") or parsed.get("detail")
        message = raw_message if isinstance(raw_message, str) else None
    if message is None:
        reason = response.reason_phrase or "error"
        message = f"{reason}: {_snippet(body)}" if body.strip() else reason
    return status_error_class(status)(
        message,
        operation=op,
        status_code=status,
        code=code,
        body=parsed if parsed is not None else body[:4096],
        request_id=request_id(response),
        response=response,
    )


def _snippet(body: bytes, limit: int = 200) -> str:
    """A short human-readable view of a body; for HTML, its title or its text."""
    title = _TITLE.search(body)
    text = title.group(1) if title else _TAGS.sub(b" ", body)
    clean = b" ".join(text.split()).decode("utf-8", "replace")
    return clean[:limit] + ("…" if len(clean) > limit else "")
