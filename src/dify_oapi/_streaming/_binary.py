"""Binary answers read in chunks (audio, file previews, zips), never held whole in memory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from .._exceptions import APIConnectionError
from .._hooks import in_scope

if TYPE_CHECKING:
    from .._transport import Lease

__all__ = ["AsyncBinaryStream", "BinaryStream"]


class _BinaryBase:
    __slots__ = ("__weakref__", "_lease", "_on_end", "operation", "response")

    def __init__(self, lease: Lease) -> None:
        self._lease = lease
        self.response: httpx.Response = lease.response
        self.operation = lease.op
        self._on_end: tuple[Any, ...] | None = None
        lease.watch(self)

    def _end_with(self, ep: Any, handlers: tuple[Any, ...], data: dict[Any, Any]) -> None:
        """Run ``handlers`` once, when the body was read, failed or was closed."""
        self._on_end = (ep, handlers, data)

    def _over(self, error: BaseException | None) -> None:
        ending, self._on_end = self._on_end, None
        if ending is not None:
            ep, handlers, data = ending
            with in_scope(data):  # the handlers see the dict of the call that made the stream
                for handler in handlers:
                    handler(ep, self, error)

    @property
    def content_type(self) -> str | None:
        content_type: str | None = self.response.headers.get("content-type")
        return content_type

    def _interrupted(self, exc: httpx.TransportError) -> APIConnectionError:
        return APIConnectionError(
            f"download interrupted: {type(exc).__name__}", operation=self.operation
        )


class BinaryStream(_BinaryBase):
    """A binary answer: iterate :meth:`iter_bytes` or :meth:`write_to` a file."""

    __slots__ = ()

    def iter_bytes(self, chunk_size: int = 65536) -> Iterator[bytes]:
        lease = self._lease
        buffer = bytearray()
        try:
            for chunk in lease.chunks():
                buffer += chunk
                while len(buffer) >= chunk_size:
                    yield bytes(buffer[:chunk_size])
                    del buffer[:chunk_size]
            if buffer:
                yield bytes(buffer)
        except httpx.TransportError as exc:
            failure = self._interrupted(exc)
        else:
            lease.close()  # the connection is back before on-end handlers run
            self._over(None)
            return
        finally:
            lease.close()
        self._over(failure)
        raise failure  # outside the except block: no httpx exception (with its request) chained

    def write_to(self, path: str | os.PathLike[str], chunk_size: int = 65536) -> int:
        """Write the body to ``path`` chunk by chunk; returns the number of bytes."""
        written = 0
        with open(path, "wb") as f:
            for chunk in self.iter_bytes(chunk_size):
                f.write(chunk)
                written += len(chunk)
        return written

    def close(self) -> None:
        self._lease.close()
        self._over(None)

    def __enter__(self) -> BinaryStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncBinaryStream(_BinaryBase):
    """Async twin of :class:`BinaryStream`."""

    __slots__ = ()

    async def iter_bytes(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        lease = self._lease
        buffer = bytearray()
        try:
            async for chunk in lease.achunks():
                buffer += chunk
                while len(buffer) >= chunk_size:
                    yield bytes(buffer[:chunk_size])
                    del buffer[:chunk_size]
            if buffer:
                yield bytes(buffer)
        except httpx.TransportError as exc:
            failure = self._interrupted(exc)
        else:
            await lease.aclose()  # the connection is back before on-end handlers run
            self._over(None)
            return
        finally:
            await lease.aclose()
        self._over(failure)
        raise failure  # outside the except block: no httpx exception (with its request) chained

    async def write_to(self, path: str | os.PathLike[str], chunk_size: int = 65536) -> int:
        """Write the body to ``path`` chunk by chunk; returns the number of bytes."""
        written = 0
        with open(path, "wb") as f:
            async for chunk in self.iter_bytes(chunk_size):
                f.write(chunk)
                written += len(chunk)
        return written

    async def close(self) -> None:
        await self._lease.aclose()
        self._over(None)

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> AsyncBinaryStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
