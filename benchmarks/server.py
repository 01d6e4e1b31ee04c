"""A fast fake Dify on 127.0.0.1 for the socket workloads (W3 socket, W5, W6).

Run in its own process: ``python server.py --sizes JSON``. Prints ``READY <port>`` once it
listens, and stops when its standard input closes (the suite closes it), after
``--max-seconds``, or on SIGTERM. HTTP/1.1 with keep-alive on a bare ``asyncio.Protocol``: every
answer is pre-rendered, so a request costs the server a header scan and one write.

Routes (paths under ``/v1``):

- ``POST /chat-messages``: blocking answer (~3.4 KB JSON), or for ``"response_mode":
  "streaming"`` the W3 chat stream (one chunk per event); the user ``bench-big`` gets the 50 MB
  stream of W6 instead, written in ~64 KB chunks with flow control.
  With ``--lockstep`` each event of a small stream is written only once the client has read
  the one before (its socket's receive queue, seen in ``/proc/net/tcp``, is empty): one read per
  event on every run, as a model's tokens arrive, so instruction counts do not depend on how
  many events one read happened to find.
- ``POST /workflows/run``: the W3 workflow stream.
- ``GET /datasets/{id}/documents``, ``GET /messages``: the W4 lists.
- ``POST /text-to-audio``: 64 KB of audio/mpeg, or the W6 binary for ``bench-big``.
- ``GET /__stats``: this process's CPU seconds and request count (the suite reads it to see
  whether the server, not the client, was the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import payloads as p

_tasks: set[asyncio.Future[None]] = set()

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def json_answer(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def chunked(frames: Iterable[bytes]) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(f), f) for f in frames]


class Routes:
    def __init__(self, sizes: p.Sizes) -> None:
        self.sizes = sizes
        self.chat = json_answer(p.chat_answer())
        self.chat_stream = chunked(p.chat_stream(sizes))
        self.workflow_stream = chunked(p.workflow_stream(sizes))
        self.documents = json_answer(p.documents_list(sizes))
        self.messages = json_answer(p.messages_list(sizes))
        self.not_found = json_answer(
            b'{"code":"not_found","message":"no such route","status":404}', b"404 Not Found"
        )
        self.small_audio = b"".join(p.binary_blocks(65536))
        self.requests = 0


def _proc_address(host: str, port: int) -> str:
    """An IPv4 address as ``/proc/net/tcp`` writes it: the address in host byte order, hex."""
    return f"{int.from_bytes(socket.inet_aton(host), sys.byteorder):08X}:{port:04X}"


def unread(client: str, server: str) -> int | None:
    """Bytes the client's socket has received and its program not yet read (None: gone)."""
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if fields[1] == client and fields[2] == server:
                return int(fields[4].split(":")[1], 16)
    return None


class Handler(asyncio.Protocol):
    routes: Routes
    lockstep = False

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.can_write.set()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            lower = head.lower()
            length = 0
            at = lower.find(b"\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 1)
                length = int(lower[at + 16 : stop if stop >= 0 else len(lower)])
            elif b"\ntransfer-encoding: chunked" in lower:
                self.transport.write(json_answer(b"{}", b"411 Length Required"))
                self.transport.close()
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            close = b"\nconnection: close" in lower
            self.respond(head, body, close)

    def respond(self, head: bytes, body: bytes, close: bool) -> None:
        transport = self.transport
        assert transport is not None
        routes = self.routes
        routes.requests += 1
        line_end = head.find(b"\r\n")
        method, _, rest = head[:line_end].partition(b" ")
        target = rest.rpartition(b" ")[0]
        path = target.split(b"?", 1)[0]
        big = p.BIG_USER.encode() in body
        if method == b"POST" and path == b"/v1/chat-messages":
            if b'"streaming"' in body:
                if big:
                    self.start(
                        self.write_blocks(
                            SSE_HEAD, p.big_stream(routes.sizes.big_stream_bytes), True, close
                        )
                    )
                else:
                    self.write_frames(routes.chat_stream, close)
                return
            answer = routes.chat
        elif method == b"POST" and path == b"/v1/workflows/run":
            self.write_frames(routes.workflow_stream, close)
            return
        elif (
            method == b"GET" and path.startswith(b"/v1/datasets/") and path.endswith(b"/documents")
        ):
            answer = routes.documents
        elif method == b"GET" and path == b"/v1/messages":
            answer = routes.messages
        elif method == b"POST" and path == b"/v1/text-to-audio":
            size = routes.sizes.binary_bytes if big else len(routes.small_audio)
            head_out = (
                b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\n"
                b"Content-Length: " + str(size).encode() + b"\r\n\r\n"
            )
            if big:
                self.start(self.write_blocks(head_out, p.binary_blocks(size), False, close))
            else:
                transport.write(head_out + routes.small_audio)
                if close:
                    transport.close()
            return
        elif method == b"GET" and path == b"/__stats":
            stats = {"cpu": time.process_time(), "requests": routes.requests}
            answer = json_answer(json.dumps(stats).encode())
        else:
            answer = routes.not_found
        transport.write(answer)
        if close:
            transport.close()

    def write_frames(self, chunks: list[bytes], close: bool) -> None:
        """A small stream: one write per event, as a server flushing each event does."""
        transport = self.transport
        assert transport is not None
        if self.lockstep:
            self.start(self.write_in_lockstep(chunks, close))
            return
        transport.write(SSE_HEAD)
        for chunk in chunks:
            transport.write(chunk)
        transport.write(b"0\r\n\r\n")
        if close:
            transport.close()

    def start(self, job: Coroutine[Any, Any, None]) -> None:
        self.busy = True
        task = asyncio.ensure_future(job)
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    async def write_in_lockstep(self, chunks: list[bytes], close: bool) -> None:
        """Each write once the client has read everything before it."""
        try:
            if self.transport is None:
                return
            host, port = self.transport.get_extra_info("peername")[:2]
            here, at = self.transport.get_extra_info("sockname")[:2]
            client, server = _proc_address(host, port), _proc_address(here, at)
            for data in (SSE_HEAD, *chunks, b"0\r\n\r\n"):
                if self.transport is None:
                    return
                self.transport.write(data)
                while unread(client, server):
                    await asyncio.sleep(0.00005)
            if close and self.transport is not None:
                self.transport.close()
        finally:
            self.busy = False
            if self.transport is not None and self.buffer:
                self.process()

    async def write_blocks(
        self, head: bytes, blocks: Iterable[bytes], chunk: bool, close: bool
    ) -> None:
        """A large answer in blocks, waiting whenever the client's socket is full."""
        try:
            if self.transport is None:
                return
            self.transport.write(head)
            for block in blocks:
                await self.can_write.wait()
                if self.transport is None:
                    return
                self.transport.write(b"%x\r\n%s\r\n" % (len(block), block) if chunk else block)
            if self.transport is not None:
                if chunk:
                    self.transport.write(b"0\r\n\r\n")
                if close:
                    self.transport.close()
        finally:
            self.busy = False
            if self.transport is not None and self.buffer:
                self.process()


async def serve(port: int, routes: Routes, max_seconds: float, lockstep: bool) -> None:
    loop = asyncio.get_running_loop()
    Handler.routes = routes
    Handler.lockstep = lockstep
    server = await loop.create_server(Handler, "127.0.0.1", port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(stop.set)

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(max_seconds, stop.set)
    print(f"READY {bound}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sizes", default="{}", help="payload sizes as JSON (payloads.Sizes)")
    parser.add_argument("--smoke", action="store_true", help="tiny payloads")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--lockstep", action="store_true", help="one client read per event")
    args = parser.parse_args()
    sizes = p.Sizes.smoke() if args.smoke else p.Sizes()
    sizes = p.Sizes.from_dict({**sizes.to_dict(), **json.loads(args.sizes)})
    asyncio.run(serve(args.port, Routes(sizes), args.max_seconds, args.lockstep))


if __name__ == "__main__":
    main()
