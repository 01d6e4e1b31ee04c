"""The emulator: an httpx transport (sync and async) over in-memory Dify state."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import sys
import threading
import time
import types
import typing
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import IO, Any
from urllib.parse import unquote

import httpx
import msgspec

from .._services import ENDPOINTS
from .._table import Endpoint, struct_fields

# Importing the handler modules registers their handlers.
from . import _conversations, _info, _messages, _metadata, _runs, _segments  # noqa: F401
from ._base import (
    HANDLERS,
    VERSION,
    ApiError,
    Ctx,
    Reply,
    is_uuid,
    reply_bytes,
    server_error,
)
from ._definition import AppDefinition
from ._documents import settle
from ._info import file_reply
from ._routes import Route, Router
from ._server import EmulatorServer, serve_forever
from ._sse import AsyncBody, Feed, SyncBody
from ._state import AppState, Ids, KnowledgeState, StoredFile, Upload

__all__ = ["AppDefinition", "Emulator", "serve"]

_STATUS_CODES = {
    400: "invalid_param",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "file_too_large",
    415: "unsupported_file_type",
    429: "too_many_requests",
}


@dataclass
class _Fault:
    route: Route | None
    times: int
    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int = 0


@cache
def _field_kinds(cls: type) -> dict[str, tuple[bool, bool]]:
    """Per request field: (takes a list, takes a JSON document) - how text arrives."""
    kinds = {}
    for f in struct_fields(cls):
        members = typing.get_args(f.type) or (f.type,)
        origins = {typing.get_origin(m) or m for m in members}
        is_list = list in origins
        is_doc = dict in origins or any(
            isinstance(m, type) and issubclass(m, msgspec.Struct) for m in origins
        )
        kinds[f.name] = (is_list, is_doc or is_list)
    return kinds


@cache
def _bare(tp: Any) -> Any:
    """``Annotated[str, ...]`` is a ``str`` here."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _null_means_unset(cls: type) -> frozenset[str]:
    """Optional text and list fields, where Dify takes JSON ``null`` as left out (its
    pydantic models declare them ``str | None``); booleans and objects still refuse it."""
    names = set()
    for f in struct_fields(cls):
        union = typing.get_origin(f.type) in (typing.Union, types.UnionType)
        members = {
            typing.get_origin(_bare(m)) or _bare(m)
            for m in (typing.get_args(f.type) if union else (f.type,))
        }
        if not f.required and members & {str, list, typing.Literal}:
            names.add(f.name)
    return frozenset(names)


def _uuid_names(cls: type) -> frozenset[str]:
    """Fields the SDK types as UUIDs: Dify checks them in its handlers, with its own words."""
    info = msgspec.inspect.type_info(cls)
    names = set()
    for f in getattr(info, "fields", ()):
        t = f.type
        if isinstance(t, msgspec.inspect.UnionType):
            t = next((m for m in t.types if not isinstance(m, msgspec.inspect.NoneType)), t)
        while isinstance(t, msgspec.inspect.Metadata):
            t = t.type
        if isinstance(t, msgspec.inspect.ListType):
            t = t.item_type
            while isinstance(t, msgspec.inspect.Metadata):
                t = t.type
        if isinstance(t, msgspec.inspect.StrType) and "{12}" in (t.pattern or ""):
            names.add(f.name)
    return frozenset(names)


_NIL = "00000000-0000-4000-8000-000000000000"


def _texts(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _stand_in(value: Any) -> Any:
    return [_NIL] * len(value) if isinstance(value, list) else _NIL


def _converted(data: dict[str, Any], cls: type, query: frozenset[str]) -> dict[str, Any]:
    """``data`` checked against ``cls``; a UUID field's text is left for the handler's check.

    A list of ids is held back only from the query string: Dify's body models check each id
    (400), but a query list goes to the database as it is (a 500 for one that is no UUID).
    """
    held = {
        k: data[k]
        for k in _uuid_names(cls) & data.keys()
        if isinstance(data[k], str) or (k in query and _texts(data[k]))
    }
    rest = {**data, **{k: _stand_in(v) for k, v in held.items()}}
    try:
        params: dict[str, Any] = msgspec.to_builtins(msgspec.convert(rest, cls, strict=False))
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_param", str(exc)) from None
    params.update(held)
    return params


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, Upload]]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ApiError(400, "invalid_param", "Malformed multipart body.")
    form: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if not isinstance(name, str):
            continue
        if filename is not None:
            files[name] = Upload(filename, content, part.get_content_type())
        else:
            form[name] = content.decode("utf-8", "replace")
    return form, files


def _params(
    row: Endpoint, values: dict[str, str], request: httpx.Request
) -> tuple[dict[str, Any], dict[str, Upload], dict[str, Any]]:
    """The request's fields validated against the row's request struct, its files, its body."""
    cls = row.request
    if cls is None:
        return {}, {}, {}
    kinds = _field_kinds(cls)
    data: dict[str, Any] = {}
    for name, value in request.url.params.multi_items():
        if kinds.get(name, (False,))[0]:
            data.setdefault(name, []).append(value)
        else:
            data[name] = value
    files: dict[str, Upload] = {}
    content_type = request.headers.get("content-type", "")
    body = request.content
    decoded: dict[str, Any] = {}
    if content_type.startswith("multipart/form-data"):
        form, files = _multipart(content_type, body)
        for name, text in form.items():
            try:
                data[name] = msgspec.json.decode(text) if kinds.get(name, (0, 0))[1] else text
            except msgspec.DecodeError:
                data[name] = text  # fails validation below, naming the field
    elif body.strip():
        try:
            decoded = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise ApiError(400, "invalid_param", "Failed to decode JSON object.") from None
        if not isinstance(decoded, dict):
            raise ApiError(400, "invalid_param", "The request body must be a JSON object.")
        nullable = _null_means_unset(cls)
        data.update({k: v for k, v in decoded.items() if v is not None or k not in nullable})
    data.update(values)
    data = {k: v for k, v in data.items() if k in kinds}  # like Dify, ignore unknown fields
    for name in row.file_fields:
        if name in files:
            data[name] = None
        elif name in row.required:
            raise ApiError(400, "no_file_uploaded", "Please upload your file.")
    params = _converted(data, cls, frozenset(request.url.params))
    for name in row.file_fields:
        if name in files:
            params[name] = files[name]
    return params, {k: v for k, v in files.items() if k in row.file_fields}, decoded


_HTML_404_BODY = (
    b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    b"<p>The requested URL was not found on the server. If you entered the URL manually "
    b"please check your spelling and try again.</p>\n"
)


class _Html404(Reply):
    def __init__(self) -> None:
        super().__init__(404, content=_HTML_404_BODY, content_type="text/html; charset=utf-8")


_HTML_404 = _Html404()


#: Path values Dify's knowledge routes declare as ``<uuid:...>`` (anything else: no route).
_UUID_PATH = frozenset({"dataset_id", "document_id", "segment_id", "child_chunk_id"})


def _not_uuid(route: Route, values: dict[str, str]) -> bool:
    return route.knowledge and any(
        name in _UUID_PATH and not is_uuid(value) for name, value in values.items()
    )


def _dify_headers(reply: Reply) -> None:
    """What every Dify answer carries; a header the reply names (a fault's) wins."""
    given = {k.lower(): k for k in reply.headers}
    if "content-type" in given:
        reply.content_type = reply.headers.pop(given["content-type"])
    if "x-version" not in given:
        reply.headers["X-Version"] = VERSION
    if reply.status == 401 and "www-authenticate" not in given:
        reply.headers["WWW-Authenticate"] = 'Bearer realm="api"'


#: The operations Dify's per-app concurrency cap counts (they start a generation).
_GENERATING = ("chat.send", "completion.send", "workflow.run", "workflow.run_by_id")


def _nothing() -> None:
    pass


class Emulator(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An in-memory, stateful Dify Service API; an httpx transport, sync and async.

    ``Client(api_key="app-...", base_url="http://emulator.local/v1", transport=Emulator())``

    ``app``: what app keys answer as; ``api_keys``: the accepted keys (an iterable, or a
    mapping of key to the :class:`AppDefinition` it reaches; by default any ``app-`` and
    ``dataset-`` key); ``latency``: seconds before each answer; ``stream_delay``: seconds
    before each stream event; ``indexing_seconds``: how long a document takes to index, as
    Dify's worker takes it whether anyone polls or not (0: at once; the deprecated
    ``indexing_polls=0`` means 0); ``max_concurrent_requests``: the cap of apps that set none
    (see :class:`AppDefinition`); ``seed``: of the uuid4 ids (``None``: random); ``clock``:
    timestamps (a clock run past ``indexing_seconds`` also finishes indexing).
    """

    def __init__(
        self,
        *,
        app: AppDefinition | None = None,
        api_keys: Iterable[str] | Mapping[str, AppDefinition | None] | None = None,
        latency: float = 0.0,
        stream_delay: float = 0.0,
        indexing_seconds: float = 1.0,
        indexing_polls: int | None = None,
        seed: int | None = 0,
        clock: Callable[[], float] | None = None,
        max_concurrent_requests: int = 0,
    ) -> None:
        self.app = app or AppDefinition()
        if api_keys is None or isinstance(api_keys, Mapping):
            self._keys = None if api_keys is None else dict(api_keys)
        else:
            self._keys = dict.fromkeys(api_keys)
        self.latency = latency
        self.stream_delay = stream_delay
        if indexing_polls is not None:
            warnings.warn(
                "Emulator(indexing_polls=) is deprecated: indexing now takes indexing_seconds"
                " whether or not anyone polls (indexing_polls=0 is indexing_seconds=0)",
                DeprecationWarning,
                stacklevel=2,
            )
            indexing_seconds = indexing_seconds if indexing_polls > 0 else 0.0
        self.indexing_seconds = indexing_seconds
        self.max_concurrent_requests = max_concurrent_requests
        self.ids = Ids(seed, clock or time.time)
        self.tenant_id = self.ids.new()
        self.account_id = self.ids.new()
        self.knowledge = KnowledgeState()
        self.files: dict[str, StoredFile] = {}
        self.pipeline_app = AppDefinition(name="Knowledge pipeline", mode="workflow")
        self._apps: dict[int, tuple[AppDefinition, AppState]] = {}
        self._lock = threading.RLock()
        self._router = Router(ENDPOINTS, HANDLERS)
        self._faults: list[_Fault] = []
        self._cuts: list[_Fault] = []
        self._scripted: deque[str] = deque()

    # -- hooks ------------------------------------------------------------------------

    def fail_next(
        self,
        operation: str | None = None,
        *,
        status: int = 500,
        code: str | None = None,
        message: str | None = None,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``operation`` (any, if ``None``) with an error."""
        if status >= 500 and code is None and message is None:
            unhandled = server_error()  # what Dify answers to anything it does not handle
            code, message = unhandled.code, unhandled.message
        code = code or _STATUS_CODES.get(status, "unknown")
        body = {"code": code, "message": message or f"Injected {status} {code}", "status": status}
        route = self._router.for_operation(operation) if operation else None
        with self._lock:
            self._faults.append(_Fault(route, times, status, body, dict(headers or {})))

    def cut_stream_after(
        self, events: int, *, operation: str | None = None, times: int = 1
    ) -> None:
        """Drop the connection of the next ``times`` streams after ``events`` data events."""
        route = self._router.for_operation(operation) if operation else None
        with self._lock:
            self._cuts.append(_Fault(route, times, cut_after=events))

    def script_reply(self, *texts: str) -> None:
        """Queue answers for the next messages and runs of any app (before its ``replies``)."""
        with self._lock:
            self._scripted.extend(texts)

    def clear_faults(self) -> None:
        """Forget injected failures and cuts that have not happened yet."""
        with self._lock:
            self._faults.clear()
            self._cuts.clear()

    def next_scripted(self) -> str | None:
        return self._scripted.popleft() if self._scripted else None

    # -- state -------------------------------------------------------------------------

    def app_state(self, app: AppDefinition) -> AppState:
        """The state of one app (holding the definition keeps its id unique)."""
        if id(app) not in self._apps:
            self._apps[id(app)] = (app, AppState(self.ids.new(), self.ids.new()))
        return self._apps[id(app)][1]

    def store(self, upload: Upload, created_by: str | None) -> StoredFile:
        name, content, given = upload
        ctype = StoredFile.guess_type(name, given)
        f = StoredFile(self.ids.new(), name, content, ctype, created_by, self.ids.now())
        self.files[f.id] = f
        return f

    # -- transport ----------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if self.latency:
            time.sleep(self.latency)
        reply = self.respond(request)
        return self._response(reply, SyncBody(reply.feed) if reply.feed else None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self.respond(request)
        return self._response(reply, AsyncBody(reply.feed) if reply.feed else None)

    @staticmethod
    def _response(reply: Reply, stream: Any) -> httpx.Response:
        headers = {"content-type": reply.content_type, **reply.headers}
        if stream is not None:
            return httpx.Response(reply.status, headers=headers, stream=stream)
        return httpx.Response(reply.status, headers=headers, content=Emulator.body(reply))

    @staticmethod
    def body(reply: Reply) -> bytes:
        return reply_bytes(reply)

    def close(self) -> None:
        """Nothing to release: clients closing this transport leave the state intact."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """Serve this emulator over HTTP/1.1 on a real socket, in a background thread."""
        return EmulatorServer(self, host, port)

    # -- dispatch ------------------------------------------------------------------------

    def respond(self, request: httpx.Request) -> Reply:
        """The answer to one request (its body already read); streams get a ``feed``."""
        raw = request.url.raw_path.decode("ascii", "replace").partition("?")[0]
        parts = [unquote(p) for p in raw.strip("/").split("/")]
        if parts[:1] == ["v1"]:
            parts = parts[1:]
        origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        with self._lock:
            try:
                reply = self._dispatch(request, parts, origin)
            except ApiError as error:
                reply = error.reply()
            _dify_headers(reply)
            if not reply.stream:
                reply.release()
                reply.release = _nothing
            if reply.stream:
                cut = self._take(self._cuts, reply.route)
                reply.content_type = "text/event-stream; charset=utf-8"
                reply.headers["cache-control"] = "no-cache"
                reply.feed = Feed(
                    self._lock,
                    reply.task,
                    reply.prefix,
                    cut_after=cut.cut_after if cut else None,
                    delay=self.stream_delay,
                    ping=reply.ping,
                )
                reply.feed.on_close, reply.release = reply.release, _nothing
            return reply

    def _dispatch(self, request: httpx.Request, parts: list[str], origin: str) -> Reply:
        if request.method == "GET" and len(parts) == 3 and parts[::2] == ["files", "file-preview"]:
            # The signed download URLs Dify hands out: not an API operation, no key.
            f = self.files.get(parts[1])
            if f is None:
                raise ApiError(404, "not_found", "File not found.")
            return file_reply(f, attachment=True)
        found = self._router.find(request.method, parts)
        if found == 404 or (not isinstance(found, int) and _not_uuid(found[0], found[1])):
            return _HTML_404  # Werkzeug's page: no route (knowledge ids are UUID converters)
        if isinstance(found, int):
            message = (
                "The method is not allowed for the requested URL."
                if found == 405
                else "The requested URL was not found on the server."
            )
            raise ApiError(found, _STATUS_CODES[found], message)
        route, values = found
        app = self._authorize(route, request.headers.get("authorization", ""))
        fault = self._take(self._faults, route)
        if fault is not None:
            return Reply(fault.status, fault.body, headers=fault.headers)
        params, files, given = _params(route.row, values, request)
        release = self._take_slot(route, app)
        try:
            ctx = Ctx(self, route, params, files, app, origin, given)
            if route.knowledge:
                settle(ctx)  # the worker's progress since the last request
            result = route.handler(ctx)
        except BaseException:
            release()
            raise
        reply = result if isinstance(result, Reply) else Reply(200, result)
        if result is None:
            reply.status = 204
        reply.route = route
        reply.release = release  # a stream keeps its slot until it ends; others free it now
        return reply

    def _take_slot(self, route: Route, app: AppDefinition) -> Callable[[], None]:
        """Count a generation in flight for the app; 429 past its cap, as Dify's rate
        limit answers before any generation starts."""
        if not any(route.covers(name) for name in _GENERATING):
            return _nothing
        st = self.app_state(app)
        cap = app.max_concurrent_requests or self.max_concurrent_requests
        if cap and st.active >= cap:
            message = (
                "Too many requests. Please try again later. The current maximum "
                f"concurrent requests allowed for {st.app_id} is {cap}."
            )
            raise ApiError(429, "too_many_requests", message)
        st.active += 1

        def release() -> None:
            with self._lock:
                st.active -= 1

        return release

    def _authorize(self, route: Route, header: str) -> AppDefinition:
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401, "unauthorized", "Authorization header must be provided and start with 'Bearer'"
            )
        prefix = "dataset-" if route.knowledge else "app-"
        if not key.startswith(prefix) or (self._keys is not None and key not in self._keys):
            raise ApiError(401, "unauthorized", "Access token is invalid")
        return (self._keys or {}).get(key) or self.app

    @staticmethod
    def _take(rules: list[_Fault], route: Route | None) -> _Fault | None:
        for rule in rules:
            if rule.route is None or rule.route is route:
                rule.times -= 1
                if rule.times <= 0:
                    rules.remove(rule)
                return rule
        return None


def serve(
    host: str = "127.0.0.1",
    port: int = 5001,
    *,
    emulator: Emulator | None = None,
    log: IO[str] | None = None,
    announce: IO[str] | None = sys.stdout,
) -> None:
    """Serve an emulator in this thread until interrupted (Ctrl+C); prints the URL first."""
    serve_forever(emulator or Emulator(), host, port, log, announce)
