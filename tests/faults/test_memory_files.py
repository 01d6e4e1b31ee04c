"""Big bodies: a 50 MB download to a file, a 50 MB upload from disk and a 50 MB streamed
answer are all moved in bounded pieces, never held whole.

Peak memory is printed (``-s``) for the benchmark report; it is not a test threshold.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dify_oapi._request as request_module
from dify_oapi import AsyncClient, Client
from dify_oapi.types import events as ev

from .conftest import AsyncObservingTransport, ObservingTransport, client_options
from .server import FaultServer, _pattern, frame, pattern_digest, respond, sse, stream_bytes

pytestmark = pytest.mark.faults

SIZE = 50 << 20
#: httpcore reads 64 KiB at a time; anything up to this is "a bounded chunk".
CHUNK_BOUND = 256 * 1024
PREVIEW = "/v1/files/f0000000-0000-4000-8000-000000000001/preview"
UPLOAD = "/v1/files/upload"


def reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# -- download --------------------------------------------------------------------------------


def test_fifty_megabyte_download_to_a_file(server: FaultServer, tmp_path: Path) -> None:
    server.route("GET", PREVIEW, stream_bytes(SIZE))
    transport = ObservingTransport()
    target = tmp_path / "download.bin"
    reset_peak_rss()
    before = peak_rss_mb()
    with Client(**client_options(server, transport=transport)) as client:
        stream = client.dify.preview_file(
            file_id="f0000000-0000-4000-8000-000000000001", stream=True
        )
        assert stream.content_type == "application/octet-stream"
        written = stream.write_to(target)
    print(f"\n50 MB download: peak RSS {peak_rss_mb():.0f} MB (was {before:.0f} MB)")
    assert written == SIZE == target.stat().st_size
    assert sha256_file(target) == pattern_digest(SIZE)
    assert sum(transport.chunk_sizes) == SIZE
    assert max(transport.chunk_sizes) <= CHUNK_BOUND
    assert len(transport.chunk_sizes) >= SIZE // CHUNK_BOUND
    assert stream.response.is_closed


async def test_async_fifty_megabyte_download_to_a_file(server: FaultServer, tmp_path: Path) -> None:
    server.route("GET", PREVIEW, stream_bytes(SIZE, chunked=True))
    transport = AsyncObservingTransport()
    target = tmp_path / "download.bin"
    async with AsyncClient(**client_options(server, transport=transport)) as client:
        stream = await client.dify.preview_file(
            file_id="f0000000-0000-4000-8000-000000000001", stream=True
        )
        sizes = []
        with open(target, "wb") as f:
            async for chunk in stream.iter_bytes(chunk_size=32768):
                sizes.append(len(chunk))
                f.write(chunk)
    assert sum(sizes) == SIZE and max(sizes) <= 32768
    assert sha256_file(target) == pattern_digest(SIZE)
    assert max(transport.chunk_sizes) <= CHUNK_BOUND


def test_download_cut_midway_is_a_typed_error(server: FaultServer, tmp_path: Path) -> None:
    from dify_oapi import APIConnectionError

    def cut(ex: Any) -> None:
        ex.head(200, {"Content-Length": str(SIZE), "Content-Type": "application/octet-stream"})
        ex.send(_pattern(0, 1 << 20))
        ex.reset()

    server.route("GET", PREVIEW, cut)
    with Client(**client_options(server)) as client:
        stream = client.dify.preview_file(
            file_id="f0000000-0000-4000-8000-000000000001", stream=True
        )
        with pytest.raises(APIConnectionError) as info:
            stream.write_to(tmp_path / "partial.bin")
    assert str(info.value).startswith("dify.preview_file: download interrupted")
    assert len(server.requests_to(PREVIEW)) == 1


# -- streamed answer -------------------------------------------------------------------------


async def test_async_fifty_megabyte_answer_in_bounded_chunks(server: FaultServer) -> None:
    piece = "z" * (64 * 1024 - 100)
    one = frame({"event": "message", "task_id": "t-1", "answer": piece})
    count = SIZE // len(one) + 1

    def pieces() -> Iterator[bytes]:
        for _ in range(count):
            yield one
        yield frame({"event": "message_end", "task_id": "t-1"})

    server.route("POST", "/v1/chat-messages", sse(pieces))
    transport = AsyncObservingTransport()
    reset_peak_rss()
    async with AsyncClient(**client_options(server, transport=transport)) as client:
        stream = await client.chat.send(query="q", user="u", stream=True)
        n = 0
        async for event in stream:
            assert isinstance(event, (ev.MessageEvent, ev.MessageEndEvent))
            n += 1
        assert n == count + 1 and len(stream.answer) == count * len(piece)
    print(f"\n50 MB streamed answer: peak RSS {peak_rss_mb():.0f} MB")
    assert sum(transport.chunk_sizes) >= SIZE
    assert max(transport.chunk_sizes) <= CHUNK_BOUND


# -- upload ----------------------------------------------------------------------------------


class ReadTracker:
    """A binary file that records every read (size asked, size returned)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.reads: list[tuple[int, int]] = []

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._f.read(n)
        self.reads.append((n, len(data)))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> ReadTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("the upload iterated the file by lines")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "big.bin"
    with open(path, "wb") as f:
        for offset in range(0, SIZE, 65536):
            f.write(_pattern(offset, min(65536, SIZE - offset)))
    return path


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch, big_file: Path) -> list[ReadTracker]:
    """Every opening of ``big_file`` (through ``open``, ``io.open`` or ``Path.open``)."""
    trackers: list[ReadTracker] = []
    real_open = builtins.open

    def tracking_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == os.fspath(big_file):
            tracker = ReadTracker(f)
            trackers.append(tracker)
            return tracker
        return f

    monkeypatch.setattr(builtins, "open", tracking_open)
    monkeypatch.setattr(io, "open", tracking_open)
    monkeypatch.setattr(request_module, "open", tracking_open, raising=False)
    return trackers


def uploaded_part(server: FaultServer) -> tuple[str, str, int]:
    """(file name, sha256, size) of the ``file`` part the server received."""
    (received,) = server.requests_to(UPLOAD)
    content_type = received.header("content-type") or ""
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    assert received.body_file is not None, "a 50 MB body was not spooled"
    size = os.path.getsize(received.body_file)
    assert size == received.body_len
    with open(received.body_file, "rb") as f:
        head = f.read(8192)
        marker = head.index(b'name="file"')
        disposition = head[marker : head.index(b"\r\n", marker)].decode()
        start = head.index(b"\r\n\r\n", marker) + 4
        closing = b"\r\n--" + boundary + b"--\r\n"
        f.seek(size - len(closing))
        assert f.read() == closing  # the file is the last part
        f.seek(start)
        digest = hashlib.sha256()
        left = size - len(closing) - start
        total = left
        while left:
            block = f.read(min(left, 1 << 20))
            digest.update(block)
            left -= len(block)
    filename = disposition.split('filename="', 1)[1].split('"', 1)[0]
    return filename, digest.hexdigest(), total


UPLOADED = {"id": "file-1", "name": "big.bin", "size": SIZE, "extension": "bin"}


def assert_streamed_from_disk(trackers: list[ReadTracker]) -> None:
    assert trackers, "the upload never opened the file"
    reads = [r for t in trackers for r in t.reads]
    assert sum(got for _, got in reads) >= SIZE
    # Never one read of the whole file: every read asks for, and gets, a bounded piece.
    assert all(0 < asked <= 1 << 20 for asked, _ in reads), sorted({a for a, _ in reads})
    assert max(got for _, got in reads) <= 1 << 20


@pytest.mark.parametrize("given", ["path", "Path", "file"])
def test_fifty_megabyte_upload_streams_from_disk(
    server: FaultServer, big_file: Path, opened: list[ReadTracker], given: str
) -> None:
    server.route("POST", UPLOAD, respond(201, json=UPLOADED))
    reset_peak_rss()
    with Client(**client_options(server)) as client:
        if given == "file":
            with ReadTracker(builtins.open(big_file, "rb")) as f:
                opened.append(f)
                result = client.dify.upload_file(file=f, user="u")
        else:
            target = str(big_file) if given == "path" else big_file
            result = client.dify.upload_file(file=target, user="u")
    print(f"\n50 MB upload ({given}): peak RSS {peak_rss_mb():.0f} MB")
    assert result.id == "file-1"
    assert uploaded_part(server) == ("big.bin", pattern_digest(SIZE), SIZE)
    assert_streamed_from_disk(opened)


async def test_async_fifty_megabyte_upload_streams_from_disk(
    server: FaultServer, big_file: Path, opened: list[ReadTracker]
) -> None:
    server.route("POST", UPLOAD, respond(201, json=UPLOADED))
    async with AsyncClient(**client_options(server)) as client:
        result = await client.dify.upload_file(file=big_file, user="u")
    assert result.id == "file-1"
    assert uploaded_part(server) == ("big.bin", pattern_digest(SIZE), SIZE)
    assert_streamed_from_disk(opened)
