"""What a stream has produced so far, kept by the facts each event class declares.

Nothing here knows an event by name: what an event adds to the answer, whether it ends the
stream, which ids it carries and what ``collect`` takes from it are class variables of the
event types (``dify_oapi.types.events.Event``).
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable
from typing import Any

from ..types.events import RunIds

__all__ = ["StreamState"]


class _Plan:
    """An event class's facts, read once per class."""

    __slots__ = (
        "closes",
        "collects",
        "delta",
        "failure",
        "final",
        "ids",
        "opens",
        "raw",
        "replaces",
        "replay",
        "sets",
        "tag",
        "whole_after",
    )

    def __init__(self, kind: type) -> None:
        config = getattr(kind, "__struct_config__", None)
        self.tag: str | None = getattr(config, "tag", None)
        self.raw = not isinstance(self.tag, str)  # UnknownEvent keeps its fields in .raw
        self.ids: tuple[str, ...] = kind.ids  # type: ignore[attr-defined]
        self.delta: Callable[[Any], Any] | None = (
            operator.attrgetter(kind.delta) if kind.delta else None  # type: ignore[attr-defined]
        )
        self.replaces: bool = kind.replaces  # type: ignore[attr-defined]
        self.whole_after: tuple[str, ...] = kind.whole_after  # type: ignore[attr-defined]
        self.final: bool = kind.final  # type: ignore[attr-defined]
        self.opens: bool = kind.opens  # type: ignore[attr-defined]
        self.closes: bool = kind.closes  # type: ignore[attr-defined]
        failure = kind.failure  # type: ignore[attr-defined]
        self.failure: tuple[Callable[[Any], Any], tuple[str, ...], Callable[[Any], Any]] | None = (
            None if failure is None else (_path(failure[0]), tuple(failure[1]), _path(failure[2]))
        )
        self.collects: bool = bool(kind.collect)  # type: ignore[attr-defined]
        self.sets: dict[str, Any] = kind.sets  # type: ignore[attr-defined]
        replay = kind.replay  # type: ignore[attr-defined]
        self.replay: Callable[[Any], tuple[Any, ...]] | None = _key(replay) if replay else None


def _path(dotted: str) -> Callable[[Any], Any]:
    """A getter for ``a.b.c`` that gives ``None`` where a step is missing."""
    parts = dotted.split(".")

    def get(obj: Any) -> Any:
        for part in parts:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj

    return get


def _key(paths: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    getters = [_path(p) for p in paths]
    first = getters[0]

    def key(event: Any) -> tuple[Any, ...]:
        if first(event) is None:
            return ()
        return (type(event), *(g(event) for g in getters))

    return key


_PLANS: dict[type, _Plan] = {}


def plan_of(kind: type) -> _Plan:
    plan = _PLANS.get(kind)
    if plan is None:
        plan = _PLANS[kind] = _Plan(kind)  # idempotent: two threads build equal plans
    return plan


def replay_key(event: Any) -> tuple[Any, ...]:
    """The event's identity for dropping replays (empty when it has none)."""
    get = plan_of(type(event)).replay
    return get(event) if get is not None else ()


class StreamState(RunIds):
    """What a stream has produced so far: ids, answer text, recent events, how it ended.

    Carried by every error raised mid-stream as ``error.partial``, so a caller can stop the
    task (``task_id``), continue the conversation (``conversation_id``, ``message_id``) or
    re-attach to a run (``workflow_run_id``). The answer text is kept whole; ``events``
    holds the last :attr:`MAX_EVENTS` events, so a long stream's memory stays flat.
    ``finished`` is set by the stream's final event; ``failed`` and ``error`` tell a run
    that reported failure; ``stopped`` that this client asked for the stop that ended it.
    """

    MAX_EVENTS = 256

    __slots__ = (
        "_appends",
        "_chunks",
        "_finals",
        "_keys",
        "_open",
        "_recent",
        "_seen_delta",
        "_whole",
        "count",
        "error",
        "failed",
        "finished",
        "ids",
        "sets",
        "stop_requested",
    )

    def __init__(self, resumable: bool = False, in_run: bool = False) -> None:
        self.ids: dict[str, str] = {}
        self.count = 0
        self.finished = False
        self.failed = False
        self.error: str | None = None
        self.stop_requested = False
        self.sets: dict[str, Any] = {}
        self._recent: deque[Any] = deque(maxlen=self.MAX_EVENTS)
        self._finals: list[Any] = []  # events collect() takes fields from
        # Replay keys of events with an identity, for dropping what a re-attach repeats.
        self._keys: set[tuple[Any, ...]] | None = set() if resumable else None
        self._chunks: list[str] = []
        self._whole: set[str] = set()
        self._open = in_run  # inside a run: only the run's closing event ends the stream
        self._seen_delta: set[type] = set()
        # Delta kinds whose text is only appended, by kind: the bulk of a stream takes one
        # lookup here instead of its plan's rules.
        self._appends: dict[type, Callable[[Any], Any]] = {}

    def _id(self, name: str) -> str | None:
        return self.ids.get(name)

    @property
    def stopped(self) -> bool:
        """The run ended without success after this client asked it to stop."""
        return self.stop_requested and self.finished and self.failed

    @property
    def events(self) -> list[Any]:
        """The last :attr:`MAX_EVENTS` events, oldest first (``count`` says how many came)."""
        return list(self._recent)

    @property
    def answer(self) -> str:
        """The answer text received so far."""
        chunks = self._chunks
        if len(chunks) > 1:
            chunks[:] = ["".join(chunks)]
        return chunks[0] if chunks else ""

    @property
    def finals(self) -> list[Any]:
        """The events whose fields ``collect`` copies, in arrival order."""
        return list(self._finals)

    def replay_keys(self) -> set[tuple[Any, ...]]:
        return set(self._keys or ())

    def update(self, event: Any) -> None:
        self.count += 1
        self._recent.append(event)
        kind = type(event)
        append = self._appends.get(kind)
        if append is not None:
            text = append(event)
            if text is not None:
                self._chunks.append(text)
            return
        plan = _PLANS.get(kind) or plan_of(kind)
        delta = plan.delta
        if delta is not None:
            # Deltas repeat their ids: read them from the first of each kind only.
            if kind not in self._seen_delta:
                self._seen_delta.add(kind)
                self._read_ids(event, plan)
            text = delta(event) if not plan.raw else None
            replaces = plan.replaces or plan.tag in self._whole
            if text is not None:
                if replaces:
                    self._chunks[:] = [text]
                else:
                    self._chunks.append(text)
            if plan.whole_after:
                self._whole.update(plan.whole_after)
                self._appends.clear()  # a kind that appended may replace from now on
            elif not replaces and not plan.raw:
                self._appends[kind] = delta
            return
        self._read_ids(event, plan)
        if plan.sets:
            self.sets.update(plan.sets)
        if plan.opens:
            self._open = True
        if plan.closes:
            self._open = False
        if plan.failure is not None:
            status, failing, error = plan.failure
            if status(event) in failing:
                self.failed = True
                self.error = error(event)
        if plan.collects:
            self._finals.append(event)
        if self._keys is not None and plan.replay is not None:
            key = plan.replay(event)
            if key:
                self._keys.add(key)
        if plan.final and not self._open:
            self.finished = True

    def _read_ids(self, event: Any, plan: _Plan) -> None:
        ids = self.ids
        if plan.raw:
            raw = event.raw
            for name in plan.ids:
                value = raw.get(name)
                if isinstance(value, str) and value:
                    ids[name] = value
            return
        for name in plan.ids:
            value = getattr(event, name, None)
            if value:
                ids[name] = value

    def __repr__(self) -> str:
        ids = " ".join(f"{k}={v!r}" for k, v in self.ids.items())
        return f"<StreamState {ids} events={self.count} answer_chars={len(self.answer)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        state = {name: getattr(self, name) for name in self.__slots__}
        return (_restore, (state,))


def _restore(state: dict[str, Any]) -> StreamState:
    obj = StreamState.__new__(StreamState)
    for name, value in state.items():
        object.__setattr__(obj, name, value)
    return obj
