"""Real exchanges with a Dify 1.14.2 server, replayed as httpx transports.

The ``*.jsonl`` files beside this module are what a real server answered to this SDK (the
line format is in ``README.md``; what they show is summed up in ``FACTS.md``). This module
loads them and answers a client exactly as the server did, checking on the way that the
client sent the request that was recorded::

    from tests.recordings import Replay, load

    chat = load("chat")                          # every exchange of chat.jsonl, file order
    exchange = chat["chat streaming"]            # one exchange, by its name
    replay = Replay(exchange)                    # an httpx transport, sync and async
    client = Client(api_key="app-x", base_url="http://dify.test/v1", transport=replay)
    events = list(client.chat.send(**exchange.arguments(), stream=True))
    replay.assert_done()                         # every exchange was asked for

- :func:`load` gives an :class:`Area` (one file); ``area[name]`` one :class:`Exchange`,
  ``area.call(name)`` the exchange and the retries the SDK made of it (``name #2``...).
- :class:`Replay` answers each request with the first unused exchange whose request it
  matches (method, path, query, JSON or multipart body); a request that matches none
  raises :class:`ReplayMismatch` naming what differs from the next unused exchange. Streams
  are sent frame by frame, each frame the recorded text followed by a blank line.
- :meth:`Exchange.arguments` turns the recorded request back into keyword arguments for
  ``client.call(exchange.operation, ...)``.

Recorded API keys are ``<key>``; ``Replay`` ignores the ``Authorization`` header.
"""

from __future__ import annotations

import base64
import json
import re
import typing
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import msgspec

__all__ = ["AREAS", "Area", "Exchange", "Replay", "ReplayMismatch", "load"]

HERE = Path(__file__).resolve().parent
AREAS = ("app", "chat", "chatflow", "knowledge", "workflow")
#: Response headers that describe the recorded bytes' framing, not their content.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding"})


class ReplayMismatch(AssertionError):
    """The client sent a request that no unused recorded exchange matches."""


@dataclass(frozen=True)
class Exchange:
    """One recorded HTTP exchange (one line of a ``.jsonl`` file)."""

    area: str
    index: int  # the line number in the file, from 0
    name: str
    operation: str  # "service.name", or "raw METHOD PATH" for plain httpx requests
    method: str
    template: str  # the path with the endpoint table's placeholders, relative to /v1
    path: str  # the path sent, relative to /v1
    query: dict[str, Any]  # a list where a key repeats
    headers: dict[str, str]
    body: Any  # JSON, {"_multipart": [...]}, or None
    status: int
    response_headers: dict[str, str]
    response_body: Any
    sse: tuple[str, ...] | None
    t_ms: tuple[float, ...]
    outcome: dict[str, Any]
    note: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_raw(self) -> bool:
        """Sent with plain httpx, not through an SDK operation."""
        return self.operation.startswith("raw ")

    @property
    def content_type(self) -> str:
        return self.response_headers.get("content-type", "")

    @property
    def events(self) -> list[dict[str, Any] | str]:
        """The stream's frames decoded: a dict per ``data:`` frame, the text of others."""
        out: list[dict[str, Any] | str] = []
        for frame in self.sse or ():
            out.append(json.loads(frame[5:]) if frame.startswith("data:") else frame)
        return out

    def path_params(self) -> dict[str, str]:
        """The placeholder values of the path: ``{"dataset_id": "1a39..."}``."""
        names = re.findall(r"{(\w+)}", self.template)
        pattern = re.escape(self.template)
        for name in names:
            pattern = pattern.replace(re.escape("{" + name + "}"), "([^/]+)")
        found = re.fullmatch(pattern, self.path)
        if found is None:
            raise ValueError(f"{self.name}: {self.path} does not fit {self.template}")
        return dict(zip(names, found.groups(), strict=True))

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``client.call(self.operation, ...)``.

        Path values, query values and JSON body fields; ``response_mode`` is left out (pass
        ``stream=True`` or ``collect=True``). A multipart body gives its text fields (the
        ``data`` field decoded from JSON) and each file part as ``(filename, bytes,
        content_type)``; a binary part is that many zero bytes, unless a later answer of the
        same file recorded its bytes.
        """
        args: dict[str, Any] = {**self.path_params(), **_typed_query(self.operation, self.query)}
        body = self.body
        if isinstance(body, dict) and "_multipart" in body:
            for part in body["_multipart"]:
                name, filename, ctype = _part_header(part["headers"])
                content = part["content"]
                if filename is None:
                    args[name] = json.loads(content) if name == "data" else content
                else:
                    args[name] = (filename, _part_bytes(content), ctype)
        elif isinstance(body, dict):
            args.update({k: v for k, v in body.items() if k != "response_mode"})
        return args

    def response(self) -> httpx.Response:
        """The recorded answer as an httpx response (a stream answers frame by frame)."""
        headers = [(k, v) for k, v in self.response_headers.items() if k not in _FRAMING]
        if self.sse is not None:
            frames = [frame.encode() + b"\n\n" for frame in self.sse]
            return httpx.Response(self.status, headers=headers, stream=_Frames(frames))
        return httpx.Response(self.status, headers=headers, content=self.content())

    def content(self) -> bytes:
        """The recorded body's bytes (JSON re-encoded; streams joined)."""
        body = self.response_body
        if self.sse is not None:
            return b"".join(frame.encode() + b"\n\n" for frame in self.sse)
        if isinstance(body, dict) and body.get("_binary"):
            return base64.b64decode(body["base64"])
        if isinstance(body, str):
            return body.encode()
        if body is None:
            return b""
        return json.dumps(body, ensure_ascii=False).encode()

    def mismatch(self, request: httpx.Request) -> list[str]:
        """What differs between ``request`` and the recorded request (empty: it matches)."""
        problems = []
        path = request.url.path
        path = path[3:] if path.startswith("/v1/") or path == "/v1" else path
        if request.method != self.method:
            problems.append(f"method {request.method} != recorded {self.method}")
        if path != self.path:
            problems.append(f"path {path} != recorded {self.path}")
        query: dict[str, Any] = {}
        for key, value in request.url.params.multi_items():
            query[key] = (
                [*query[key], value]
                if isinstance(query.get(key), list)
                else ([query[key], value] if key in query else value)
            )
        if query != self.query:
            problems.append(f"query {query} != recorded {self.query}")
        problems += _body_mismatch(self.body, request)
        return problems


def _typed_query(operation: str, query: dict[str, Any]) -> dict[str, Any]:
    """Query text converted to the SDK request fields' types ("2" to 2, "true" to True)."""
    from dify_oapi._services import ENDPOINTS
    from dify_oapi._table import struct_fields

    service, _, name = operation.partition(".")
    row = next((ep for ep in ENDPOINTS.get(service, ()) if ep.name == name), None)
    if row is None or row.request is None:
        return dict(query)
    types = {f.name: f.type for f in struct_fields(row.request)}
    out = {}
    for key, value in query.items():
        kind = types.get(key)
        members = typing.get_args(kind) or (kind,)
        listed = any(typing.get_origin(m) is list for m in members)
        value = [value] if listed and not isinstance(value, list) else value
        try:
            out[key] = msgspec.convert(value, kind, strict=False) if kind else value
        except msgspec.ValidationError:
            out[key] = value  # left as sent: the SDK's own check reports it
    return out


def _part_header(headers: str) -> tuple[str, str | None, str | None]:
    name = re.search(r'\bname="([^"]*)"', headers)
    filename = re.search(r'filename="([^"]*)"', headers)
    ctype = re.search(r"Content-Type: ([^\r\n]+)", headers)
    return (
        name.group(1) if name else "",
        filename.group(1) if filename else None,
        ctype.group(1) if ctype else None,
    )


def _part_bytes(content: str) -> bytes:
    size = re.fullmatch(r"<binary (\d+) bytes>", content)
    return bytes(int(size.group(1))) if size else content.encode()


def _parts(request: httpx.Request) -> list[tuple[str, str | None, str | None, bytes]]:
    ctype = request.headers.get("content-type", "")
    boundary = ctype.partition("boundary=")[2].strip('"').encode()
    parts = []
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = chunk.partition(b"\r\n\r\n")
        name, filename, part_type = _part_header(head.decode("utf-8", "replace"))
        parts.append((name, filename, part_type, content))
    return parts


def _body_mismatch(recorded: Any, request: httpx.Request) -> list[str]:
    content = request.content
    if isinstance(recorded, dict) and "_multipart" in recorded:
        want = []
        for part in recorded["_multipart"]:
            name, filename, ctype = _part_header(part["headers"])
            size = re.fullmatch(r"<binary (\d+) bytes>", part["content"])
            want.append((name, filename, ctype, int(size.group(1)) if size else part["content"]))
        got = []
        for name, filename, ctype, data in _parts(request):
            text = data.decode("utf-8", "strict") if _is_text(data) else None
            matching = next((w for w in want if w[0] == name), None)
            binary = matching is not None and isinstance(matching[3], int)
            got.append((name, filename, ctype, len(data) if binary or text is None else text))
        return (
            []
            if sorted(got, key=str) == sorted(want, key=str)
            else [f"multipart parts {got} != recorded {want}"]
        )
    if recorded is None:
        return [] if not content else [f"a body of {len(content)} bytes; none was recorded"]
    try:
        sent = json.loads(content) if content else None
    except ValueError:
        return [f"body {content[:200]!r} is not JSON; recorded {recorded!r}"]
    return [] if sent == recorded else [f"body {sent} != recorded {recorded}"]


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Frames(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, frames: list[bytes]) -> None:
        self._frames = frames

    def __iter__(self) -> Iterator[bytes]:
        yield from self._frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self._frames:
            yield frame


class Area:
    """The exchanges of one recording file, in file order."""

    def __init__(self, name: str, exchanges: Sequence[Exchange]) -> None:
        self.name = name
        self.exchanges = tuple(exchanges)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.exchanges)

    def __len__(self) -> int:
        return len(self.exchanges)

    def __getitem__(self, name: str) -> Exchange:
        for exchange in self.exchanges:
            if exchange.name == name:
                return exchange
        raise KeyError(f"no exchange named {name!r} in {self.name}.jsonl")

    def call(self, name: str) -> list[Exchange]:
        """The exchange ``name`` and the SDK's retries of it (``name #2``, ``name #3``...)."""
        found = [e for e in self.exchanges if re.fullmatch(re.escape(name) + r"( #\d+)?", e.name)]
        if not found:
            raise KeyError(f"no exchange named {name!r} in {self.name}.jsonl")
        return found


@cache
def load(area: str) -> Area:
    """The exchanges of ``<area>.jsonl`` (``app``, ``chat``, ``chatflow``, ``knowledge``,
    ``workflow``)."""
    exchanges = []
    lines = (HERE / f"{area}.jsonl").read_text("utf-8").splitlines()
    for index, line in enumerate(lines):
        raw = json.loads(line)
        request, response = raw["request"], raw["response"]
        sse = response.get("sse")
        exchanges.append(
            Exchange(
                area=area,
                index=index,
                name=raw["name"],
                operation=raw["operation"],
                method=request["method"],
                template=request["path"]["template"],
                path=request["path"]["concrete"],
                query=request["query"],
                headers=request["headers"],
                body=request["body"],
                status=response["status"],
                response_headers=response["headers"],
                response_body=response["body"],
                sse=tuple(sse) if sse is not None else None,
                t_ms=tuple(response.get("t_ms") or ()),
                outcome=raw["sdk_outcome"],
                note=raw.get("note"),
                raw=raw,
            )
        )
    return Area(area, exchanges)


class Replay(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport (sync and async) answering with recorded exchanges.

    Each request gets the first unused exchange whose recorded request it matches; with
    ``check=False`` it gets the next unused exchange, whatever was sent. ``requests`` keeps
    what was sent, ``pending`` what has not been asked for yet.
    """

    def __init__(self, *exchanges: Exchange | Sequence[Exchange], check: bool = True) -> None:
        flat: list[Exchange] = []
        for item in exchanges:
            flat += [item] if isinstance(item, Exchange) else list(item)
        self.pending = flat
        self.check = check
        self.requests: list[httpx.Request] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.pending:
            raise ReplayMismatch(f"{request.method} {request.url}: no recorded exchange is left")
        chosen = self.pending[0]
        if self.check:
            found = next((e for e in self.pending if not e.mismatch(request)), None)
            if found is None:
                problems = "; ".join(chosen.mismatch(request))
                raise ReplayMismatch(
                    f"{request.method} {request.url} vs {chosen.name!r}: {problems}"
                )
            chosen = found
        self.pending.remove(chosen)
        return chosen.response()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.answer(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.answer(request)

    def assert_done(self) -> None:
        """Every exchange was asked for."""
        assert not self.pending, f"never requested: {[e.name for e in self.pending]}"
