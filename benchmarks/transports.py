"""Is each httpx transport sound enough to carry this SDK? ``python benchmarks/transports.py``

For httpx's own transport, httpx-aiohttp, httpx-curl-cffi and the SDK's own urllib3 transport
(``Client(backend="urllib3")``), sync and async, through this SDK's clients against the
scriptable raw-socket server of ``tests/faults/server.py`` on 127.0.0.1, it checks: a read
timeout in the middle of a stream, a connect timeout, the pool limit, a proxy, TLS
verification, cancellation (async), and the never-re-send rule: a connection that drops
after the request was written must not be reported as a connect failure, and a POST must
reach the server once, also when it went out on a reused keep-alive connection. Prints a
matrix and writes ``transports.json``; ``TRANSPORTS.md`` has the findings. Every wait is
bounded; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
_spec = importlib.util.spec_from_file_location(
    "fault_server", HERE.parent / "tests/faults/server.py"
)
assert _spec is not None and _spec.loader is not None
fs = importlib.util.module_from_spec(_spec)
sys.modules["fault_server"] = fs
_spec.loader.exec_module(fs)

import payloads as p  # noqa: E402

from dify_oapi import AsyncClient, Client  # noqa: E402

KINDS = [("httpx", False), ("urllib3", False), ("curl", False)]
KINDS += [("httpx", True), ("aiohttp", True), ("curl", True)]
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
CHAT = "/v1/chat-messages"


def make(name: str, is_async: bool, **kw: Any) -> Any:
    """A transport; ``kw``: limits, proxy (URL), cafile (a CA bundle to trust)."""
    limits = kw.get("limits") or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    proxy, cafile = kw.get("proxy"), kw.get("cafile")
    ctx: Any = ssl.create_default_context(cafile=cafile) if cafile else True
    if name == "httpx":
        cls = httpx.AsyncHTTPTransport if is_async else httpx.HTTPTransport
        return cls(limits=limits, proxy=proxy, verify=ctx)
    if name == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(
            limits=limits, proxy=httpx.Proxy(proxy) if proxy else None, verify=ctx
        )
    if name == "urllib3":
        from dify_oapi._transport._urllib3 import Urllib3Transport

        return Urllib3Transport(limits=limits, proxy=proxy, verify=ctx)
    from curl_cffi import CurlOpt
    from httpx_curl_cffi import AsyncCurlTransport, CurlTransport

    # curl takes no SSLContext (it may not be built on OpenSSL): a CA file goes in as CAINFO.
    extra: dict[str, Any] = {"curl_options": {CurlOpt.CAINFO: cafile}} if cafile else {}
    if proxy:
        extra["proxy"] = proxy
    if is_async:
        return AsyncCurlTransport(max_connections=limits.max_connections or 10, **extra)
    return CurlTransport(**extra)


def client(name: str, is_async: bool, base_url: str, **kw: Any) -> Any:
    options = {k: kw.pop(k) for k in ("timeout", "max_retries", "limits") if k in kw}
    transport = make(name, is_async, limits=options.get("limits"), **kw)
    cls = AsyncClient if is_async else Client
    return cls(api_key=p.API_KEY, base_url=base_url, transport=transport, **options)


def failure(fn: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """The exception ``fn()`` raised (None if it returned) and how long it took."""
    start = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # the exception is the result
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


def root(exc: BaseException | None) -> str:
    """The transport-level cause (the httpx exception under the SDK's typed error)."""
    seen = exc
    while seen is not None and not isinstance(seen, httpx.HTTPError):
        seen = seen.__cause__ or seen.__context__
    return type(seen or exc).__name__ if (seen or exc) else "none"


def stream_all(name: str, is_async: bool, url: str, **kw: Any) -> Callable[[], Any]:
    def sync() -> None:
        with (
            client(name, False, url, **kw) as c,
            c.chat.send(query="q", user="u", stream=True) as s,
        ):
            for _ in s:
                pass

    async def coro() -> None:
        c = client(name, True, url, **kw)
        try:
            async with await c.chat.send(query="q", user="u", stream=True) as s:
                async for _ in s:
                    pass
        finally:
            await c.close()

    return (lambda: asyncio.run(coro())) if is_async else sync


def chat_once(name: str, is_async: bool, url: str, **kw: Any) -> Callable[[], Any]:
    def sync() -> None:
        with client(name, False, url, **kw) as c:
            c.chat.send(query="q", user="u")

    async def coro() -> None:
        c = client(name, True, url, **kw)
        try:
            await c.chat.send(query="q", user="u")
        finally:
            await c.close()

    return (lambda: asyncio.run(coro())) if is_async else sync


EVENT = p.frame({"event": "message", **p._ids(), "id": p.MESSAGE_ID, "answer": "hi"})


def check_read_timeout(name: str, is_async: bool) -> dict[str, Any]:
    """One event, then silence: the stream must end by the 0.5 s read timeout."""
    with fs.FaultServer() as srv:
        srv.route("POST", CHAT, fs.sse([EVENT], end="stall"))
        timeout = httpx.Timeout(5.0, read=0.5)
        exc, took = failure(
            stream_all(name, is_async, srv.base_url, timeout=timeout, max_retries=0)
        )
    ok = exc is not None and took < 3.0
    return {"ok": ok, "detail": f"{type(exc).__name__} ({root(exc)}) after {took:.2f} s"}


def check_connect_timeout(name: str, is_async: bool) -> dict[str, Any]:
    jam = fs.backlogged()
    try:
        url = f"http://127.0.0.1:{jam.port}/v1"
        timeout = httpx.Timeout(5.0, connect=0.5)
        exc, took = failure(chat_once(name, is_async, url, timeout=timeout, max_retries=0))
    finally:
        jam.close()
    kind = root(exc)
    ok = exc is not None and took < 3.0 and kind in ("ConnectTimeout", "ConnectError")
    return {"ok": ok, "detail": f"{kind} after {took:.2f} s"}


def check_pool_limit(name: str, is_async: bool) -> dict[str, Any]:
    """The transport itself (no SDK slots) with max_connections=2 and 6 calls at once."""
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    with fs.FaultServer() as srv:
        srv.route("POST", CHAT, fs.stall(0.3, then=fs.respond(json=json.loads(p.chat_answer()))))
        transport = make(name, is_async, limits=limits)
        if is_async:

            async def many() -> None:
                async with httpx.AsyncClient(transport=transport, timeout=10) as h:
                    await asyncio.gather(
                        *(h.post(srv.base_url + "/chat-messages") for _ in range(6))
                    )

            asyncio.run(many())
        else:
            with httpx.Client(transport=transport, timeout=10) as h:
                threads = [
                    threading.Thread(target=h.post, args=(srv.base_url + "/chat-messages",))
                    for _ in range(6)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(15)
        peak = srv.stats.max_open
    return {"ok": peak <= 2, "detail": f"peak {peak} connections for a limit of 2"}


def check_proxy(name: str, is_async: bool) -> dict[str, Any]:
    """An http:// proxy on 127.0.0.1 must see the request in absolute form."""
    with fs.FaultServer() as proxy, fs.FaultServer() as origin:
        answer = fs.respond(json=json.loads(p.chat_answer()))
        proxy.route("POST", origin.origin + CHAT, answer)
        exc, _ = failure(
            chat_once(name, is_async, origin.base_url, proxy=proxy.origin, max_retries=0)
        )
        via_proxy = [r.target for r in proxy.requests]
        direct = len(origin.requests)
    ok = exc is None and len(via_proxy) == 1 and direct == 0
    return {
        "ok": ok,
        "detail": f"proxy saw {via_proxy or 'nothing'}, origin saw {direct}"
        + (f"; {root(exc)}" if exc else ""),
    }


def check_tls(name: str, is_async: bool, tls: tuple[str, str]) -> dict[str, Any]:
    """A self-signed server: refused by default (and not retried), accepted with its CA."""
    with fs.FaultServer(tls=tls) as srv:
        srv.route("POST", CHAT, fs.respond(json=json.loads(p.chat_answer())))
        refused, _ = failure(chat_once(name, is_async, srv.base_url, max_retries=2))
        tries = len(srv.requests_to(CHAT))
        trusted, _ = failure(chat_once(name, is_async, srv.base_url, cafile=tls[0], max_retries=0))
    ok = refused is not None and trusted is None and srv.accepted <= 2
    detail = f"default: {root(refused)} ({tries} reached the app); with its CA: " + (
        "ok" if trusted is None else f"{type(trusted).__name__}: {str(trusted)[:80]}"
    )
    return {"ok": ok, "detail": detail}


def check_cancel(name: str, is_async: bool) -> dict[str, Any]:
    """Cancel a task blocked mid-stream: CancelledError at once, the connection closed."""
    if not is_async:
        return {"ok": None, "detail": "n/a (sync)"}
    with fs.FaultServer() as srv:
        srv.route("POST", CHAT, fs.sse([EVENT], end="stall"))

        async def main() -> tuple[str, float]:
            c = client(name, True, srv.base_url, max_retries=0)
            started = asyncio.Event()

            async def consume() -> None:
                async with await c.chat.send(query="q", user="u", stream=True) as s:
                    async for _ in s:
                        started.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(started.wait(), 5)
            t0 = time.monotonic()
            task.cancel()
            try:
                await asyncio.wait_for(task, 5)
                outcome = "finished"
            except asyncio.CancelledError:
                outcome = "CancelledError"
            except BaseException as exc:
                outcome = type(exc).__name__
            took = time.monotonic() - t0
            await c.close()
            return outcome, took

        outcome, took = asyncio.run(main())
        closed = srv.wait_idle(5)
    ok = outcome == "CancelledError" and took < 1.0 and closed
    return {"ok": ok, "detail": f"{outcome} in {took * 1000:.0f} ms; connection closed: {closed}"}


def check_never_resent(name: str, is_async: bool) -> dict[str, Any]:
    """Refused vs dropped after the request was written; a POST on a fresh and on a reused
    keep-alive connection that the server drops after reading it reaches the server once."""
    url = f"http://127.0.0.1:{fs.closed_port()}/v1"
    refused, _ = failure(chat_once(name, is_async, url, max_retries=0))
    answer = fs.respond(json=json.loads(p.chat_answer()))

    def drop(ex: Any) -> None:  # read the request, then close (FIN) without an answer
        ex.close()

    with fs.FaultServer() as srv:
        srv.route("POST", CHAT, drop)
        dropped, _ = failure(chat_once(name, is_async, srv.base_url, max_retries=2))
        fresh = len(srv.requests_to(CHAT))
    with fs.FaultServer() as srv:
        srv.route("POST", CHAT, answer, drop)  # the first is answered, the second dropped

        def twice_sync() -> None:
            with client(name, False, srv.base_url, max_retries=2) as c:
                c.chat.send(query="q", user="u")
                c.chat.send(query="q", user="u")

        async def twice_async() -> None:
            c = client(name, True, srv.base_url, max_retries=2)
            try:
                await c.chat.send(query="q", user="u")
                await c.chat.send(query="q", user="u")
            finally:
                await c.close()

        reused, _ = failure((lambda: asyncio.run(twice_async())) if is_async else twice_sync)
        on_reused = len(srv.requests_to(CHAT)) - 1
    phases = root(refused) in ("ConnectError", "ConnectTimeout") and root(dropped) not in (
        "ConnectError",
        "ConnectTimeout",
        "PoolTimeout",
    )
    ok = phases and fresh == 1 and on_reused == 1 and dropped is not None and reused is not None
    return {
        "ok": ok,
        "detail": f"refused: {root(refused)}; dropped after write: {root(dropped)}, "
        f"POST reached the server {fresh}x fresh, {on_reused}x on a reused connection",
    }


def tls_files(folder: str) -> tuple[str, str]:
    cert, key = f"{folder}/cert.pem", f"{folder}/key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "transports.json")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tls = tls_files(folder)
        checks: dict[str, Callable[[str, bool], dict[str, Any]]] = {
            "read timeout mid-stream": check_read_timeout,
            "connect timeout": check_connect_timeout,
            "pool limit": check_pool_limit,
            "proxy": check_proxy,
            "TLS verify": lambda n, a: check_tls(n, a, tls),
            "cancellation": check_cancel,
            "never re-send": check_never_resent,
        }
        for name, is_async in KINDS:
            kind = f"{name} ({'async' if is_async else 'sync'})"
            results[kind] = {}
            for title, check in checks.items():
                try:
                    result = check(name, is_async)
                except Exception as exc:  # a crash is a finding too
                    result = {"ok": False, "detail": f"crashed: {type(exc).__name__}: {exc}"[:200]}
                results[kind][title] = result
                mark = {True: "ok  ", False: "FAIL", None: "n/a "}[result["ok"]]
                print(f"{kind:18} {title:26} {mark} {result['detail']}", flush=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
