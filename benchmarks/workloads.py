"""The workloads, one definition each: what is asked, what must come back, how it is timed.

Each ``wN(adapter, params)`` runs in a fresh worker process (``worker.py``) for one contender
and returns its figures. The contender's part is only its adapter (``adapters/``); the
payloads, the checks on what it sent and decoded, and the timing are the same for all.
W1 (import + client) is timed by ``worker.py`` itself, around ``adapter.w1()``.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from collections.abc import Callable
from typing import Any

import harness as h
import payloads as p
from adapters.base import Adapter, Wire


def _sizes(params: dict[str, Any]) -> p.Sizes:
    return p.Sizes.from_dict(params.get("sizes", {}))


def _stream_path(case: str) -> str:
    return "/v1/chat-messages" if case == "chat" else "/v1/workflows/run"


def w2(adapter: Adapter, params: dict[str, Any]) -> dict[str, Any]:
    """Blocking chat, in process: CPU µs per call (encode + send + decode)."""
    wire = Wire(body=p.chat_answer())
    call = adapter.chat(adapter.client(wire), p.USER)
    h.check_answer(call())
    wire.recorder.verify("POST", "/v1/chat-messages", body=p.chat_request_obj())
    return h.per_call_us(call, params["calls"], params["warmup"])


def w3(adapter: Adapter, params: dict[str, Any]) -> dict[str, Any]:
    """A chat or workflow stream, in process or over loopback: events/s, first event."""
    case, inproc = params["case"], params["mode"] == "inproc"
    frames = (p.chat_stream if case == "chat" else p.workflow_stream)(_sizes(params))
    wire = Wire(frames=frames) if inproc else Wire(base_url=params["base_url"])
    client = adapter.client(wire)
    result = h.stream_runs(
        lambda: h.time_stream(lambda: adapter.stream(client, case, p.USER), h.final_ok(case)),
        params["runs"],
        p.stream_event_count(frames),
        inproc,
    )
    if inproc:
        body = {"user": p.USER, "response_mode": "streaming"}
        wire.recorder.verify("POST", _stream_path(case), body=body)
    return result


def w4(adapter: Adapter, params: dict[str, Any]) -> dict[str, Any]:
    """A list of documents or of messages, in process: CPU µs per call."""
    sizes, kind = _sizes(params), params["case"]
    n = sizes.list_items
    if kind == "documents":
        wire = Wire(body=p.documents_list(sizes))
        path, query = f"/v1/datasets/{p.DATASET_ID}/documents", {"page": 1, "limit": n}
    else:
        wire = Wire(body=p.messages_list(sizes))
        path = "/v1/messages"
        query = {"conversation_id": p.CONVERSATION_ID, "user": p.USER, "limit": n}
    call = adapter.lists(adapter.client(wire), kind, n)
    h.check_list(call(), n, kind)
    wire.recorder.verify("GET", path, params=query)
    return h.per_call_us(call, params["calls"], params["warmup"])


def _async_setup(adapter: Adapter, wire: Wire) -> Callable[[], Any]:
    async def setup() -> Any:
        client = await adapter.aclient(wire)
        return adapter.achat(client, p.USER), lambda: adapter.aclose(client)

    return setup


def w5(adapter: Adapter, params: dict[str, Any]) -> dict[str, Any]:
    """Many blocking chats over loopback: async with N in flight, or sync from threads."""
    calls, warmup = params["calls"], params["warmup"]
    if params["case"] == "async":
        n = params["concurrency"]
        return h.drive_async(
            _async_setup(adapter, Wire(params["base_url"], connections=n)), calls, n, warmup
        )
    n = params["threads"]
    client = adapter.client(Wire(params["base_url"], connections=n))
    try:
        return h.drive_threads(adapter.chat(client, p.USER), calls, n, warmup)
    finally:
        adapter.close(client)


def w6(adapter: Adapter, params: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of a 50 MB event stream, or of a 50 MB binary answer written to a file."""
    sizes = _sizes(params)
    client = adapter.client(Wire(params["base_url"], timeout=60.0))
    if params["case"] == "sse":

        def consume(user: str) -> int:
            return sum(1 for _ in adapter.stream(client, "chat", user))

        expected = p.big_stream_events(sizes.big_stream_bytes)
        return h.measure_memory(lambda: consume(p.USER), lambda: consume(p.BIG_USER), expected)
    fd, path = tempfile.mkstemp(suffix=".mp3")
    os.close(fd)
    try:
        return h.measure_memory(
            lambda: adapter.download(client, p.USER, path),
            lambda: adapter.download(client, p.BIG_USER, path),
            sizes.binary_bytes,
        )
    finally:
        os.unlink(path)


def w7(adapter: Adapter, params: dict[str, Any]) -> dict[str, Any]:
    """The cost on the wire: this process's CPU per streamed event and per blocking call,
    over loopback to the server's own process, sync or async, one call in flight; and
    ``concurrent``: many async calls in flight (requests/s and CPU per request)."""
    case, wire = params["case"], Wire(params["base_url"], connections=params.get("concurrency"))
    if case == "stream-sync":
        frames = p.chat_stream(_sizes(params))
        client = adapter.client(wire)
        return h.stream_runs(
            lambda: h.time_stream(
                lambda: adapter.stream(client, "chat", p.USER), h.final_ok("chat")
            ),
            params["runs"],
            p.stream_event_count(frames),
            True,
        )
    if case == "call-sync":
        return h.per_call_us(
            adapter.chat(adapter.client(wire), p.USER), params["calls"], params["warmup"]
        )
    if case == "concurrent":
        n = params["concurrency"]
        result = h.drive_async(_async_setup(adapter, wire), params["calls"], n, params["warmup"])
        result["us_per_call"] = result["cpu_per_1000"] * 1000
        return result
    return asyncio.run(_w7_async(adapter, wire, params))


async def _w7_async(adapter: Adapter, wire: Wire, params: dict[str, Any]) -> dict[str, Any]:
    client = await adapter.aclient(wire)
    try:
        if params["case"] == "call-async":
            call = adapter.achat(client, p.USER)
            return await h.per_call_us_async(call, params["calls"], params["warmup"])
        expected = p.stream_event_count(p.chat_stream(_sizes(params)))

        async def once() -> h.Sample:
            return await h.time_astream(
                lambda: adapter.astream(client, "chat", p.USER), h.final_ok("chat")
            )

        await once()  # warm-up
        return h.stream_figures([await once() for _ in range(params["runs"])], expected, True)
    finally:
        await adapter.aclose(client)


def big_event(size: int, chunk: int) -> list[bytes]:
    """One ``message`` event whose answer is ``size`` bytes, then ``message_end``, cut into
    ``chunk``-byte pieces (the last one may be shorter)."""
    head = p.dumps({"event": "message", **p._ids(), "id": p.MESSAGE_ID})
    body = b"data: " + head[:-1] + b',"answer":"' + b"x" * size + b'"}\n\n'
    body += p.frame(p.message_end_obj())
    return [body[i : i + chunk] for i in range(0, len(body), chunk)]


def w8(adapter: Adapter, params: dict[str, Any]) -> dict[str, Any]:
    """The SSE framer on one large event, in process: CPU seconds per size, doubling the size
    until ``max_mib`` or until one run takes over ``budget_s``; ``exponent`` is
    log2(t(2n) / t(n)) of the two largest sizes (1: linear, 2: quadratic)."""
    chunk, budget = params["chunk"], params["budget_s"]
    out: dict[str, Any] = {"chunk": chunk}
    times: list[tuple[int, float]] = []
    size = params["min_kib"] * 1024
    while size <= params["max_mib"] * 1024 * 1024:
        frames = big_event(size, chunk)
        wire = Wire(frames=frames, options={"max_event_bytes": 4 * size + (1 << 20)})
        client = adapter.client(wire)
        seconds, events = math.inf, []
        for _ in range(params.get("repeats", 1)):
            c0 = h.cpu_now()
            events = list(adapter.stream(client, "chat", p.USER))
            seconds = min(seconds, h.cpu_now() - c0)
        h.check(len(events) == 2 and h.final_ok("chat")(events[-1]), "big event not decoded")
        h.check(len(str(h.field(events[0], "answer"))) == size, "big event's answer cut")
        adapter.close(client)
        times.append((size, seconds))
        out[f"cpu_s_{size // 1024}k"] = seconds
        if seconds > budget:
            out["stopped"] = f"{size // 1024} KiB took {seconds:.1f} s CPU (budget {budget} s)"
            break
        size *= 2
    top, seconds = times[-1]
    out.update(
        largest_mib=top / (1 << 20), cpu_s_largest=seconds, mib_per_cpu_s=top / (1 << 20) / seconds
    )
    if len(times) >= 2:
        (n0, t0), (n1, t1) = times[-2], times[-1]
        out["exponent"] = math.log(t1 / t0) / math.log(n1 / n0) if t0 > 0 and t1 > 0 else 0.0
    return out
