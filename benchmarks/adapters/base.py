"""What a workload asks of a contender, and where the contender's requests go.

An adapter is one contender's way of doing each operation the workloads need (a blocking
chat, a stream, a list, a download; sync and async). A workload (``workloads.py``) builds a
:class:`Wire`, asks the adapter for a client on it and times what the adapter returns.
Operations a contender lacks raise :class:`harness.NotAvailable`, shown as ``n/a (reason)``.

Adapter modules import only the standard library at module level: W1 times the contender's
own imports, so everything else is imported inside the methods (once per process, never per
timed call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

IN_PROCESS = "http://dify.bench/v1"


class Wire:
    """Where requests go: ``base_url`` of the loopback server, or answers from memory.

    In process, ``body`` (a JSON answer) or ``frames`` (an event stream, one chunk each)
    is what every request gets, and ``recorder`` keeps the first request so the workload
    can check the contender sent the same call as the others. ``connections`` sizes the
    pool (None: the library's default); ``options`` are extra client settings this SDK's
    adapter passes on (a plain class, not a dataclass: W1 imports this module untimed, and
    ``dataclasses`` would pull ``inspect`` in before the contender's own imports).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        body: bytes | None = None,
        frames: list[bytes] | None = None,
        connections: int | None = None,
        timeout: float | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        from harness import Recorded

        self.base_url = base_url
        self.body = body
        self.frames = frames
        self.connections = connections
        self.timeout = timeout
        self.options = options or {}
        self.recorder = Recorded()

    @property
    def inproc(self) -> bool:
        return self.base_url is None

    @property
    def url(self) -> str:
        return self.base_url or IN_PROCESS


def unavailable(reason: str) -> Any:
    from harness import NotAvailable

    return NotAvailable(reason)


class Adapter:
    """One contender. Subclasses override what their library can do; the rest is n/a."""

    #: Why the sync or async side is missing, when it is.
    no_sync = "no sync API"
    no_async = "no async API"

    def __init__(self, **options: Any) -> None:
        self.options = options

    def w1(self) -> Any:
        """Import the library and build a client ready to call chat (W1 times this)."""
        raise unavailable("no W1 recipe")

    # -- sync --------------------------------------------------------------------------

    def client(self, wire: Wire) -> Any:
        raise unavailable(self.no_sync)

    def chat(self, client: Any, user: str) -> Callable[[], Any]:
        """A blocking chat call, ``call() -> decoded answer``."""
        raise unavailable("no blocking chat")

    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        """One whole stream (``case``: chat or workflow), its decoded events in order."""
        raise unavailable(f"no {case} stream")

    def lists(self, client: Any, kind: str, n: int) -> Callable[[], Any]:
        """``kind``: documents (knowledge base) or messages (conversation history)."""
        raise unavailable(f"no {kind} list")

    def download(self, client: Any, user: str, path: str) -> int:
        """Text-to-audio written to ``path``; returns the bytes written."""
        raise unavailable("no text-to-audio")

    def close(self, client: Any) -> None:
        close = getattr(client, "close", None)
        if close is not None:
            close()

    # -- async -------------------------------------------------------------------------

    async def aclient(self, wire: Wire) -> Any:
        raise unavailable(self.no_async)

    def achat(self, client: Any, user: str) -> Callable[[], Awaitable[Any]]:
        raise unavailable("no async blocking chat")

    def astream(self, client: Any, case: str, user: str) -> AsyncIterator[Any]:
        raise unavailable(f"no async {case} stream")

    async def aclose(self, client: Any) -> None:
        await client.aclose()
