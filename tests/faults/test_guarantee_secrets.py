"""The key never leaks, even when the server echoes it; redirects never change what was asked
(issue 11, items 11 and 12). Real sockets, every client kind, the CLI in a subprocess."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dify_oapi import APIStatusError, DifyError, ResponseDecodeError

from .conftest import IDS, KEY, client_options
from .kit import Kit, kinds, src_root
from .server import Exchange, FaultServer, Handler, frames, redirect, respond, sse

CHAT = "/v1/chat-messages"
INFO = "/v1/info"
ASK: dict[str, Any] = {"query": "q", "user": "u"}
ENV = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}

# -- what a server may echo back -------------------------------------------------------------

HTML_200 = respond(
    body=f"<html><head><title>Welcome {KEY}</title></head><body>token={KEY}</body></html>".encode(),
    content_type="text/html; charset=utf-8",
)
ID_HEADER = respond(
    400,
    json={"code": "invalid_param", "message": f"key {KEY} is not valid", "status": 400},
    headers={"X-Request-Id": KEY, "X-Echo": f"Bearer {KEY}"},
)
ERROR_EVENT = sse(
    frames(
        [
            {"event": "message", **IDS, "answer": "partial"},
            {"event": "error", **IDS, "status": 400, "code": "bad", "message": f"no {KEY}"},
        ]
    )
)
ECHOES: dict[str, tuple[str, Handler, bool]] = {
    "html-200": ("GET", HTML_200, False),
    "x-request-id": ("GET", ID_HEADER, False),
    "error-event": ("POST", ERROR_EVENT, True),
}


def _route(server: FaultServer, echo: str) -> tuple[str, dict[str, Any], bool]:
    method, handler, streams = ECHOES[echo]
    server.route(method, CHAT if streams else INFO, handler)
    return ("chat.send", {**ASK, "stream": True}, True) if streams else ("dify.get_info", {}, False)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken repr is not a leak
        return f"<repr failed: {type(exc).__name__}>"


def leaks_in_error(exc: BaseException) -> list[str]:
    """Where the key shows in an exception: str, repr, args, fields, pickle."""
    views = {
        "str": str(exc),
        "repr": repr(exc),
        "args": _safe_repr(exc.args),
        "pickle": pickle.dumps(exc).decode("latin-1"),
    }
    for name in ("body", "headers", "request_id", "message", "code", "partial"):
        views[name] = _safe_repr(getattr(exc, name, None))
    partial = getattr(exc, "partial", None)
    if partial is not None:
        views["partial.events"] = _safe_repr(partial.events)
    return [where for where, text in views.items() if KEY in text]


def leaks_in_frames(exc: BaseException) -> list[str]:
    """Locals of the SDK's frames in the traceback (and in its chained exceptions) that hold
    the key: as text, or in their repr."""
    root = src_root()
    found, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_filename.startswith(root):
                for name, value in frame.f_locals.items():
                    text = value if isinstance(value, str) else _safe_repr(value)
                    if KEY in text:
                        where = (
                            f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}"
                        )
                        found.append(f"{where}:{name}")
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return found


def _fail(kit: Kit, op: str, args: dict[str, Any], streams: bool) -> DifyError:
    with pytest.raises(DifyError) as info:
        result = kit.call(op, **args)
        if streams:
            kit.all_events(result)
    return info.value


@pytest.mark.parametrize("echo", list(ECHOES))
@pytest.mark.parametrize("kind", kinds())
def test_an_echoed_key_is_masked_in_the_error_and_the_logs(
    server: FaultServer, make_kit: Any, caplog: pytest.LogCaptureFixture, kind: str, echo: str
) -> None:
    op, args, streams = _route(server, echo)
    caplog.set_level(logging.DEBUG)
    kit: Kit = make_kit(kind)
    error = _fail(kit, op, args, streams)
    assert isinstance(error, (ResponseDecodeError, APIStatusError)), repr(error)
    assert "***" in str(error) or "***" in repr(getattr(error, "body", ""))  # it was there
    assert leaks_in_error(error) == []
    assert leaks_in_frames(error) == []
    logged = [
        (r.name, r.levelname)
        for r in caplog.records
        # httpcore's own DEBUG trace prints response headers as received; it is not the SDK's
        # and is off unless a caller turns it on.
        if KEY in r.getMessage()
        and not (r.name.startswith("httpcore") and r.levelno == logging.DEBUG)
    ]
    assert logged == []


@pytest.mark.parametrize("kind", kinds())
def test_no_sdk_frame_holds_the_key_as_text_on_a_transport_failure(
    server: FaultServer, make_kit: Any, kind: str
) -> None:
    from .server import reset

    server.route("POST", CHAT, reset())
    kit: Kit = make_kit(kind)
    error = _fail(kit, "chat.send", ASK, False)
    assert leaks_in_error(error) == [] and leaks_in_frames(error) == []


def test_the_frame_check_sees_a_key_held_as_text() -> None:
    def holds(key: str) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError) as info:
        holds(KEY)
    # Only the SDK's frames are looked at; this one is the test's own.
    assert leaks_in_frames(info.value) == []
    code = compile(
        "def f(k):\n    raise ValueError('x')\n", os.path.join(src_root(), "x.py"), "exec"
    )
    space: dict[str, Any] = {}
    exec(code, space)
    with pytest.raises(ValueError) as info:
        space["f"](KEY)
    assert leaks_in_frames(info.value) == ["x.py:f:k"]


def test_batch_results_never_show_the_key(server: FaultServer) -> None:
    def answer(ex: Exchange) -> None:
        query = json.loads(ex.request.body or b"{}").get("query")
        {"html": HTML_200, "header": ID_HEADER}.get(query, respond(json={"answer": "ok"}))(ex)

    server.route("POST", CHAT, answer)
    from dify_oapi import Client

    with Client(**client_options(server, max_retries=0)) as client:
        items = [{"query": q, "user": "u"} for q in ("html", "header", "fine")]
        results = client.batch("chat.send", items)
    assert [r.ok for r in results] == [False, False, True]
    assert KEY not in repr(results) and KEY not in pickle.dumps(results).decode("latin-1")
    for result in results:
        if result.error is not None:
            assert leaks_in_error(result.error) == []


def _cli(server: FaultServer, *args: str, cwd: Path | None = None) -> str:
    env = {**ENV, "DIFY_API_KEY": KEY, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dify_oapi",
            "--base-url",
            server.base_url,
            "--max-retries",
            "0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )
    assert done.returncode != 0 or "batch" in args, done
    return done.stdout + done.stderr


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_the_cli_never_prints_an_echoed_key(server: FaultServer, json_out: bool) -> None:
    server.route("GET", INFO, HTML_200)
    server.route("POST", CHAT, ERROR_EVENT)
    server.route("GET", "/v1/parameters", ID_HEADER)
    flag = ["--json"] if json_out else []
    outputs = [
        _cli(server, *flag, "call", "dify.get_info"),
        _cli(server, *flag, "call", "dify.get_parameters"),
        _cli(server, *flag, "chat", "hello"),
    ]
    for out in outputs:
        assert out.strip() and KEY not in out, out
    assert len(server.requests) == 3


def test_a_cli_batch_output_file_never_holds_an_echoed_key(
    server: FaultServer, tmp_path: Path
) -> None:
    def answer(ex: Exchange) -> None:
        query = json.loads(ex.request.body or b"{}").get("query")
        handlers = {"html": HTML_200, "header": ID_HEADER}
        handlers.get(query, respond(json={"answer": "ok", **IDS}))(ex)

    server.route("POST", CHAT, answer)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [
        json.dumps({"id": q, "args": {"query": q, "user": "u"}}) for q in ("html", "header", "fine")
    ]
    source.write_text("\n".join(lines) + "\n")
    out = _cli(server, "batch", "chat.send", "-i", str(source), "-o", str(target), "--no-progress")
    written = target.read_text("utf-8")
    assert len(written.splitlines()) == 3 and '"ok"' in written
    assert KEY not in written and KEY not in out, written + out


# -- item 12: redirects never change what was asked ------------------------------------------

MOVED = "/v1/moved"


@pytest.mark.parametrize("follow", [False, True], ids=["no-follow", "follow"])
@pytest.mark.parametrize("status", [301, 302, 303])
@pytest.mark.parametrize("kind", kinds())
def test_a_redirected_post_is_never_replayed_as_a_get(
    server: FaultServer, make_kit: Any, kind: str, status: int, follow: bool
) -> None:
    server.route("POST", CHAT, redirect(server.origin + MOVED, status))
    server.route("GET", MOVED, respond(json={}))  # an empty success, if it were asked
    server.route("POST", MOVED, respond(json={"answer": "should not be reached"}))
    kit: Kit = make_kit(kind, follow_redirects=follow)
    with pytest.raises(APIStatusError) as info:
        kit.call("chat.send", **ASK)
    assert info.value.status_code == status and info.value.operation == "chat.send"
    assert [(r.method, r.path) for r in server.requests] == [("POST", CHAT)]
    with pytest.raises(APIStatusError):  # a stream too
        kit.call("chat.send", **ASK, stream=True)
    assert [r.path for r in server.requests] == [CHAT, CHAT]


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("kind", kinds())
def test_307_and_308_keep_the_method_and_the_body(
    server: FaultServer, make_kit: Any, kind: str, status: int
) -> None:
    server.route("POST", CHAT, redirect(MOVED, status))  # a relative location
    server.route("POST", MOVED, respond(json={"answer": "moved"}))
    kit: Kit = make_kit(kind, follow_redirects=True)
    assert kit.call("chat.send", **ASK, inputs={"topic": "é"}).answer == "moved"
    first, second = server.requests
    assert (second.method, second.path) == ("POST", MOVED)
    assert second.body == first.body and second.json()["inputs"] == {"topic": "é"}
    assert second.header("content-type") == "application/json"
    assert second.header("authorization") == f"Bearer {KEY}"  # same origin: kept
    # Without following, the redirect is a typed error and nothing is re-sent.
    nofollow: Kit = make_kit(kind)
    with pytest.raises(APIStatusError) as info:
        nofollow.call("chat.send", **ASK)
    assert info.value.status_code == status and len(server.requests) == 3


@pytest.mark.parametrize("status", [307, 308, 301])
@pytest.mark.parametrize("kind", kinds())
def test_authorization_never_follows_a_redirect_to_another_origin(
    server: FaultServer, other_server: FaultServer, make_kit: Any, kind: str, status: int
) -> None:
    method = "GET" if status == 301 else "POST"
    op, args = ("dify.get_info", {}) if method == "GET" else ("chat.send", ASK)
    path = INFO if method == "GET" else CHAT
    server.route(method, path, redirect(other_server.origin + MOVED, status))
    other_server.route(method, MOVED, respond(json={"name": "elsewhere", "answer": "elsewhere"}))
    kit: Kit = make_kit(kind, follow_redirects=True)
    kit.call(op, **args)
    (arrived,) = other_server.requests
    assert arrived.method == method and arrived.header("authorization") is None
    assert all(KEY not in value for _, value in arrived.headers)
