"""Concurrency slots: at most one request per pooled connection, served in arrival order.

Requests queued inside httpcore's pool cost time quadratic in the queue length, so the
queue lives here instead, and it is fair: a releasing caller cannot take its slot straight
back while others wait.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["AsyncSlots", "Slots"]


class Slots:
    """A fair counting semaphore for threads."""

    __slots__ = ("_free", "_lock", "_waiters")

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float | None) -> bool:
        """Take a slot within ``timeout`` seconds (``None``: wait as long as it takes)."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._lock:
            try:
                self._waiters.remove(turn)
            except ValueError:
                return True  # handed a slot just as the wait ran out
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the slot goes straight to the next in line
            else:
                self._free += 1


class AsyncSlots:
    """A fair counting semaphore for tasks of one event loop.

    Waiting for a slot is cancellable: a task cancelled while it waits raises
    ``CancelledError`` (``asyncio.wait_for`` around an acquire swallows it on Python 3.10
    and 3.11), and a slot handed to it at that moment passes on to the next waiter.
    ``release`` may be called from any thread, and after the loop has closed.
    """

    __slots__ = ("_free", "_lock", "_waiters", "loop")

    def __init__(self, slots: int, loop: Any) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[Any] = deque()  # futures of ``loop``
        self.loop = loop

    async def acquire(self, timeout: float | None) -> bool:
        import asyncio

        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = self.loop.create_future()
            self._waiters.append(turn)
        try:
            done, _ = await asyncio.wait((turn,), timeout=timeout)
        except BaseException:
            self._abandon(turn)
            raise
        if done:
            return True
        self._abandon(turn)
        return False

    def _abandon(self, turn: Any) -> None:
        """Leave the queue after a timeout or a cancellation.

        A slot already handed to this waiter (granted, or its grant still on its way) passes
        on to the next one, so no slot is lost.
        """
        with self._lock:
            try:
                self._waiters.remove(turn)
            except ValueError:
                handed = True
            else:
                handed = False
        if handed:
            self.release()
        else:
            turn.cancel()

    def release(self) -> None:
        import asyncio

        with self._lock:
            while self._waiters:
                turn = self._waiters.popleft()
                if turn.done() or self.loop.is_closed():
                    continue
                break
            else:
                self._free += 1
                return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            _grant(turn)
        else:
            self.loop.call_soon_threadsafe(_grant, turn)


def _grant(turn: Any) -> None:
    if not turn.done():
        turn.set_result(True)
