"""The command line's grammar: every command, option and argument type (``argparse``).

Each command names its handler as ``"module:function"`` inside this package; the entry point
imports only the module of the command being run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from typing import Any

from .._exceptions import ConfigurationError
from .context import DEFAULT_USER, PROG, cli_options
from .errors import EXIT_HELP

__all__ = ["build_parser"]


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


def _option_value(name: str) -> Callable[[str], Any]:
    """The argparse type of client option ``name``: the text, or the number it spells,
    whichever the option's own check accepts, so the command line refuses what the client
    would (and a key stays text even when it looks like a number)."""
    option = cli_options()[name]

    def parse(text: str) -> Any:
        candidates: list[Any] = [text]
        for number in (int, float):
            with contextlib.suppress(ValueError):
                candidates.append(number(text))
        error: Exception | None = None
        for value in candidates:
            try:
                if option.check is not None:
                    option.check(value)
            except ConfigurationError as exc:
                error = exc  # the last one tried: the number's, when the text spells one
                continue
            return value
        raise argparse.ArgumentTypeError(str(error))

    parse.__name__ = name  # argparse names the type when it reports a bad value
    return parse


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the command name."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output (also accepted before the command)")
    for name, option in cli_options().items():
        group.add_argument(
            "--" + name.replace("_", "-"),
            metavar=name.rsplit("_", 1)[-1].upper(),  # --api-key KEY, --base-url URL
            type=_option_value(name),
            default=default(None),
            help=option.doc.replace("%", "%%"),
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
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to the Dify Service API from the command line.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options. {EXIT_HELP}",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, handler: str | None) -> Any:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EXIT_HELP)
        _global_options(sub, top=False)
        sub.set_defaults(handler=handler, command_parser=sub)
        return sub

    chat = command(
        "chat",
        "Chat with a chat, agent or chatflow app; the answer streams as it arrives. Without "
        "QUERY, reads it from stdin (or asks turn by turn on a terminal).",
        "apps:cmd_chat",
    )
    chat.add_argument("query", nargs="?", metavar="QUERY", help="the message to send")
    chat.add_argument("-c", "--conversation", metavar="ID", help="continue this conversation")
    _inputs_options(chat)

    complete = command(
        "complete",
        "Run a completion (text generator) app; the text streams as it arrives.",
        "apps:cmd_complete",
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
        "apps:cmd_run_workflow",
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
        "kb", "Knowledge bases (datasets) and their documents; needs a dataset- key.", None
    )
    kb_commands = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    def kb_command(name: str, help_text: str, handler: str | None) -> Any:
        sub = kb_commands.add_parser(name, help=help_text, description=help_text, epilog=EXIT_HELP)
        _global_options(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub

    create = kb_command(
        "create", "Create an empty knowledge base; prints its id.", "kb:cmd_kb_create"
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("--description", metavar="TEXT")
    create.add_argument("--indexing-technique", choices=["high_quality", "economy"], default=None)
    create.add_argument("--permission", choices=["only_me", "all_team_members", "partial_members"])

    upload = kb_command(
        "upload",
        "Upload every file of a folder as documents, then wait for indexing.",
        "kb:cmd_kb_upload",
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
        "list", "List knowledge bases, or the documents of DATASET_ID.", "kb:cmd_kb_list"
    )
    listing.add_argument("dataset_id", nargs="?", metavar="DATASET_ID")

    retrieve = kb_command(
        "retrieve", "Search a knowledge base for the chunks closest to QUERY.", "kb:cmd_kb_retrieve"
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
        "call:cmd_call",
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
        "batch:cmd_batch",
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
        help="calls in flight at once (default 8; fewer while the app answers 429)",
    )
    batch.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run across the Dask cluster at ADDRESS (e.g. tcp://scheduler:8786), at most "
        "--concurrency calls in flight on the app cluster-wide; each worker calls with the "
        "DIFY_API_KEY of its own environment (see docs/distributed.md)",
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
        "local:cmd_emulator",
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
        "demo",
        "A streaming chat against a built-in fake Dify (no account, no network).",
        "local:cmd_demo",
    )
    return parser
