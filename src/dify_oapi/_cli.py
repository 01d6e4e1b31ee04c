"""The ``dify-oapi`` command line: chat, complete, run-workflow, kb, call, batch, emulator.

Every subcommand goes through the same :class:`~dify_oapi.Client` a program would use, so
retries, streaming and errors behave the same. Errors end the command with one line on
stderr and exit code 1 (2 for a malformed command line, 130 on Ctrl-C); a traceback means a
bug. ``--emulator`` runs against the in-process emulator: no account, no network.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    DifyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterruptedError,
)

if TYPE_CHECKING:
    from ._batch import BatchResult
    from ._client import Client
    from ._table import Endpoint

__all__ = ["main"]

PROG = "dify-oapi"
DEFAULT_USER = "dify-oapi-cli"
#: The base URL the in-process emulator answers on (nothing is sent over a network).
EMULATOR_BASE_URL = "http://emulator.local/v1"
#: Keys used with ``--emulator`` (the emulator takes any ``app-`` / ``dataset-`` key).
EMULATOR_KEYS = {"app": "app-emulator", "dataset": "dataset-emulator"}


class CLIError(Exception):
    """A failure reported as one line on stderr with exit code 1."""


# -- argument helpers ---------------------------------------------------------------------


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _split_pair(token: str) -> tuple[str, str, bool]:
    """``key=value`` -> (key, value, False); ``key:=json`` -> (key, json, True)."""
    eq = token.find("=")
    if eq <= 0:
        raise CLIError(f"expected key=value (or key:=JSON), got {token!r}")
    if token[eq - 1] == ":" and eq > 1:
        return token[: eq - 1], token[eq + 1 :], True
    return token[:eq], token[eq + 1 :], False


def _parse_json_value(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{key}:= takes JSON, got {text!r} ({exc.msg})") from None


def parse_inputs(pairs: Iterable[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """App inputs: ``key=value`` is a string, ``key:=JSON`` any JSON value."""
    inputs = dict(base or {})
    for token in pairs:
        key, text, is_json = _split_pair(token)
        inputs[key] = _parse_json_value(key, text) if is_json else text
    return inputs


def _field_kinds(ep: Endpoint) -> dict[str, str]:
    """``"file"``, ``"str"`` (text only: kept as typed) or ``"any"`` for each request field."""
    if ep.request is None:
        return {}
    from ._table import struct_fields

    kinds: dict[str, str] = {}
    for info in struct_fields(ep.request):
        if info.name in ep.file_fields:
            kinds[info.name] = "file"
        elif _text_only(info.type):
            kinds[info.name] = "str"
        else:
            kinds[info.name] = "any"
    return kinds


def _text_only(tp: Any) -> bool:
    """Whether a field accepts strings and nothing else (besides unset and None)."""
    members = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, _union_type()) else ()
    options = [m for m in (members or (tp,)) if m not in (msgspec.UnsetType, type(None))]
    if not options:
        return False
    for option in options:
        if option is str:
            continue
        if typing.get_origin(option) is typing.Literal and all(
            isinstance(v, str) for v in typing.get_args(option)
        ):
            continue
        return False
    return True


def _union_type() -> Any:
    import types

    return getattr(types, "UnionType", typing.Union)


def _read_at_file(key: str, path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except OSError as exc:
        raise CLIError(f"{key}=@{path}: cannot read the file ({exc.strerror or exc})") from None


def parse_call_arguments(ep: Endpoint, tokens: Iterable[str]) -> dict[str, Any]:
    """Arguments of ``call``: JSON when the value parses as JSON, else the string.

    Text-only fields keep the string as typed (``query=42`` sends ``"42"``); ``key:=JSON``
    forces JSON; ``key=@path`` names a file for a file field and reads the file (as JSON when
    it parses, else text) for any other field; ``key=@@text`` is the literal ``@text``.
    """
    kinds = _field_kinds(ep)
    arguments: dict[str, Any] = {}
    for token in tokens:
        key, text, is_json = _split_pair(token)
        kind = kinds.get(key, "any")
        if is_json:
            arguments[key] = _parse_json_value(key, text)
            continue
        if text.startswith("@@"):
            text = text[1:]
        elif text.startswith("@"):
            if kind == "file":
                arguments[key] = Path(text[1:])
                continue
            text = _read_at_file(key, text[1:])
            if kind == "str":
                arguments[key] = text
                continue
        if kind == "file":
            arguments[key] = Path(text)
        elif kind == "str":
            arguments[key] = text
        else:
            try:
                arguments[key] = json.loads(text)
            except json.JSONDecodeError:
                arguments[key] = text
    return arguments


# -- output helpers -----------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """Structs, lists of structs and bytes as JSON-ready builtins (bytes become base64)."""
    return msgspec.to_builtins(value)


def dump_json(value: Any, *, compact: bool) -> str:
    plain = to_plain(value)
    if compact:
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(plain, ensure_ascii=False, indent=2)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


# -- context: the client(s) a command uses -------------------------------------------------


class Context:
    """The parsed arguments and lazily built clients (one per key kind)."""

    def __init__(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
        self.args = args
        self.parser = parser
        self.json: bool = bool(args.json)
        self.user: str = args.user or os.environ.get("DIFY_USER") or DEFAULT_USER
        self._clients: dict[str, Client] = {}
        self._emulator: Any = None
        self.pending_newline = False  # stdout holds a partial line (a streamed answer)

    def client(self, kind: str = "app") -> Client:
        """A client for an app key (``"app"``) or a knowledge key (``"dataset"``)."""
        existing = self._clients.get(kind)
        if existing is not None:
            return existing
        from ._client import Client

        args = self.args
        options: dict[str, Any] = {}
        if args.timeout is not None:
            options["timeout"] = args.timeout
        if args.max_retries is not None:
            options["max_retries"] = args.max_retries
        if args.emulator:
            emulator = self.emulator()
            key = args.api_key or EMULATOR_KEYS[kind]
            client = Client(api_key=key, base_url=EMULATOR_BASE_URL, transport=emulator, **options)
        else:
            key = args.api_key or os.environ.get("DIFY_API_KEY")
            if not key:
                kind_hint = "a dataset- key" if kind == "dataset" else "an app- key"
                raise CLIError(
                    f"no API key: pass --api-key or set DIFY_API_KEY ({kind_hint}), "
                    "or add --emulator to try the built-in emulator"
                )
            client = Client(api_key=key, base_url=args.base_url, **options)
        self._clients[kind] = client
        return client

    def client_for(self, ep: Endpoint) -> Client:
        return self.client(ep.spec.key or "app")

    def emulator(self) -> Any:
        if self._emulator is None:
            from .emulator import Emulator

            self._emulator = Emulator()
        return self._emulator

    def base_url(self) -> str:
        if self.args.emulator:
            return EMULATOR_BASE_URL
        for client in self._clients.values():
            return client.base_url
        from ._options import DEFAULT_BASE_URL

        return str(self.args.base_url or os.environ.get("DIFY_BASE_URL") or DEFAULT_BASE_URL)

    def endpoint(self, name: str) -> Endpoint:
        from ._services import INDEX

        endpoint = INDEX.get(name)
        if endpoint is None:
            import difflib

            close = difflib.get_close_matches(name, INDEX, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CLIError(f"unknown operation {name!r}{hint} (`{PROG} call --list` lists them)")
        return endpoint

    def out(self, text: str = "", end: str = "\n") -> None:
        written = text + end
        if not written:
            return
        sys.stdout.write(written)
        sys.stdout.flush()
        self.pending_newline = not written.endswith("\n")

    def end_line(self) -> None:
        if self.pending_newline:
            self.out()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _with_user(ep: Endpoint, arguments: dict[str, Any], user: str) -> dict[str, Any]:
    """Fill a missing ``user`` field, which most app operations require."""
    if "user" in ep.fields and "user" not in arguments:
        return {**arguments, "user": user}
    return arguments


# -- errors -------------------------------------------------------------------------------


def describe_error(exc: BaseException, ctx: Context | None) -> str | None:
    """One line a person understands, or ``None`` when the error is a bug (traceback)."""
    base_url = ctx.base_url() if ctx is not None else "the base URL"
    if isinstance(exc, CLIError):
        return str(exc)
    if isinstance(exc, AuthenticationError):
        return (
            f"the API key was rejected (HTTP 401{_code(exc)}: {exc.message}): it is wrong, "
            "missing or for another app; check --api-key or DIFY_API_KEY (knowledge commands "
            "need a dataset- key, app commands the app's app- key)"
        )
    if isinstance(exc, NotFoundError):
        return f"not found: {exc.message} (HTTP 404{_code(exc)}, {_where(exc)})"
    if isinstance(exc, PermissionDeniedError):
        return f"permission denied: {exc.message} (HTTP 403{_code(exc)}, {_where(exc)})"
    if isinstance(exc, RateLimitError):
        return f"rate limited (HTTP 429{_code(exc)}): {exc.message}; try again later"
    if isinstance(exc, APIStatusError):
        return f"{exc.operation}: HTTP {exc.status_code}{_code(exc)}: {exc.message}"
    if isinstance(exc, StreamInterruptedError):
        arrived = len(exc.partial.answer) if exc.partial is not None else 0
        return (
            f"the answer stream from {base_url} was cut before it finished "
            f"({arrived} characters arrived)"
        )
    if isinstance(exc, APITimeoutError):
        return f"timed out waiting for {base_url}; a larger --timeout may help ({exc})"
    if isinstance(exc, APIConnectionError):
        detail = str(exc).split(": ", 1)[-1]
        return f"cannot reach {base_url} ({detail}): check --base-url or DIFY_BASE_URL"
    if isinstance(exc, DifyError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return None


def _code(exc: APIStatusError) -> str:
    return f" {exc.code}" if exc.code else ""


def _where(exc: APIStatusError) -> str:
    """``METHOD /path`` of the request that failed, else the operation's name."""
    response = exc.response
    try:
        request = response.request if response is not None else None
    except RuntimeError:  # a response built without a request
        request = None
    if request is None:
        return exc.operation
    return f"{request.method} {request.url.path}"


# -- chat and complete --------------------------------------------------------------------


def _read_query(given: str | None, what: str) -> str | None:
    if given is not None:
        return given
    if sys.stdin is None or sys.stdin.isatty():
        return None
    text = sys.stdin.read().strip()
    if not text:
        raise CLIError(f"no {what}: pass it as an argument or on standard input")
    return text


def _stream_answer(ctx: Context, stream: Any) -> Any:
    """Print answer chunks as they arrive; return the assembled blocking answer."""
    from .types import AgentMessageEvent, MessageEvent, MessageReplaceEvent

    with stream:
        for event in stream:
            if ctx.json:
                continue
            if isinstance(event, (MessageEvent, AgentMessageEvent)) and event.answer:
                ctx.out(event.answer, end="")
            elif isinstance(event, MessageReplaceEvent):
                ctx.end_line()
                ctx.out(event.answer, end="")
        return stream.collect()


def cmd_chat(ctx: Context) -> int:
    args = ctx.args
    client = ctx.client("app")
    inputs = parse_inputs(args.input, args.inputs)
    conversation: str | None = args.conversation
    query = _read_query(args.query, "query")
    interactive = query is None
    while True:
        if interactive:
            sys.stderr.write("you> ")
            sys.stderr.flush()
            line = sys.stdin.readline()
            if not line:
                sys.stderr.write("\n")
                return 0
            query = line.strip()
            if not query:
                continue
        assert query is not None
        extra: dict[str, Any] = {"conversation_id": conversation} if conversation else {}
        stream = client.chat.send(query=query, user=ctx.user, inputs=inputs, stream=True, **extra)
        try:
            answer = _stream_answer(ctx, stream)
        finally:
            ctx.end_line()
        conversation = answer.conversation_id or conversation
        if ctx.json:
            ctx.out(dump_json(answer, compact=True))
        if conversation:
            _err(f"conversation: {conversation}")
        if not interactive:
            return 0


def cmd_complete(ctx: Context) -> int:
    args = ctx.args
    client = ctx.client("app")
    inputs = parse_inputs(args.input, args.inputs)
    text = _read_query(args.text, "text")
    if text is not None:
        inputs[args.var] = text
    if not inputs:
        raise CLIError("nothing to complete: pass TEXT, -i key=value or --inputs JSON")
    stream = client.completion.send(user=ctx.user, inputs=inputs, stream=True)
    try:
        answer = _stream_answer(ctx, stream)
    finally:
        ctx.end_line()
    if ctx.json:
        ctx.out(dump_json(answer, compact=True))
    return 0


# -- run-workflow -------------------------------------------------------------------------


def cmd_run_workflow(ctx: Context) -> int:
    from .types import (
        NodeFinishedEvent,
        NodeStartedEvent,
        TextChunkEvent,
        WorkflowFinishedEvent,
        WorkflowStartedEvent,
    )

    args = ctx.args
    client = ctx.client("app")
    inputs = parse_inputs(args.inputs_pairs, args.inputs)
    progress = not args.quiet
    if args.workflow_id:
        stream = client.workflow.run_by_id(
            workflow_id=args.workflow_id, user=ctx.user, inputs=inputs, stream=True
        )
    else:
        stream = client.workflow.run(user=ctx.user, inputs=inputs, stream=True)
    printed_text = False
    finished: Any = None
    with stream:
        try:
            for event in stream.follow():
                if isinstance(event, WorkflowStartedEvent) and progress:
                    _err(f"workflow run {event.workflow_run_id or '?'} started")
                elif isinstance(event, NodeStartedEvent) and progress and event.data:
                    _err(f"  node started:  {_node_name(event.data)}")
                elif isinstance(event, NodeFinishedEvent) and progress and event.data:
                    _err(f"  node finished: {_node_outcome(event.data)}")
                elif isinstance(event, TextChunkEvent) and event.data and not ctx.json:
                    ctx.out(event.data.text, end="")
                    printed_text = printed_text or bool(event.data.text)
                elif isinstance(event, WorkflowFinishedEvent):
                    finished = event.data
        finally:
            ctx.end_line()
        result = stream.collect()
    data = finished if finished is not None else getattr(result, "data", None)
    status = getattr(data, "status", None)
    outputs = getattr(data, "outputs", None)
    if ctx.json:
        ctx.out(dump_json(result, compact=True))
    elif not printed_text and outputs:
        texts = list(outputs.values())
        if len(texts) == 1 and isinstance(texts[0], str):
            ctx.out(texts[0])
        else:
            ctx.out(json.dumps(outputs, ensure_ascii=False, indent=2))
    if progress and data is not None:
        took = f" in {data.elapsed_time:.2f}s" if data.elapsed_time is not None else ""
        tokens = f", {data.total_tokens} tokens" if data.total_tokens is not None else ""
        _err(f"workflow run {stream.workflow_run_id or '?'} {status or 'finished'}{took}{tokens}")
    if status not in (None, "succeeded", "partial-succeeded"):
        error = getattr(data, "error", None)
        raise CLIError(f"the workflow run {status}" + (f": {error}" if error else ""))
    return 0


def _node_outcome(node: Any) -> str:
    took = f" in {node.elapsed_time:.2f}s" if node.elapsed_time is not None else ""
    error = f": {node.error}" if node.error else ""
    return f"{_node_name(node)} {node.status or 'done'}{took}{error}"


def _node_name(data: Any) -> str:
    title = data.title or data.node_id or "?"
    return f"{title} ({data.node_type})" if data.node_type else title


# -- kb -----------------------------------------------------------------------------------


def cmd_kb_create(ctx: Context) -> int:
    args = ctx.args
    options: dict[str, Any] = {}
    if args.description is not None:
        options["description"] = args.description
    if args.indexing_technique:
        options["indexing_technique"] = args.indexing_technique
    if args.permission:
        options["permission"] = args.permission
    dataset = ctx.client("dataset").knowledge.create_dataset(name=args.name, **options)
    if ctx.json:
        ctx.out(dump_json(dataset, compact=True))
    else:
        ctx.out(f"{dataset.id}\t{dataset.name}")
    return 0


def _folder_files(folder: Path, pattern: str, recursive: bool) -> list[Path]:
    if not folder.is_dir():
        raise CLIError(f"not a folder: {folder}")
    found = folder.rglob(pattern) if recursive else folder.glob(pattern)
    files = sorted(
        p
        for p in found
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise CLIError(f"no files matching {pattern!r} in {folder}")
    return files


def cmd_kb_upload(ctx: Context) -> int:
    from .types import DocumentSettings, ProcessRule

    args = ctx.args
    client = ctx.client("dataset")
    files = _folder_files(Path(args.folder), args.glob, args.recursive)
    settings = DocumentSettings(
        indexing_technique=args.indexing_technique, process_rule=ProcessRule(mode="automatic")
    )
    uploaded: list[tuple[Path, Any]] = []
    for path in files:
        created = client.knowledge.create_document_by_file(
            dataset_id=args.dataset_id, file=path, data=settings
        )
        document = created.document
        uploaded.append((path, created))
        if not ctx.json:
            _err(f"uploaded {path.name} -> document {document.id if document else '?'}")
    rows: list[dict[str, Any]] = []
    failed = 0
    for path, created in uploaded:
        document_id = created.document.id if created.document else None
        status = "uploaded"
        error = None
        if args.wait and created.batch:
            statuses = client.knowledge.wait_for_indexing(
                dataset_id=args.dataset_id,
                batch=created.batch,
                timeout=args.wait_timeout,
                poll_interval=args.poll_interval,
                raise_on_failure=False,
            )
            mine = [s for s in statuses if s.id == document_id] or statuses
            status = mine[0].indexing_status or "unknown"
            error = mine[0].error
            if status != "completed":
                failed += 1
        rows.append(
            {
                "file": str(path),
                "document_id": document_id,
                "batch": created.batch,
                "indexing_status": status,
                "error": error,
            }
        )
        if not ctx.json:
            detail = f" ({error})" if error else ""
            ctx.out(f"{document_id}\t{path.name}\t{status}{detail}")
    if ctx.json:
        ctx.out(json.dumps(rows, ensure_ascii=False, separators=(",", ":")))
    if failed:
        raise CLIError(f"{failed} of {len(rows)} documents did not finish indexing")
    return 0


def cmd_kb_list(ctx: Context) -> int:
    args = ctx.args
    knowledge = ctx.client("dataset").knowledge
    items: list[Any]
    if args.dataset_id:
        items = list(knowledge.iter_documents(dataset_id=args.dataset_id, limit=100))
    else:
        items = list(knowledge.iter_datasets(limit=100))
    if ctx.json:
        ctx.out(dump_json(items, compact=True))
        return 0
    for item in items:
        if args.dataset_id:
            words = f"{item.word_count} words" if item.word_count is not None else ""
            ctx.out(f"{item.id}\t{item.name}\t{item.indexing_status or ''}\t{words}".rstrip())
        else:
            count = item.document_count if item.document_count is not None else 0
            ctx.out(f"{item.id}\t{item.name}\t{count} documents")
    return 0


def cmd_kb_retrieve(ctx: Context) -> int:
    from .types import RetrievalModel

    args = ctx.args
    options: dict[str, Any] = {}
    if args.top_k is not None or args.search_method is not None:
        options["retrieval_model"] = RetrievalModel(
            search_method=args.search_method or "semantic_search",
            reranking_enable=False,
            top_k=args.top_k if args.top_k is not None else 4,
            score_threshold_enabled=False,
        )
    found = ctx.client("dataset").knowledge.retrieve(
        dataset_id=args.dataset_id, query=args.query, **options
    )
    if ctx.json:
        ctx.out(dump_json(found, compact=True))
        return 0
    if not found.records:
        _err("no matching chunks")
    for record in found.records:
        segment = record.segment
        if segment is None:
            continue
        document = segment.document
        name = getattr(document, "name", None) or segment.document_id or "?"
        score = f"{record.score:.3f}" if record.score is not None else "-"
        content = " ".join((segment.content or "").split())
        ctx.out(f"{score}\t{name}\t{content}")
    return 0


# -- call ---------------------------------------------------------------------------------


def cmd_call(ctx: Context) -> int:
    args = ctx.args
    if args.list:
        return _list_operations(ctx)
    if not args.name:
        args.command_parser.error("an operation NAME is needed (--list shows them)")
    ep = ctx.endpoint(args.name)
    arguments = _with_user(ep, parse_call_arguments(ep, args.arguments), ctx.user)
    client = ctx.client_for(ep)
    if args.all:
        if not ep.paginate:
            raise CLIError(f"{ep.qualname} is not a paged list; --all needs a list_ operation")
        from ._services import iter_name_for

        items = getattr(getattr(client, ep.service), iter_name_for(ep))(**arguments)
        for item in items:
            ctx.out(dump_json(item, compact=True))
        return 0
    if args.stream:
        if ep.stream is None:
            raise CLIError(f"{ep.qualname} does not stream events")
        with client.call(ep.qualname, **arguments, stream=True) as stream:
            for event in stream:
                ctx.out(dump_json(event, compact=True))
        return 0
    if args.collect:
        arguments["collect"] = True
    result = client.call(ep.qualname, **arguments)
    if isinstance(result, bytes):
        return _write_bytes(ctx, result, args.output)
    if args.output:
        Path(args.output).write_text(dump_json(result, compact=ctx.json) + "\n", "utf-8")
        return 0
    if result is None:
        if ctx.json:
            ctx.out("null")
        else:
            _err("done (no content)")
        return 0
    ctx.out(dump_json(result, compact=ctx.json))
    return 0


def _write_bytes(ctx: Context, data: bytes, output: str | None) -> int:
    if output:
        Path(output).write_bytes(data)
        _err(f"wrote {len(data)} bytes to {output}")
        return 0
    if sys.stdout.isatty():
        raise CLIError(f"the answer is {len(data)} bytes of binary data: pass --output FILE")
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


def _list_operations(ctx: Context) -> int:
    from ._services import ENDPOINTS

    rows = [(ep.qualname, ep.method, ep.path, ep.doc) for eps in ENDPOINTS.values() for ep in eps]
    if ctx.json:
        keys = ("name", "method", "path", "doc")
        ctx.out(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], ensure_ascii=False))
        return 0
    width = max(len(row[0]) for row in rows)
    for name, method, path, doc in rows:
        ctx.out(f"{name:<{width}}  {method:<6} {path}  {doc}".rstrip())
    return 0


# -- batch --------------------------------------------------------------------------------


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


class _InputFile:
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
                raise CLIError(
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

    def arguments(self, wanted: set[int], ep: Endpoint, user: str) -> Iterator[dict[str, Any]]:
        """The call arguments of the wanted items, in input order."""
        for index, (line_number, line) in enumerate(self._lines()):
            if index not in wanted:
                continue
            yield self._parse(line, line_number, ep, user)

    @staticmethod
    def _parse(line: str, line_number: int, ep: Endpoint, user: str) -> dict[str, Any]:
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
        for name in ep.file_fields:
            value = arguments.get(name)
            if isinstance(value, str) and value.startswith("@"):
                arguments[name] = value[1:]
        return _with_user(ep, arguments, user)


class _Record(typing.NamedTuple):
    offset: int
    length: int
    ok: bool


class _OutputFile:
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
                raise CLIError(f"another batch is writing to {self.path}") from None
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
        with self.path.open("rb") as source, temporary.open("wb") as target:
            for key in [*keys, *extras]:
                record = self.latest.get(key)
                if record is None:
                    continue
                source.seek(record.offset)
                target.write(source.read(record.length))
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, self.path)
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


class _Progress:
    """Plain periodic lines: ``done/total``, failures, rate and ETA (and a final line)."""

    def __init__(self, label: str, total: int, interval: float, enabled: bool) -> None:
        self.label = label
        self.total = total
        self.interval = interval
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self._last = self.started

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        if self.enabled and (now - self._last >= self.interval):
            self._last = now
            _err(self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        failed = f" ({self.failed} failed)" if self.failed else ""
        eta_text = _format_duration(eta) if eta is not None else "?"
        return f"{self.label}: {self.done}/{self.total} done{failed}, {rate:.1f}/s, ETA {eta_text}"

    def close(self) -> None:
        pass


class _TqdmProgress(_Progress):
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

    def close(self) -> None:
        self.bar.close()


class _RichProgress(_Progress):
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

    def close(self) -> None:
        self.bar.stop()


def _progress(label: str, total: int, interval: float, enabled: bool) -> _Progress:
    """A live bar (tqdm, else rich) on a terminal; plain periodic lines otherwise."""
    if enabled and total and sys.stderr.isatty():
        for factory in (_TqdmProgress, _RichProgress):
            try:
                return factory(label, total, interval, enabled)
            except ImportError:
                continue
    return _Progress(label, total, interval, enabled)


def cmd_batch(ctx: Context) -> int:
    args = ctx.args
    ep = ctx.endpoint(args.name)
    source = Path(args.input)
    target = Path(args.output)
    if source.resolve() == target.resolve():
        raise CLIError("--output must not be the --input file")
    inputs = _InputFile(source)
    client = ctx.client_for(ep)
    output = _OutputFile(target)
    output.open()  # holds the lock until the end, the final rewrite included
    try:
        return _run_batch(ctx, ep, client, inputs, output)
    finally:
        output.close()


def _run_batch(
    ctx: Context, ep: Endpoint, client: Client, inputs: _InputFile, output: _OutputFile
) -> int:
    args = ctx.args
    target = output.path
    keys = inputs.keys
    to_run = [
        index
        for index, key in enumerate(keys)
        if key not in output.latest or (args.retry_failed and not output.latest[key].ok)
    ]
    skipped = len(keys) - len(to_run)
    options: dict[str, Any] = {}
    if ep.stream is not None and ep.response is not None:
        options["collect"] = True  # each result is the blocking answer, streamed underneath
    label = f"batch {ep.qualname}"
    if skipped and not ctx.json:
        _err(f"{label}: {skipped} of {len(keys)} items already in {target}; running {len(to_run)}")
    progress = _progress(label, len(to_run), args.progress_interval, args.progress)
    failed = 0
    encoder = msgspec.json.Encoder()
    results = client.iter_batch(
        ep.qualname,
        inputs.arguments(set(to_run), ep, ctx.user),
        concurrency=args.concurrency,
        **options,
    )
    try:
        for result in results:
            index = to_run[result.index]
            record = result_record(inputs.ids[index], index, result)
            output.write(keys[index], encoder.encode(record) + b"\n", result.ok)
            failed += 0 if result.ok else 1
            progress.advance(result.ok)
    except KeyboardInterrupt:
        progress.close()
        written = sum(1 for key in keys if key in output.latest)
        _err(
            f"\n{label}: interrupted; {written} of {len(keys)} results are in {target}: "
            "run the same command again to resume"
        )
        raise
    finally:
        progress.close()
    extras = output.finish(keys)
    elapsed = time.monotonic() - progress.started
    failed_total = sum(1 for key in keys if not output.latest[key].ok)
    if ctx.json:
        summary = {
            "operation": ep.qualname,
            "total": len(keys),
            "skipped": skipped,
            "ran": len(to_run),
            "ok": len(to_run) - failed,
            "failed": failed,
            "failed_total": failed_total,
            "output": str(target),
            "seconds": round(elapsed, 3),
        }
        ctx.out(json.dumps(summary))
    elif args.progress:
        rate = len(to_run) / elapsed if elapsed > 0 else 0.0
        _err(
            f"{label}: {len(to_run)} run ({failed} failed), {skipped} skipped, "
            f"{rate:.1f}/s, {_format_duration(elapsed)} -> {target}"
        )
    if extras:
        _err(f"{label}: kept {extras} line(s) of {target} that match no input line at the end")
    if failed_total:
        raise CLIError(
            f"{failed_total} of {len(keys)} items failed (their errors are in {target}); "
            "add --retry-failed to run them again"
        )
    return 0


# -- emulator and demo --------------------------------------------------------------------


def cmd_emulator(ctx: Context) -> int:
    from .emulator import AppDefinition, Emulator, serve

    args = ctx.args
    emulator = Emulator(app=AppDefinition(mode=args.mode), seed=args.seed, latency=args.latency)
    serve(args.host, args.port, emulator=emulator, log=sys.stderr if args.verbose else None)
    return 0


def cmd_demo(ctx: Context) -> int:
    from ._demo import main as demo

    return demo()


# -- the parser ---------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the command name."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output (also accepted before the command)")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default(None),
        help="the Dify API, e.g. https://api.dify.ai/v1 (env DIFY_BASE_URL)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        default=default(None),
        help="an app- key, or a dataset- key for kb (env DIFY_API_KEY)",
    )
    group.add_argument(
        "--emulator",
        action="store_true",
        default=default(False),
        help="run against the built-in in-process emulator (no account, no network)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="machine-readable JSON on stdout",
    )
    group.add_argument(
        "--user",
        metavar="USER",
        default=default(None),
        help=f"the end-user id sent with app calls (env DIFY_USER, default {DEFAULT_USER!r})",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=default(None),
        help="per-request timeout (default: connect 5 s, read 120 s)",
    )
    group.add_argument(
        "--max-retries",
        metavar="N",
        type=_non_negative_int,
        default=default(None),
        help="retries after a failed attempt (default 2; see the README for what is retried)",
    )


def _inputs_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i",
        "--input",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an app input (a string; KEY:=JSON for numbers, objects...); repeatable",
    )
    parser.add_argument(
        "--inputs", type=_json_object, metavar="JSON", help="app inputs as one JSON object"
    )


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to the Dify Service API from the command line.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options. Exit codes: 0 ok, "
        "1 an API or usage error (one line on stderr), 2 a malformed command line, "
        "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, handler: Callable[[Context], int]) -> Any:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, top=False)
        sub.set_defaults(handler=handler, command_parser=sub)
        return sub

    chat = command(
        "chat",
        "Chat with a chat, agent or chatflow app; the answer streams as it arrives. Without "
        "QUERY, reads it from stdin (or asks turn by turn on a terminal).",
        cmd_chat,
    )
    chat.add_argument("query", nargs="?", metavar="QUERY", help="the message to send")
    chat.add_argument("-c", "--conversation", metavar="ID", help="continue this conversation")
    _inputs_options(chat)

    complete = command(
        "complete",
        "Run a completion (text generator) app; the text streams as it arrives.",
        cmd_complete,
    )
    complete.add_argument("text", nargs="?", metavar="TEXT", help="the text (or stdin)")
    complete.add_argument(
        "--var",
        default="query",
        metavar="NAME",
        help="the app input TEXT goes to (default: query)",
    )
    _inputs_options(complete)

    workflow = command(
        "run-workflow",
        "Run a workflow app: node progress on stderr, the text or outputs on stdout.",
        cmd_run_workflow,
    )
    workflow.add_argument(
        "inputs_pairs",
        nargs="*",
        metavar="KEY=VALUE",
        help="workflow inputs (strings; KEY:=JSON for numbers, objects...)",
    )
    workflow.add_argument(
        "--inputs", type=_json_object, metavar="JSON", help="workflow inputs as one JSON object"
    )
    workflow.add_argument("--workflow-id", metavar="ID", help="run this published version")
    workflow.add_argument("-q", "--quiet", action="store_true", help="no node progress on stderr")

    kb = command(
        "kb", "Knowledge bases (datasets) and their documents; needs a dataset- key.", cmd_help
    )
    kb_commands = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    def kb_command(name: str, help_text: str, handler: Callable[[Context], int]) -> Any:
        sub = kb_commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub

    create = kb_command("create", "Create an empty knowledge base; prints its id.", cmd_kb_create)
    create.add_argument("name", metavar="NAME")
    create.add_argument("--description", metavar="TEXT")
    create.add_argument("--indexing-technique", choices=["high_quality", "economy"], default=None)
    create.add_argument("--permission", choices=["only_me", "all_team_members", "partial_members"])

    upload = kb_command(
        "upload",
        "Upload every file of a folder as documents, then wait for indexing.",
        cmd_kb_upload,
    )
    upload.add_argument("dataset_id", metavar="DATASET_ID")
    upload.add_argument("folder", metavar="FOLDER")
    upload.add_argument("--glob", default="*", metavar="PATTERN", help="file names (default *)")
    upload.add_argument("-r", "--recursive", action="store_true", help="include sub-folders")
    upload.add_argument(
        "--indexing-technique",
        choices=["high_quality", "economy"],
        default="high_quality",
        help="default: high_quality",
    )
    upload.add_argument(
        "--no-wait", dest="wait", action="store_false", help="do not wait for indexing"
    )
    upload.add_argument(
        "--wait-timeout",
        type=_positive_float,
        default=600.0,
        metavar="SECONDS",
        help="give up waiting for indexing after this long (default 600)",
    )
    upload.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="between indexing-status checks (default 1)",
    )

    listing = kb_command(
        "list", "List knowledge bases, or the documents of DATASET_ID.", cmd_kb_list
    )
    listing.add_argument("dataset_id", nargs="?", metavar="DATASET_ID")

    retrieve = kb_command(
        "retrieve", "Search a knowledge base for the chunks closest to QUERY.", cmd_kb_retrieve
    )
    retrieve.add_argument("dataset_id", metavar="DATASET_ID")
    retrieve.add_argument("query", metavar="QUERY")
    retrieve.add_argument("--top-k", type=_positive_int, metavar="N")
    retrieve.add_argument(
        "--search-method",
        choices=["keyword_search", "semantic_search", "full_text_search", "hybrid_search"],
    )

    call = command(
        "call",
        "Call any operation by name, e.g. 'call knowledge.get_dataset dataset_id=...'. "
        "Values are JSON when they parse as JSON, else strings (text fields stay strings); "
        "KEY:=JSON forces JSON; a file field takes KEY=@PATH.",
        cmd_call,
    )
    call.add_argument("name", nargs="?", metavar="NAME", help="operation, e.g. chat.send")
    call.add_argument("arguments", nargs="*", metavar="KEY=VALUE")
    call.add_argument("--list", action="store_true", help="list every operation and exit")
    call.add_argument(
        "--stream", action="store_true", help="print each streamed event as a JSON line"
    )
    call.add_argument(
        "--collect",
        action="store_true",
        help="stream underneath, print the blocking-shaped answer (agent apps need it)",
    )
    call.add_argument(
        "--all", action="store_true", help="a list_ operation: every item of every page"
    )
    call.add_argument("-o", "--output", metavar="FILE", help="write the answer to FILE")

    batch = command(
        "batch",
        "Run operation NAME once per line of a JSONL file, in parallel; results go to a JSONL "
        "file in input order. Re-running with the same --output resumes.",
        cmd_batch,
    )
    batch.add_argument("name", metavar="NAME", help="operation, e.g. chat.send")
    batch.add_argument(
        "-i",
        "--input",
        required=True,
        metavar="IN.jsonl",
        help='one JSON object per line: {"id": ..., "args": {...}} or the arguments themselves',
    )
    batch.add_argument(
        "-o", "--output", required=True, metavar="OUT.jsonl", help="results, one line per input"
    )
    batch.add_argument(
        "-c",
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="calls in flight at once (default 8)",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the items whose earlier result is an error",
    )
    batch.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a live bar on a terminal (tqdm or rich if installed), periodic lines otherwise",
    )
    batch.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="between plain progress lines (default 5)",
    )

    serve = command(
        "emulator",
        "Serve the Dify emulator over HTTP for curl, other SDKs and languages (Ctrl-C stops).",
        cmd_emulator,
    )
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, default=5001, help="default 5001 (0: any free port)")
    serve.add_argument(
        "--mode",
        choices=["chat", "agent-chat", "advanced-chat", "completion", "workflow"],
        help="answer as this kind of app only (default: every app route works)",
    )
    serve.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before every answer (to try timeouts and progress)",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the generated ids")
    serve.add_argument("--verbose", action="store_true", help="log each request to stderr")

    command(
        "demo", "A streaming chat against a built-in fake Dify (no account, no network).", cmd_demo
    )
    return parser


def cmd_help(ctx: Context) -> int:  # pragma: no cover - argparse requires the action
    ctx.parser.print_help()
    return 2


# -- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    ctx = Context(args, parser)
    handler: Callable[[Context], int] = args.handler
    try:
        return handler(ctx)
    except KeyboardInterrupt:
        ctx.end_line()
        _err(f"{PROG}: interrupted")
        if threading.active_count() > 1:
            # Worker threads (a batch's calls in flight) would hold the exit until their
            # requests end; everything written so far is flushed, so leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        message = describe_error(exc, ctx)
        if message is None:
            raise
        with contextlib.suppress(Exception):
            ctx.end_line()
        _err(f"{PROG}: error: {message}")
        return 1
    finally:
        with contextlib.suppress(Exception):
            ctx.close()
