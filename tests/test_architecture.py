"""The architecture holds: the generic core names no Dify fact, a whole new service comes from
a table file and a types module alone, and modules import downward only."""

from __future__ import annotations

import ast
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dify_oapi import AsyncClient, Client, NotFoundError, WaiterFailedError
from dify_oapi._services import SERVICE_NAMES, TABLES

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dify_oapi"

#: The generic core (issue: "client, engine, transport, streaming, request, response,
#: services, waiters, exceptions, retry, pagination"), plus the modules those are built on.
CORE = [
    "_client.py",
    "_engine.py",
    "_transport",
    "_streaming",
    "_request.py",
    "_response.py",
    "_services.py",
    "_waiters.py",
    "_exceptions.py",
    "_retry.py",
    "_pagination.py",
    "_table.py",
    "_table_files.py",
    "_options.py",
    "_hooks.py",
    "_headers.py",
    "_secret.py",
    "_codecs.py",
]

#: Words that are Dify names but also the ordinary vocabulary code is written in: SSE's own
#: field names (data, event, id, retry), HTTP's (status, content, query), Python's and the
#: SDK's own (send, get, stop, update, list, chunk, tag...; ``answer`` is the text a stream
#: assembled from what event facts declare as deltas). Compound Dify names (response_mode,
#: workflow_run_id, message_end), service names and event names are never excused.
GENERIC = {
    "action",
    "answer",
    "batch",
    "bind",
    "chunk",
    "code",
    "content",
    "data",
    "detail",
    "error",
    "event",
    "events",
    "file",
    "files",
    "get",
    "id",
    "items",
    "key",
    "keyword",
    "limit",
    "list",
    "message",
    "mode",
    "name",
    "page",
    "position",
    "query",
    "reason",
    "retry",
    "send",
    "source",
    "status",
    "stop",
    "streaming",
    "tag",
    "text",
    "total",
    "type",
    "update",
    "upload",
    "url",
    "value",
}


def _core_files() -> Iterator[Path]:
    for entry in CORE:
        path = PACKAGE / entry
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _union_members(tp: Any) -> list[type]:
    return list(getattr(tp, "__args__", None) or (tp,))


def _dify_names() -> dict[str, str]:
    """Every Dify service, operation, request field and event name, with what it is."""
    names: dict[str, str] = {}
    for service in SERVICE_NAMES:
        names[service] = "service"
        table = TABLES[service]
        for waiter in table.waiters:
            names[waiter.method_name] = "waiter"
        for ep in table.endpoints:
            names.setdefault(ep.name, "operation")
            for alias in ep.aliases:
                for part in alias.split("."):
                    names.setdefault(part, "operation alias")
            for field in ep.fields:
                names.setdefault(field, f"request field of {ep.qualname}")
            if ep.stream is not None:
                for member in _union_members(ep.stream):
                    tag = member.__struct_config__.tag
                    names.setdefault(tag, "event")
                    for f in msgspec.structs.fields(member):
                        names.setdefault(f.name, f"field of the {tag} event")
    return {
        n: what for n, what in names.items() if n not in GENERIC or what == "service" or "_" in n
    }


def _identifiers(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Names and string constants of code, docstrings left out (prose may explain Dify)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.lineno, node.name
        elif isinstance(node, ast.arg) or (isinstance(node, ast.keyword) and node.arg):
            yield node.lineno, node.arg
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (str, bytes))
            and id(node) not in docstrings
        ):
            text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            yield node.lineno, text


def test_the_generic_core_names_no_dify_service_operation_field_or_event() -> None:
    dify = _dify_names()
    # The check has teeth: the tables do name these.
    assert {
        "chat",
        "get_indexing_status",
        "response_mode",
        "message_end",
        "workflow_run_id",
    } <= dify.keys()
    found = []
    for path in _core_files():
        for line, text in _identifiers(ast.parse(path.read_text("utf-8"))):
            if text in dify:
                found.append(f"{path.relative_to(PACKAGE)}:{line}: {text!r} ({dify[text]})")
    assert found == []


# -- a whole new service from a table file and a types module ----------------------------------

TYPES_MODULE = """
from typing import Any, ClassVar, Union

import msgspec

from dify_oapi.types import Model, Request, UNSET, UnsetType


class AskRequest(Request):
    question: str
    mode: str | UnsetType = UNSET


class Answer(Model):
    reply: str = ""
    ticket: str | None = None
    score: float | None = None


class Chunk(Model, tag_field="kind", tag="chunk"):
    ids: ClassVar[tuple[str, ...]] = ("ticket",)
    skip: ClassVar[bool] = False
    delta: ClassVar[str] = "piece"
    replaces: ClassVar[bool] = False
    whole_after: ClassVar[tuple[str, ...]] = ()
    final: ClassVar[bool] = False
    opens: ClassVar[bool] = False
    closes: ClassVar[bool] = False
    raises: ClassVar[Any] = None
    failure: ClassVar[Any] = None
    collect: ClassVar[tuple[str, ...]] = ()
    sets: ClassVar[dict[str, Any]] = {}
    replay: ClassVar[tuple[str, ...]] = ()

    ticket: str | None = None
    piece: str = ""


class Verdict(Chunk, tag="verdict"):
    delta: ClassVar[str] = ""
    final: ClassVar[bool] = True
    collect: ClassVar[tuple[str, ...]] = ("score",)

    score: float | None = None


Tick = Union[Chunk, Verdict]


class ListThingsRequest(Request):
    cursor: int | UnsetType = UNSET
    size: int | UnsetType = UNSET


class Thing(Model):
    serial: str
    state: str = ""


class ThingPage(Model):
    things: list[Thing] = []
    more: bool | None = None


class GetThingRequest(Request):
    serial: str


class ThingList(Model):
    things: list[Thing] = []
"""

TABLE = """
[service]
key = "app"
doc = "A service that exists only in this test."

[service.mode_field]
name = "mode"
streaming = "live"
blocking = "whole"

[service.errors]
code = "reason"
message = ["detail"]

[service.retry]
retry_codes = ["busy"]

[paginators.numbered]
kind = "page"
token = "cursor"
items = "things"
more = "more"
limit = "size"

[[waiter]]
name = "ready"
operation = "get_things"
items = "things"
key = "serial"
status = "state"
success = ["ready"]
failure = ["broken"]
delay = 0

[[endpoint]]
name = "ask"
method = "POST"
path = "/ask"
request = "{mod}:AskRequest"
response = "{mod}:Answer"
stream = "{mod}:Tick"
doc = "Ask; stream=True yields ticks."
collect = {{ text = "reply" }}

[[endpoint]]
name = "list_things"
method = "GET"
path = "/things"
request = "{mod}:ListThingsRequest"
response = "{mod}:ThingPage"
paginate = "numbered"

[[endpoint]]
name = "gone"
method = "GET"
path = "/nowhere"

[[endpoint]]
name = "get_things"
method = "GET"
path = "/things/{{serial}}"
request = "{mod}:GetThingRequest"
response = "{mod}:ThingList"
"""


class Oracle:
    """A server for the new service: it knows nothing of the SDK, only the wire."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.polls = 0
        self.busy_once = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v2/ask":
            body = json.loads(request.content)
            if body.get("question") == "busy?" and self.busy_once:
                self.busy_once = False
                return httpx.Response(429, json={"reason": "busy", "detail": "try again"})
            if body["mode"] == "whole":
                return httpx.Response(200, json={"reply": "42", "ticket": "t-1", "score": 0.9})
            frames = [
                {"kind": "chunk", "ticket": "t-1", "piece": "4"},
                {"kind": "chunk", "ticket": "t-1", "piece": "2"},
                {"kind": "verdict", "ticket": "t-1", "score": 0.9},
                {"kind": "chunk", "ticket": "t-1", "piece": "never read"},
            ]
            sse = b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse)
        if path == "/v2/things":
            cursor = int(request.url.params.get("cursor", "1"))
            things = [{"serial": f"s{cursor}{i}"} for i in range(2)]
            return httpx.Response(200, json={"things": things, "more": cursor < 3})
        if path.startswith("/v2/things/"):
            self.polls += 1
            state = "ready" if self.polls >= 3 else "warming"
            if path.endswith("/bad"):
                state = "broken"
            return httpx.Response(200, json={"things": [{"serial": "s", "state": state}]})
        return httpx.Response(404, json={"reason": "nowhere", "detail": "no route"})


@pytest.fixture
def new_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    module = "made_up_types_for_a_test"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(TYPES_MODULE), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    table = tmp_path / "oracle.toml"
    table.write_text(TABLE.format(mod=module), "utf-8")
    return table


def _check(oracle: Oracle, stream: Any, events: list[Any]) -> None:
    assert [type(e).__name__ for e in events] == ["Chunk", "Chunk", "Verdict"]
    assert stream.answer == "42" and stream.state.ids == {"ticket": "t-1"}
    asked = [json.loads(r.content) for r in oracle.requests if r.url.path == "/v2/ask"]
    assert asked[:2] == [{"question": "q", "mode": "whole"}, {"question": "q", "mode": "live"}]


def test_a_new_service_from_a_table_file_and_a_types_module(new_service: Path) -> None:
    oracle = Oracle()
    with Client(
        api_key="app-k",
        base_url="http://oracle.test/v2",
        extra_endpoints=new_service,
        transport=httpx.MockTransport(oracle),
    ) as client:
        assert client.call("oracle.ask", question="q").reply == "42"
        service: Any = client.oracle  # not in the shipped stubs: a user's own table
        stream = service.ask(question="q", stream=True)
        _check(oracle, stream, list(stream))  # the new final event ends it
        collected = service.ask(question="q", collect=True)
        assert (collected.reply, collected.ticket, collected.score) == ("42", "t-1", 0.9)
        serials = [t.serial for t in service.iter_things(size=2)]
        assert serials == ["s10", "s11", "s20", "s21", "s30", "s31"]
        pages = [r.url.params.get("cursor") for r in oracle.requests if r.url.path == "/v2/things"]
        assert pages == [None, "2", "3"]
        assert [t.state for t in service.wait_for_ready(serial="s")] == ["ready"]
        with pytest.raises(WaiterFailedError, match="s: failed"):
            service.wait_for_ready(serial="bad")
        # Its retry codes and error body come from its header: a 429 "busy" is answered before
        # any work, so even this POST is sent again; a 404's code and message are read as said.
        assert service.ask(question="busy?").reply == "42"
        assert sum(r.url.path == "/v2/ask" for r in oracle.requests) == 5
        with pytest.raises(NotFoundError) as missing:
            service.gone()
        assert (missing.value.code, missing.value.message) == ("nowhere", "no route")


async def test_a_new_service_from_a_table_file_async(new_service: Path) -> None:
    oracle = Oracle()
    async with AsyncClient(
        api_key="app-k",
        base_url="http://oracle.test/v2",
        extra_endpoints=new_service,
        transport=httpx.MockTransport(oracle),
    ) as client:
        service: Any = client.oracle
        assert (await service.ask(question="q")).reply == "42"
        stream = await service.ask(question="q", stream=True)
        _check(oracle, stream, [e async for e in stream])
        assert [t.serial async for t in service.iter_things(size=2)][-1] == "s31"
        assert [t.state for t in await service.wait_for_ready(serial="s")] == ["ready"]


# -- layers ----------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Every import between the package's modules: top level, under TYPE_CHECKING, in
    functions alike (a lazy import is still a dependency)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                if node.level:
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def test_modules_import_downward_only() -> None:
    graph = _imports()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_no_hand_written_module_is_over_about_600_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text("utf-8").splitlines())) > 650
    }
    assert long == {}


def test_the_package_listing_reads_as_the_architecture() -> None:
    listing = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith("__"))
    for expected in ("endpoints", "types", "_table.py", "_engine.py", "_transport", "_streaming"):
        assert expected in listing
    assert (PACKAGE.parents[1] / "docs" / "architecture.md").is_file()
