"""What the guarantee tests share: one test body for every client kind, bombs in every coding,
and a loose measure of peak memory.

:class:`Kit` drives a sync client (on httpx's transport or the urllib3 backend), an async
client or an async client on the aiohttp backend from a plain test function (async calls
run on the kit's own event loop), so each guarantee is written once and checked for every
kind. The kit records every error the event loop
reports (an un-awaited close, an async generator closed while running) so a test can assert
there were none.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from dify_oapi import AsyncClient, Client

from .conftest import client_options
from .server import Exchange, FaultServer, Handler

MiB = 1 << 20
GiB = 1 << 30
KINDS = ("sync", "urllib3", "async", "aiohttp")
ASYNC_KINDS = ("async", "aiohttp")
#: For a guarantee the current httpx-aiohttp transport does not keep.
AIOHTTP_XFAIL = pytest.mark.xfail(strict=True, reason="until the SDK's own aiohttp transport lands")


def kinds(*, xfail_aiohttp: bool = False, only: tuple[str, ...] = KINDS) -> list[Any]:
    """``parametrize`` values for the client kinds, aiohttp marked when it fails today."""
    return [
        pytest.param(k, marks=AIOHTTP_XFAIL) if k == "aiohttp" and xfail_aiohttp else k
        for k in only
    ]


class Kit:
    """One client of one kind, and the means to use it the same way whatever its kind."""

    def __init__(self, kind: str, server: FaultServer, **options: Any) -> None:
        self.kind = kind
        self.loop_errors: list[dict[str, Any]] = []
        opts = client_options(server, **options)
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind in ("sync", "urllib3"):
            if kind == "urllib3":
                opts["backend"] = "urllib3"
            self.client: Any = Client(**opts)
            return
        if kind == "aiohttp":
            opts["backend"] = "aiohttp"
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        self.client = AsyncClient(**opts)

    @property
    def is_async(self) -> bool:
        return self.loop is not None

    def run(self, value: Any) -> Any:
        """``value`` itself (sync), or what it resolves to on the kit's loop (async)."""
        if self.loop is not None and inspect.isawaitable(value):
            return self.loop.run_until_complete(_awaited(value))
        return value

    def call(self, op: str, **kwargs: Any) -> Any:
        return self.run(self.client.call(op, **kwargs))

    def with_client(self, client: Any) -> Kit:
        """A kit for ``client`` (a copy of this one's) on the same loop."""
        other = object.__new__(Kit)
        other.__dict__.update(self.__dict__)
        other.client = client
        return other

    # -- streams -----------------------------------------------------------------------------

    def next_event(self, stream: Any) -> Any:
        return self.run(_anext(stream)) if self.is_async else next(stream)

    def all_events(self, stream: Any) -> list[Any]:
        if not self.is_async:
            return list(stream)

        async def read() -> list[Any]:
            return [event async for event in stream]

        return self.run(read())  # type: ignore[no-any-return]

    def first_then_leave(self, stream: Any) -> Any:
        """A ``for`` loop over the stream that breaks after one event; the stream is
        referenced by nothing after it."""
        if not self.is_async:
            for event in stream:
                return event
            return None

        async def loop() -> Any:
            async for event in stream:
                return event
            return None

        return self.run(loop())

    def byte_chunks(self, binary: Any) -> Any:
        """The chunk iterator of a binary download."""
        return binary.iter_bytes()

    def next_chunk(self, chunks: Any) -> bytes:
        return self.run(_anext(chunks)) if self.is_async else next(chunks)  # type: ignore[no-any-return]

    def all_bytes(self, binary: Any) -> bytes:
        if not self.is_async:
            return b"".join(binary.iter_bytes())

        async def read() -> bytes:
            return b"".join([c async for c in binary.iter_bytes()])

        return self.run(read())  # type: ignore[no-any-return]

    def first_chunk_then_leave(self, binary: Any) -> bytes | None:
        if not self.is_async:
            for chunk in binary.iter_bytes():
                return chunk
            return None

        async def loop() -> bytes | None:
            async for chunk in binary.iter_bytes():
                return chunk
            return None

        return self.run(loop())  # type: ignore[no-any-return]

    def settle(self, seconds: float = 0.02) -> None:
        """Let the loop run what finalizers scheduled on it."""
        if self.loop is not None:
            self.loop.run_until_complete(asyncio.sleep(seconds))

    def pause(self, seconds: float) -> None:
        """Wait; an async client's loop runs meanwhile (its transport takes in what arrives)."""
        if self.loop is not None:
            self.settle(seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        if self.loop is None:
            self.client.close()
            return
        self.run(self.client.close())
        self.settle()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _awaited(value: Any) -> Any:
    return await value


async def _anext(iterator: Any) -> Any:
    # Started inside the running loop, as in real code: an async generator's first step
    # installs the loop's finalizer, which closes it on the loop when it is dropped.
    return await iterator.__anext__()


def elapsed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start


# -- memory ----------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def peak_growth(fn: Callable[[], Any]) -> tuple[Any, int]:
    """``fn()``'s outcome (its value or its exception) and how far memory rose during it, in
    bytes: the larger of the resident set's rise (the kernel's high-water mark, reset first,
    so what C code such as zlib allocated counts) and the rise of Python's traced peak (which
    memory freed by an earlier test and still resident cannot hide)."""
    import tracemalloc

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:  # pragma: no cover - not Linux, or not allowed
        pytest.skip("cannot reset the resident-memory high-water mark here")
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0]
    rss_before = _status_kib("VmRSS")
    outcome: Any
    try:
        outcome = fn()
    except BaseException as exc:  # the outcome is what the test looks at
        outcome = exc
    rss = (_status_kib("VmHWM") - rss_before) * 1024
    traced = tracemalloc.get_traced_memory()[1] - traced_before
    if started:
        tracemalloc.stop()
    return outcome, max(rss, traced)


# -- bombs -----------------------------------------------------------------------------------

_ZEROS = bytes(MiB)


def _raw_deflate_blocks(data: bytes) -> bytes:
    """Raw deflate of ``data`` ending in a full flush: blocks that can be concatenated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


@functools.cache
def bomb(coding: str, inflated: int = GiB, prefix: bytes = b'{"name": "') -> bytes:
    """A complete, valid body in ``coding`` that inflates to ``prefix`` and zeros, ``inflated``
    bytes in all (cached: made once per process)."""
    blocks = inflated // MiB - 1
    if coding in ("gzip", "deflate", "raw-deflate"):
        body = _raw_deflate_blocks(prefix + bytes(MiB - len(prefix)))
        body += _raw_deflate_blocks(_ZEROS) * blocks + b"\x03\x00"  # an empty final block
        crc = zlib.crc32(prefix + bytes(MiB - len(prefix)))
        adler = zlib.adler32(prefix + bytes(MiB - len(prefix)))
        for _ in range(blocks):
            crc = zlib.crc32(_ZEROS, crc)
            adler = zlib.adler32(_ZEROS, adler)
        if coding == "gzip":
            header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
            return header + body + struct.pack("<II", crc, inflated & 0xFFFFFFFF)
        if coding == "deflate":  # zlib-wrapped, as the standard says
            return b"\x78\xda" + body + struct.pack(">I", adler)
        return body  # raw deflate, as some servers send it
    if coding == "br":
        import brotli

        compressor = brotli.Compressor(quality=1)
        parts = [compressor.process(prefix + bytes(MiB - len(prefix)))]
        parts += [compressor.process(_ZEROS) for _ in range(blocks)]
        return b"".join([*parts, compressor.finish()])
    if coding == "zstd":
        import zstandard

        obj = zstandard.ZstdCompressor(level=1).compressobj()
        parts = [obj.compress(prefix + bytes(MiB - len(prefix)))]
        parts += [obj.compress(_ZEROS) for _ in range(blocks)]
        return b"".join([*parts, obj.flush()])
    raise ValueError(coding)


def encoded(
    body: bytes, encoding: str, *, status: int = 200, content_type: str = "application/json"
) -> Handler:
    """An answer whose body is already encoded, labelled ``Content-Encoding: encoding``."""

    def handler(ex: Exchange) -> None:
        items = [
            ("Content-Type", content_type),
            ("Content-Encoding", encoding),
            ("Content-Length", str(len(body))),
        ]
        if ex.head(status, items):
            ex.send(body)

    return handler


def src_root() -> str:
    import dify_oapi

    return os.path.dirname(os.path.abspath(dify_oapi.__file__))
