"""What every handler shares: registration, Dify's error answers, the call context, helpers.

A handler is registered under the ``service.name`` of a row and receives a :class:`Ctx`
with the validated request fields. It returns a JSON value (answered with 200), ``None``
(204) or a :class:`Reply`; it raises :class:`ApiError` for Dify's error answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from ._definition import AppDefinition
from ._routes import Route
from ._sse import Feed
from ._state import AppState, Ids, KnowledgeState, Record, StoredFile, Task, Upload


class Host(Protocol):
    """What handlers use of the emulator (``Emulator`` sits above the handlers)."""

    ids: Ids
    knowledge: KnowledgeState
    files: dict[str, StoredFile]
    tenant_id: str
    account_id: str
    indexing_seconds: float
    pipeline_app: AppDefinition

    def app_state(self, app: AppDefinition) -> AppState: ...
    def store(self, upload: Upload, created_by: str | None) -> StoredFile: ...
    def next_scripted(self) -> str | None: ...


Handler = Callable[["Ctx"], Any]
HANDLERS: dict[str, Handler] = {}


def handles(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS.update(dict.fromkeys(names, fn))
        return fn

    return register


class ApiError(Exception):
    """An error answer with Dify's body ``{"code", "message", "status"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def reply(self) -> Reply:
        return Reply(
            self.status, {"code": self.code, "message": self.message, "status": self.status}
        )


def server_error() -> ApiError:
    """Dify's answer to anything unhandled."""
    return ApiError(500, "unknown", "Internal Server Error")


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def invalid(message: str, code: str = "invalid_param") -> ApiError:
    return ApiError(400, code, message)


@dataclass
class Reply:
    """An answer: JSON ``data``, raw ``content``, or an event stream (``stream``) made of
    ``prefix`` events then the ``task``'s."""

    status: int = 200
    data: Any = None
    content: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    task: Task | None = None
    prefix: list[Record] = field(default_factory=list)
    release: Callable[[], None] = field(default=lambda: None, repr=False)  # a request slot
    ping: bool = True  # Dify opens workflow and chatflow streams with one; chat types have none
    feed: Feed | None = None  # set by the emulator for streams
    route: Route | None = None


@dataclass
class Ctx:
    """One call: the emulator, its route, validated fields ``p``, file parts, app, origin."""

    em: Host
    route: Route
    p: dict[str, Any]
    files: dict[str, Upload]
    app: AppDefinition
    origin: str
    #: The JSON body's own fields, before the SDK type's defaults fill the rest in.
    given: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> AppState:
        return self.em.app_state(self.app)

    @property
    def kb(self) -> KnowledgeState:
        return self.em.knowledge

    def id(self) -> str:
        return self.em.ids.new()

    def now(self) -> int:
        return self.em.ids.now()

    def file_url(self, f: StoredFile) -> str:
        """The signed download URL Dify hands out (served without a key)."""
        return f"{self.origin}/files/{f.id}/file-preview?timestamp={self.now()}&nonce=0&sign=emu"


# --- helpers ---------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """The answer in one-word chunks (each with its trailing space); they join back exactly."""
    return re.findall(r"\S+\s*|\s+", text)


def tokens(text: str) -> int:
    return len(text.split())


def usage(prompt: str, answer: str) -> Record:
    p, c = tokens(prompt), tokens(answer)
    return (
        {"prompt_tokens": p, "prompt_unit_price": "0.001", "prompt_price_unit": "0.001"}
        | {"prompt_price": f"{p * 1e-6:.7f}", "completion_tokens": c}
        | {"completion_unit_price": "0.002", "completion_price_unit": "0.001"}
        | {"completion_price": f"{c * 2e-6:.7f}", "total_tokens": p + c}
        | {"total_price": f"{p * 1e-6 + c * 2e-6:.7f}", "currency": "USD", "latency": 0.0}
    )


def page(items: list[Any], p: dict[str, Any]) -> Record:
    """A page-numbered answer: ``data``, ``has_more``, ``limit``, ``total``, ``page``."""
    number, limit = p.get("page", 1), p.get("limit", 20)
    if number < 1 or not 1 <= limit <= 100:
        raise invalid("page must be >= 1 and limit between 1 and 100")
    data = items[(number - 1) * limit : number * limit]
    more = number * limit < len(items)
    return {"data": data, "has_more": more, "limit": limit, "total": len(items), "page": number}


def after(items: list[Record], p: dict[str, Any], what: str, key: str = "last_id") -> Record:
    """A cursor page: the items after the one whose id is ``p[key]``."""
    limit = p.get("limit", 20)
    if not 1 <= limit <= 100:
        raise invalid("limit must be between 1 and 100")
    if p.get(key):
        ids = [i["id"] for i in items]
        if p[key] not in ids:
            raise not_found(f"{what} Not Exists.")
        items = items[ids.index(p[key]) + 1 :]
    return {"limit": limit, "has_more": len(items) > limit, "data": items[:limit]}


def require_mode(ctx: Ctx, *modes: str) -> None:
    if ctx.app.mode is not None and ctx.app.mode not in modes:
        code = {"workflow": "not_workflow_app", "completion": "not_completion_app"}
        raise invalid(
            "Please check if your app mode matches the right API route.",
            code.get(modes[0], "not_chat_app"),
        )


def end_user(ctx: Ctx, user: str | None) -> Record:
    users, iso = ctx.state.end_users, ctx.em.ids.iso()
    if (user or "") not in users:
        users[user or ""] = (
            {"id": ctx.id(), "tenant_id": ctx.em.tenant_id, "app_id": ctx.state.app_id}
            | {"type": "service-api", "external_user_id": user, "name": user}
            | {"is_anonymous": not user, "session_id": user or ctx.id()}
            | {"created_at": iso, "updated_at": iso}
        )
    return users[user or ""]


def reply_text(ctx: Ctx, query: str, inputs: dict[str, Any], annotated: bool = False) -> str:
    """An annotation's answer, a scripted reply, the app's replies, else an echo."""
    st = ctx.state
    for note in st.annotations.values() if annotated and st.annotation_reply else ():
        if note["question"].strip().casefold() == query.strip().casefold():
            note["hit_count"] += 1
            return str(note["answer"])
    scripted = ctx.em.next_scripted()
    if scripted is not None:
        return scripted
    replies = ctx.app.replies
    if callable(replies):
        try:
            return replies(query, inputs)
        except Exception as exc:  # the app's own code failed: Dify's unhandled answer
            raise server_error() from exc
    if replies and st.replies_used < len(replies):
        st.replies_used += 1
        return replies[st.replies_used - 1]
    return query


def streaming(ctx: Ctx, task: Task, blocking: Callable[[], Any]) -> Any:
    """A stream of the task's events, or (blocking mode) its answer once it has run."""
    if ctx.p.get("response_mode") == "streaming":
        return Reply(stream=True, task=task, ping=task.run_id is not None)
    task.drain()
    return blocking()


def reply_bytes(reply: Reply) -> bytes:
    """The body of a non-stream answer (empty for a 204)."""
    if reply.content is not None:
        return reply.content
    return b"" if reply.data is None and reply.status == 204 else msgspec.json.encode(reply.data)


VERSION = "1.14.2"  # the Dify release the emulator answers as (X-Version)
_UUID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
_PYDANTIC = "https://errors.pydantic.dev/2.12/v/"


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def pydantic_error(model: str, name: str, text: str, kind: str, value: Any) -> ApiError:
    """Dify's 400 for a payload pydantic refused: the validation text as the message."""
    shown = f"input_value={value!r}, input_type={type(value).__name__}"
    message = f"1 validation error for {model}\n{name}\n  {text} [type={kind}, {shown}]"
    return invalid(f"{message}\n    For further information visit {_PYDANTIC}{kind}")


def require_user(ctx: Ctx) -> None:
    """Dify refuses an empty ``user`` on the generating routes."""
    if ctx.p.get("user") == "":
        raise invalid("Arg user must be provided.")


def require_uuid(ctx: Ctx, name: str, model: str, wording: str) -> None:
    value = ctx.p.get(name)
    if isinstance(value, str) and value and not is_uuid(value):
        raise pydantic_error(model, name, f"Value error, {wording}", "value_error", value)


def max_length(ctx: Ctx, name: str, limit: int, model: str) -> None:
    value = ctx.p.get(name)
    if isinstance(value, str) and len(value) > limit:
        text = f"String should have at most {limit} characters"
        raise pydantic_error(model, name, text, "string_too_long", value)
