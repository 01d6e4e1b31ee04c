"""A JSONL batch that survives being killed: the input file, and the output file as a journal.

The input is one JSON object per line, ``{"id": ..., "args": {...}}`` or the arguments
themselves with an optional ``id``. The output has one line per input,
``{"id", "index", "ok", "result" | "error"}``, each written and flushed as soon as it is
known, so a run killed at any moment keeps everything it finished and the next run does
only the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .._exceptions import APIStatusError, DifyError
from ..batch.result import BatchResult

__all__ = ["InputFile", "InvalidInputError", "JournalError", "OutputFile", "result_record"]


class JournalError(DifyError):
    """The batch files cannot be used as given: repeated ids, or an output in use."""


class _Invalid(dict[str, Any]):
    """An input line that is not a JSON object: its call fails before any request."""

    def __init__(self, message: str) -> None:
        super().__init__({"__invalid_input__": True})
        self.message = message


class InvalidInputError(DifyError):
    """An input line of a batch that is not a JSON object (or whose ``args`` is not one)."""


Key = tuple[str, str]


def _key_of(item_id: Any, index: int) -> Key:
    """Results match inputs by ``id``, or by position when there is none."""
    if item_id is None:
        return ("index", str(index))
    return ("id", json.dumps(item_id, sort_keys=True, ensure_ascii=False))


class InputFile:
    """The input JSONL: read once for the keys, again (streaming) for the arguments."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: list[Key] = []
        self.ids: list[Any] = []
        seen: dict[Key, int] = {}
        for index, (line_number, line) in enumerate(self._lines()):
            item_id = None
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    item_id = parsed.get("id")
            key = _key_of(item_id, index)
            if key in seen:
                raise JournalError(
                    f"{path}: line {line_number} repeats the id {item_id!r} of line {seen[key]}; "
                    "ids must be unique so a resumed batch can tell items apart"
                )
            seen[key] = line_number
            self.keys.append(key)
            self.ids.append(item_id)

    def _lines(self) -> Iterator[tuple[int, str]]:
        with self.path.open("r", encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, 1):
                if line.strip():
                    yield line_number, line

    def arguments(
        self, wanted: set[int], prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The call arguments of the wanted items, in input order (``prepare`` fills in
        what every call needs)."""
        for index, (line_number, line) in enumerate(self._lines()):
            if index not in wanted:
                continue
            arguments = self._parse(line, line_number)
            if prepare is not None and not isinstance(arguments, _Invalid):
                arguments = prepare(arguments)
            yield arguments

    @staticmethod
    def _parse(line: str, line_number: int) -> dict[str, Any]:
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            return _Invalid(f"line {line_number} is not JSON: {exc.msg}")
        if not isinstance(item, dict):
            return _Invalid(f"line {line_number} is not a JSON object")
        if "args" in item:
            arguments = item["args"]
            if not isinstance(arguments, dict):
                return _Invalid(f"line {line_number}: 'args' is not a JSON object")
        else:
            arguments = {k: v for k, v in item.items() if k != "id"}
        return arguments


class _Record(typing.NamedTuple):
    offset: int
    length: int
    ok: bool


class OutputFile:
    """The output JSONL: what earlier runs wrote, and the appending writer of this run.

    Each result is one line written and flushed as soon as it is known, so a killed run
    keeps everything it finished. A line cut by a kill is dropped on the next run. When the
    file is not simply the input order (a resumed run retried failures, or a run was killed
    after such appends), it is rewritten at the end, atomically, with the last line of each
    id winning.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.latest: dict[Key, _Record] = {}
        self.order: list[Key] = []  # keys in file order, duplicates included
        self.clean = True  # no unreadable lines
        self._handle: IO[bytes] | None = None

    def open(self) -> None:
        """Create or open the file, lock it against a second batch, then read it."""
        handle = self.path.open("ab")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            pass
        else:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise JournalError(f"another batch is writing to {self.path}") from None
        self._handle = handle
        end = self._scan()
        if end < os.fstat(handle.fileno()).st_size:
            handle.truncate(end)  # a line cut by a kill mid-write: its item runs again

    def _scan(self) -> int:
        """Index the complete lines; returns where they end."""
        offset = 0
        with self.path.open("rb") as source:
            for raw in source:
                if not raw.endswith(b"\n"):
                    break
                parsed = self._parse(raw)
                if parsed is None:
                    self.clean = False
                else:
                    key, ok = parsed
                    self.latest[key] = _Record(offset, len(raw), ok)
                    self.order.append(key)
                offset += len(raw)
        return offset

    @staticmethod
    def _parse(raw: bytes) -> tuple[Key, bool] | None:
        if not raw.strip():
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(record, dict) or not isinstance(record.get("index"), int):
            return None
        if not isinstance(record.get("ok"), bool):
            return None
        return _key_of(record.get("id"), record["index"]), record["ok"]

    def write(self, key: Key, line: bytes, ok: bool) -> None:
        handle = self._handle
        assert handle is not None
        offset = handle.seek(0, os.SEEK_END)
        handle.write(line)
        handle.flush()
        self.latest[key] = _Record(offset, len(line), ok)
        self.order.append(key)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self, keys: list[Key]) -> int:
        """Put the file in input order, one line per item; returns the lines that match no
        input (kept at the end)."""
        wanted = set(keys)
        extras = [k for k in dict.fromkeys(self.order) if k not in wanted]
        if self.clean and self.order == keys:
            return 0
        temporary = self.path.with_name(self.path.name + ".rewrite.tmp")
        rewritten: dict[Key, _Record] = {}
        with self.path.open("rb") as source, temporary.open("wb") as target:
            for key in [*keys, *extras]:
                record = self.latest.get(key)
                if record is None:
                    continue
                source.seek(record.offset)
                rewritten[key] = _Record(target.tell(), record.length, record.ok)
                target.write(source.read(record.length))
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, self.path)
        self.latest, self.order, self.clean = rewritten, list(rewritten), True
        return len(extras)


def result_record(item_id: Any, index: int, result: BatchResult[Any]) -> dict[str, Any]:
    """One output line: the result, or the error as type, status, code and message."""
    if result.ok:
        return {"id": item_id, "index": index, "ok": True, "result": result.value}
    error = result.error
    if isinstance(result.input, _Invalid):
        error = InvalidInputError(result.input.message)
    assert error is not None
    if isinstance(error, APIStatusError):
        status: int | None = error.status_code
        code: str | None = error.code
        message = error.message
    else:
        status = getattr(error, "status_code", None)
        code = None
        message = str(error)
    return {
        "id": item_id,
        "index": index,
        "ok": False,
        "error": {"type": type(error).__name__, "status": status, "code": code, "message": message},
    }
