"""In-memory stores: one per app, one for the workspace's knowledge bases, and running tasks.

Records are plain dicts shaped like the API's answers; keys starting with ``_`` are private
(owner, links) and are dropped by :func:`public` before a record is sent.
"""

from __future__ import annotations

import datetime
import mimetypes
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "AppState",
    "Ids",
    "KnowledgeState",
    "Record",
    "StoredFile",
    "Task",
    "Upload",
    "public",
]

Record = dict[str, Any]
#: Events after which a stream may end.
FINAL_EVENTS = frozenset({"message_end", "workflow_finished"})
#: The error of a run stopped by its user.
STOPPED = "Aborted: User requested stop"


def public(record: Record) -> Record:
    """The record without its private ``_`` keys."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


class Ids:
    """Seedable uuid4 ids and timestamps from an injectable clock."""

    def __init__(self, seed: int | None, clock: Callable[[], float]) -> None:
        self._rng = random.Random(seed)
        self._clock = clock

    def new(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def digits(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789") for _ in range(n))

    def now(self) -> int:
        return int(self._clock())

    def iso(self) -> str:
        """UTC with no zone suffix, as Dify writes end users' and feedback's times."""
        when = datetime.datetime.fromtimestamp(self.now(), tz=datetime.timezone.utc)
        return when.replace(tzinfo=None).isoformat()

    def mark(self) -> tuple[float, float]:
        """A start for :meth:`since`."""
        return self._clock(), time.monotonic()

    def since(self, mark: tuple[float, float]) -> float:
        """Seconds since the mark: real time, or the injected clock's if it ran further (a
        frozen clock cannot stop the count; a test's stepped clock can hurry it)."""
        return max(self._clock() - mark[0], time.monotonic() - mark[1])


class Upload(NamedTuple):
    """A file part of a multipart request."""

    name: str
    content: bytes
    content_type: str


@dataclass
class StoredFile:
    """An uploaded file (app upload, document source, pipeline file) and its bytes."""

    id: str
    name: str
    content: bytes
    mime_type: str
    created_by: str | None
    created_at: int

    @property
    def extension(self) -> str:
        return self.name.rpartition(".")[2].lower() if "." in self.name else ""

    @staticmethod
    def guess_type(name: str, given: str | None) -> str:
        if given and given not in ("application/octet-stream", "text/plain"):
            return given
        return mimetypes.guess_type(name)[0] or given or "application/octet-stream"


@dataclass
class Task:
    """A generation (message or workflow run) whose events are handed out one at a time.

    Streams deliver ``events[cursor:]``; when the last one goes out (or the task is
    stopped) ``settle`` records the outcome from the events delivered so far.
    """

    id: str
    user: str
    events: list[Record]
    settle: Callable[[Task], None]
    run_id: str | None = None
    cursor: int = 0
    settled: bool = False
    stopped: bool = False

    def next(self) -> Record | None:
        if self.cursor >= len(self.events):
            return None
        event = self.events[self.cursor]
        self.cursor += 1
        if self.cursor == len(self.events):
            self.finish()
        return event

    def finish(self) -> None:
        if not self.settled:
            self.settled = True
            self.settle(self)

    def drain(self) -> None:
        while self.next() is not None:
            pass

    def delivered(self) -> list[Record]:
        return self.events[: self.cursor]

    def stop(self) -> None:
        """End the task now, as Dify does: a run closes with a failed ``workflow_finished``
        ("Aborted: User requested stop") and no ``message_end``; a plain answer sends one
        more delta, then ``message_end`` with zero usage."""
        if self.settled:
            return
        rest = self.events[self.cursor :]
        tail = [e for e in rest if e["event"] in FINAL_EVENTS]
        if any(e["event"] == "workflow_finished" for e in tail):
            tail = [e for e in tail if e["event"] == "workflow_finished"]
            for event in tail:
                event["data"].update(status="failed", outputs={}, error=STOPPED)
        else:
            delta = [e for e in rest[:1] if e["event"] not in FINAL_EVENTS]
            for event in tail:
                usage = event.get("metadata", {}).get("usage")
                if usage is not None:
                    usage.update({k: 0 for k in usage if k.endswith("_tokens")})
                    usage.update({k: "0E-7" for k in usage if k.endswith("_price")})
            tail = delta + tail
        self.events[self.cursor :] = tail
        self.stopped = True
        self.finish()


@dataclass
class AppState:
    """Everything one app remembers."""

    app_id: str
    workflow_id: str
    tick: int = 0  # orders records created within the same clock second
    conversations: dict[str, Record] = field(default_factory=dict)
    messages: dict[str, Record] = field(default_factory=dict)
    feedbacks: dict[str, Record] = field(default_factory=dict)
    annotations: dict[str, Record] = field(default_factory=dict)
    annotation_reply: bool = False
    jobs: dict[str, str] = field(default_factory=dict)
    runs: dict[str, Record] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    end_users: dict[str, Record] = field(default_factory=dict)
    used_files: set[str] = field(default_factory=set)  # uploads its messages carry
    replies_used: int = 0
    active: int = 0  # generations in flight (blocking calls being answered, open streams)

    def touch(self) -> int:
        self.tick += 1
        return self.tick


@dataclass
class KnowledgeState:
    """The workspace's knowledge bases (one dataset key reaches all of them)."""

    datasets: dict[str, Record] = field(default_factory=dict)
    documents: dict[str, Record] = field(default_factory=dict)
    segments: dict[str, Record] = field(default_factory=dict)
    child_chunks: dict[str, Record] = field(default_factory=dict)
    tags: dict[str, Record] = field(default_factory=dict)
    bindings: dict[str, list[str]] = field(default_factory=dict)  # dataset id -> tag ids
    fields: dict[str, Record] = field(default_factory=dict)  # metadata fields
    batches: dict[str, list[str]] = field(default_factory=dict)  # batch -> document ids
