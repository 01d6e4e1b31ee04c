"""Batch progress on stderr: a live bar on a terminal (tqdm, else rich), else plain lines.

Plain lines come every ``interval`` seconds whether or not an item finished, so a batch
whose calls are slow still says it is alive: ``batch chat.send: 40/100 done (2 failed),
12.5/s, ETA 5s``.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from typing import Any

from .context import err, format_duration

__all__ = ["Progress", "progress"]

#: The shortest wait between two plain lines printed while no item finishes.
MIN_TICK = 0.1


class Progress:
    """Plain periodic lines: ``done/total``, failures, rate and ETA."""

    def __init__(self, label: str, total: int, interval: float, enabled: bool) -> None:
        self.label = label
        self.total = total
        self.interval = interval
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self) -> None:
        """Begin the lines that come even while no item finishes."""
        if self.enabled and self.total and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="dify-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(max(self.interval, MIN_TICK)):
            self._maybe_print()

    def advance(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
        self._maybe_print()

    def _maybe_print(self) -> None:
        with self._lock:
            now = time.monotonic()
            if not self.enabled or now - self._last < self.interval or self._stop.is_set():
                return
            self._last = now
            err(self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        failed = f" ({self.failed} failed)" if self.failed else ""
        eta_text = format_duration(eta) if eta is not None else "?"
        return f"{self.label}: {self.done}/{self.total} done{failed}, {rate:.1f}/s, ETA {eta_text}"

    def close(self) -> None:
        with self._lock:
            self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None


class _TqdmProgress(Progress):
    def __init__(self, label: str, total: int, interval: float, enabled: bool) -> None:
        super().__init__(label, total, interval, enabled)
        tqdm = importlib.import_module("tqdm").tqdm  # optional: the "progress" extra
        try:
            size = os.get_terminal_size(sys.stderr.fileno())
        except (OSError, ValueError):
            size = os.terminal_size((0, 0))
        # A terminal reporting no size (some pseudo-terminals) would hide the bar.
        shape: dict[str, Any] = (
            {"dynamic_ncols": True} if size.columns and size.lines else {"ncols": 80, "nrows": 24}
        )
        self.bar = tqdm(total=total, desc=label, unit="item", file=sys.stderr, **shape)

    def advance(self, ok: bool) -> None:
        self.done += 1
        if not ok:
            self.failed += 1
            self.bar.set_postfix(failed=self.failed, refresh=False)
        self.bar.update(1)

    def start(self) -> None:
        pass  # the bar shows itself

    def close(self) -> None:
        self.bar.close()


class _RichProgress(Progress):
    def __init__(self, label: str, total: int, interval: float, enabled: bool) -> None:
        super().__init__(label, total, interval, enabled)
        console = importlib.import_module("rich.console")  # optional, if installed
        columns = importlib.import_module("rich.progress")
        text = columns.TextColumn
        self.bar = columns.Progress(
            text("{task.description}"),
            columns.BarColumn(),
            columns.MofNCompleteColumn(),
            text("{task.fields[rate]}"),
            text("{task.fields[failed]}"),
            columns.TimeElapsedColumn(),
            text("ETA"),
            columns.TimeRemainingColumn(),
            console=console.Console(file=sys.stderr),
        )
        self.task = self.bar.add_task(label, total=total, rate="", failed="")
        self.bar.start()

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        elapsed = max(time.monotonic() - self.started, 1e-9)
        failed = f"{self.failed} failed" if self.failed else ""
        self.bar.update(self.task, advance=1, rate=f"{self.done / elapsed:.1f}/s", failed=failed)

    def start(self) -> None:
        pass  # the bar shows itself

    def close(self) -> None:
        self.bar.stop()


def progress(label: str, total: int, interval: float, enabled: bool) -> Progress:
    """A live bar (tqdm, else rich) on a terminal; plain periodic lines otherwise. Started."""
    shown: Progress | None = None
    if enabled and total and sys.stderr.isatty():
        for factory in (_TqdmProgress, _RichProgress):
            try:
                shown = factory(label, total, interval, enabled)
                break
            except ImportError:
                continue
    if shown is None:
        shown = Progress(label, total, interval, enabled)
    shown.start()
    return shown
