"""Bad values fail loudly before sending; options are checked where given and share one
limit; decisions go by type, never by message text (issue 11, items 8, 14 and 15)."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dify_oapi import AsyncClient, Client, ConfigurationError, RequestValidationError

from .conftest import client_options
from .kit import Kit, kinds, src_root
from .server import Exchange, FaultServer, respond

CHAT = "/v1/chat-messages"
INFO = "/v1/info"
ASK: dict[str, Any] = {"query": "q", "user": "u"}
REPLY: dict[str, Any] = {
    "action": "enable",
    "embedding_provider_name": "p",
    "embedding_model_name": "m",
}
SYNC_ASYNC = kinds(only=("sync", "async"))


# -- item 8: bad values fail loudly, before sending -----------------------------------------


BAD_VALUES = [
    pytest.param("chat.send", {**ASK, "query": b"hi"}, "$.query", id="bytes-for-str"),
    pytest.param("chat.send", {**ASK, "user": bytearray(b"u")}, "$.user", id="bytearray-for-str"),
    pytest.param(
        "chat.send", {**ASK, "inputs": {"topic": b"x"}}, "$.inputs.topic", id="bytes-in-inputs"
    ),
    pytest.param(
        "chat.update_annotation_reply",
        {**REPLY, "score_threshold": math.nan},
        "$.score_threshold",
        id="nan",
    ),
    pytest.param(
        "chat.update_annotation_reply",
        {**REPLY, "score_threshold": math.inf},
        "$.score_threshold",
        id="inf",
    ),
    pytest.param(
        "chat.send", {**ASK, "inputs": {"n": [1.0, -math.inf]}}, "$.inputs.n[1]", id="-inf-nested"
    ),
    pytest.param(
        "knowledge.retrieve",
        {
            "dataset_id": "5a1e0000-0000-4000-8000-000000000007",
            "query": "q",
            "retrieval_model": {
                "search_method": "semantic_search",
                "reranking_enable": False,
                "top_k": 3,
                "score_threshold_enabled": True,
                "score_threshold": math.nan,
            },
        },
        "$.retrieval_model.score_threshold",
        id="nan-in-a-struct",
    ),
]


@pytest.mark.parametrize(("op", "args", "field"), BAD_VALUES)
@pytest.mark.parametrize("kind", SYNC_ASYNC)
def test_a_value_json_cannot_carry_is_refused_naming_the_field(
    server: FaultServer, make_kit: Any, kind: str, op: str, args: dict[str, Any], field: str
) -> None:
    kit: Kit = make_kit(kind)
    with pytest.raises(RequestValidationError) as info:
        kit.call(op, **args)
    assert info.value.field == field
    assert info.value.operation == op and str(info.value).startswith(f"{op}: ")
    assert field in str(info.value)
    assert server.accepted == 0  # not even a connection


BAD_HEADERS = [
    pytest.param({"X-Trace": "a\r\nX-Injected: 1"}, id="crlf"),
    pytest.param({"X-Trace": "a\nb"}, id="lf"),
    pytest.param({"X-Trace": "a\x00b"}, id="nul"),
    pytest.param({"X-Trace": "a\x7fb"}, id="del"),
    pytest.param({"X-Trace": "a\x1bb"}, id="esc"),
    pytest.param({"X-Trace": "caf\u00e9"}, id="non-ascii"),
    pytest.param({"Bad Name": "v"}, id="space-in-name"),
    pytest.param({"X:Y": "v"}, id="colon-in-name"),
    pytest.param({"": "v"}, id="empty-name"),
    pytest.param({"X-Trace\r\n": "v"}, id="crlf-in-name"),
    pytest.param({"X-Trace": 7}, id="non-str-value"),
]


@pytest.mark.parametrize("headers", BAD_HEADERS)
@pytest.mark.parametrize("kind", SYNC_ASYNC)
def test_a_bad_header_is_a_value_error_at_the_call(
    server: FaultServer, make_kit: Any, kind: str, headers: dict[str, Any]
) -> None:
    server.route("POST", CHAT, respond(json={"answer": "a"}))
    kit: Kit = make_kit(kind)
    with pytest.raises(ValueError, match="header"):
        kit.call("chat.send", **ASK, extra_headers=headers)
    with pytest.raises(ValueError, match="header"):
        kit.call("chat.send", **ASK, stream=True, extra_headers=headers)
    with pytest.raises(ConfigurationError, match="header"):  # a ValueError too
        Client(**client_options(server, default_headers=headers))
    with pytest.raises(ConfigurationError, match="header"):
        kit.client.with_options(default_headers=headers)
    assert server.accepted == 0
    # A tab is allowed in a value; a good header goes out as given.
    kit.call("chat.send", **ASK, extra_headers={"X-Trace": "a\tb"})
    assert server.requests[0].header("x-trace") == "a\tb"


# -- item 15: options are checked where given, and share one limit ----------------------------

BAD_OPTIONS = [
    {"max_retries": -1},
    {"max_retries": 1.5},
    {"max_retries": True},
    {"timeout": -1},
    {"timeout": "fast"},
    {"deadline": 0},
    {"idle_timeout": -2.0},
    {"base_url": "ftp://example.com"},
    {"base_url": "https://h/v1?x=1"},
    {"api_key": ""},
    {"api_key": "key with spaces"},
    {"max_json_bytes": 0},
    {"max_event_bytes": -5},
    {"default_headers": ["not", "a", "mapping"]},
]


@pytest.mark.parametrize(
    "bad", BAD_OPTIONS, ids=lambda b: f"{next(iter(b))}={next(iter(b.values()))!r}"
)
@pytest.mark.parametrize("cls", [Client, AsyncClient], ids=["sync", "async"])
def test_with_options_checks_like_the_constructor(
    server: FaultServer, cls: type[Any], bad: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError) as by_constructor:
        cls(**client_options(server, **bad))
    parent = cls(**client_options(server))
    with pytest.raises(ConfigurationError) as by_copy:
        parent.with_options(**bad)
    # The same check, the same words.
    assert str(by_copy.value).endswith(str(by_constructor.value).split(": ", 1)[-1])


def slow(seconds: float) -> Any:
    def handler(ex: Exchange) -> None:
        time.sleep(seconds)
        respond(json={"name": "slow"})(ex)

    return handler


@pytest.mark.parametrize("kind", SYNC_ASYNC)
def test_a_copy_shares_its_parents_limit(server: FaultServer, make_kit: Any, kind: str) -> None:
    # The transport itself has no limit, so only the SDK's one limit holds the line.
    server.route("GET", INFO, slow(0.15))
    transport = httpx.HTTPTransport() if kind == "sync" else httpx.AsyncHTTPTransport()
    kit: Kit = make_kit(kind, limits=httpx.Limits(max_connections=2), transport=transport)
    copies = [kit.client.with_options(timeout=5.0), kit.client.with_options(max_retries=0)]
    clients = [kit.client, *copies] * 2
    if kit.is_async:
        import asyncio

        async def all_at_once() -> list[Any]:
            return await asyncio.gather(*(c.dify.get_info() for c in clients))

        results = kit.run(all_at_once())
    else:
        results = []
        threads = [
            threading.Thread(target=lambda c=c: results.append(c.dify.get_info())) for c in clients
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert [r.name for r in results] == ["slow"] * 6
    assert server.stats.max_in_flight == 2


FIRST_USE = textwrap.dedent(
    """
    import sys, threading, traceback
    from dify_oapi import AsyncClient, Client
    from dify_oapi.types import ChatRequest

    base = sys.argv[1]
    clients = [Client(api_key="app-k", base_url=base, max_retries=0) for _ in range(2)]
    barrier = threading.Barrier(32)
    failures = []

    def work(i):
        try:
            client = clients[i % 2] if i % 4 else Client(api_key="app-k", base_url=base)
            barrier.wait(10)
            kind = i % 8
            if kind == 0:
                assert client.dify.get_info().name == "n"
            elif kind == 1:
                assert client.chat.send(query="q", user="u").answer == "a"
            elif kind == 2:
                assert client.call("chat.send", ChatRequest(query="q", user="u")).answer == "a"
            elif kind == 3:
                stream = client.chat.send(query="q", user="u", stream=True)
                assert [type(e).__name__ for e in stream] == ["MessageEvent", "MessageEndEvent"]
            elif kind == 4:
                assert client.chat.list_conversations(user="u").data == []
            elif kind == 5:
                client.knowledge.list_datasets()
            elif kind == 6:
                assert client.completion.send(user="u").answer == "a"
            else:
                AsyncClient(api_key="app-k", base_url=base).chat
                assert sorted(client.operations)[0]
                assert client.chat.upload_file(file=("a.txt", b"hi"), user="u").id == "f"
        except BaseException:
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    print("failures:", len(failures))
    for f in failures:
        print(f)
    """
)


def test_first_use_under_32_threads_at_once(server: FaultServer) -> None:
    sse_body = (
        b'data: {"event": "message", "task_id": "t", "message_id": "m", "answer": "a"}\n\n'
        b'data: {"event": "message_end", "task_id": "t", "message_id": "m", "id": "m"}\n\n'
    )

    def chat(ex: Exchange) -> None:
        if b'"streaming"' in (ex.request.body or b""):
            respond(body=sse_body, content_type="text/event-stream")(ex)
        else:
            respond(json={"answer": "a"})(ex)

    server.route("GET", INFO, respond(json={"name": "n"}))
    server.route("POST", CHAT, chat)
    server.route("POST", "/v1/completion-messages", respond(json={"answer": "a"}))
    server.route("GET", "/v1/conversations", respond(json={"data": [], "has_more": False}))
    server.route("GET", "/v1/datasets", respond(json={"data": [], "has_more": False}))
    server.route("POST", "/v1/files/upload", respond(json={"id": "f", "name": "a.txt"}))
    for _ in range(3):  # a fresh interpreter each time: every cache starts cold
        result = subprocess.run(
            [sys.executable, "-c", FIRST_USE, server.base_url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("failures: 0"), result.stdout + result.stderr


# -- item 14: decisions by type, never by message text -----------------------------------------


def _exception_names(tree: ast.AST) -> set[str]:
    """Names bound to exceptions: ``except ... as name`` and parameters typed as errors."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                hint = ast.unparse(arg.annotation) if arg.annotation else ""
                if any(word in hint for word in ("Error", "Exception", "BaseException")):
                    names.add(arg.arg)
    return names


def _text_of(node: ast.AST, errors: set[str]) -> bool:
    """Whether ``node`` is an exception's text: ``str(e)``, ``repr(e)``, ``f"{e}"``,
    ``format(e)``, ``e.args``, ``"%s" % e`` or ``e.__str__()``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        return node.func.id in ("str", "repr", "format", "ascii") and _names_an_error(
            node.args[0], errors
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("__str__", "__repr__") and _names_an_error(
            node.func.value, errors
        )
    if isinstance(node, ast.JoinedStr):
        return any(
            isinstance(v, ast.FormattedValue) and _names_an_error(v.value, errors)
            for v in node.values
        )
    if isinstance(node, ast.Attribute) and node.attr in ("args", "message", "strerror"):
        return _names_an_error(node.value, errors)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _names_an_error(node.right, errors)
    return False


def _names_an_error(node: ast.AST, errors: set[str]) -> bool:
    return isinstance(node, ast.Name) and node.id in errors


def _is_text(node: ast.AST, errors: set[str], tainted: set[str]) -> bool:
    """An exception's text, or text made from it: ``str(e).lower()``, ``e.args[0]``, a name
    assigned from one of these."""
    while True:
        if _text_of(node, errors) or (isinstance(node, ast.Name) and node.id in tainted):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        elif isinstance(node, (ast.Subscript, ast.Attribute)):
            node = node.value
        else:
            return False


def text_decisions(source: str) -> list[str]:
    """Each decision that reads an exception's text: an ``if``/``while``/ternary/``assert``
    test, a comparison, a ``match`` subject or a comprehension filter; ``line: code``."""
    tree = ast.parse(source)
    errors = _exception_names(tree)
    tainted: set[str] = set()
    for node in ast.walk(tree):
        assigned = isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
        if assigned and _is_text(node.value, errors, tainted):  # type: ignore[union-attr,arg-type]
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[union-attr]
            tainted |= {t.id for t in targets if isinstance(t, ast.Name)}
    tests: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            tests.append(node.test)
        elif isinstance(node, ast.Compare):
            tests.append(node)
        elif isinstance(node, ast.Match):
            tests.append(node.subject)
        elif isinstance(node, ast.comprehension):
            tests.extend(node.ifs)
    found = {
        f"{test.lineno}: {ast.unparse(test)}"
        for test in tests
        if any(_is_text(n, errors, tainted) for n in ast.walk(test))
    }
    return sorted(found)


def test_the_scanner_finds_decisions_by_message_text() -> None:
    bad = textwrap.dedent(
        """
        def retry(exc: Exception) -> bool:
            return "timed out" in str(exc)
        try:
            pass
        except OSError as e:
            text = repr(e)
            if text.startswith("SSL"):
                kind = 1
            elif f"{e}" == "x" or e.args[0] == "y":
                kind = 2
            kind = 3 if "reset" in "%s" % e else 4
            match str(e):
                case _:
                    pass
        """
    )
    assert {int(hit.split(":")[0]) for hit in text_decisions(bad)} == {3, 8, 10, 12, 13}
    fine = textwrap.dedent(
        """
        try:
            pass
        except OSError as e:
            message = f"failed: {e}"  # shown, not decided on
            if isinstance(e, TimeoutError) or e.errno == 104:
                raise ValueError(message) from None
        """
    )
    assert text_decisions(fine) == []


def test_no_decision_reads_an_exceptions_text() -> None:
    root = Path(src_root())
    found = {}
    for path in sorted(root.rglob("*.py")):
        hits = text_decisions(path.read_text("utf-8"))
        if hits:
            found[str(path.relative_to(root))] = hits
    assert found == {}
