"""Generate the reference pages under ``docs/`` from the endpoint tables.

A development tool, not shipped in the wheel: ``python -m tools.docgen`` (from the repository
root) rewrites them; ``--check`` exits 1 when they are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from dify_oapi._services import SERVICE_NAMES, TABLES, iter_name_for
from dify_oapi._table import Endpoint, Waiter

from .stubgen import render, type_names

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"


def _where(ep: Endpoint, field: str) -> str:
    if field in ep.path_fields:
        return "path"
    if field in ep.file_fields:
        return "file"
    if field in ep.query_fields:
        return "query"
    return "form" if ep.multipart else "body"


def _operation(ep: Endpoint, names: dict[int, str]) -> str:
    out = [f"### `{ep.name}`", "", ep.doc or "", "", f"`{ep.method} {ep.path}`", ""]
    if ep.aliases:
        out.append("Also: " + ", ".join(f"`{ep.service}.{a}`" for a in ep.aliases) + "  ")
    if ep.request is not None:
        out += ["", "| parameter | type | required | in |", "|---|---|---|---|"]
        for f in msgspec.structs.fields(ep.request):
            if ep.mode_field is not None and f.name == ep.mode_field.name:
                continue  # follows stream=
            required = f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT
            kind = render(f.type, names).replace(" | UnsetType", "").replace("builtins.", "")
            kind = kind.replace("|", "\\|")
            out.append(
                f"| `{f.name}` | `{kind}` | {'yes' if required else ''} | {_where(ep, f.name)} |"
            )
        out.append("")
    if ep.stream_only:
        returns = f"`Stream[{render(ep.stream, names)}]` (always streams)"
    elif ep.response is None:
        returns = "`None`"
    else:
        returns = f"`{render(ep.response, names).replace('builtins.', '')}`"
        if ep.stream is not None:
            returns += f"; with `stream=True`: `Stream[{render(ep.stream, names)}]`"
            returns += "; with `collect=True`: the blocking shape, read from a stream"
        elif ep.response is bytes:
            returns += "; with `stream=True`: `BinaryStream`"
    out.append(f"Returns: {returns}.")
    if ep.paginate is not None:
        item = render(ep.item_type, names)
        out += ["", f"Every item across pages: `{iter_name_for(ep)}(...)` yields `{item}`."]
    if ep.stream is not None:
        members = getattr(ep.stream, "__args__", None) or (ep.stream,)
        tags = ", ".join(f"`{m.__struct_config__.tag}`" for m in members)
        out += ["", f"Streamed events: {tags}."]
    return "\n".join(out) + "\n"


def _waiter(waiter: Waiter) -> str:
    settle = sorted(waiter.success | waiter.settled)
    out = [
        f"### `{waiter.method_name}`",
        "",
        waiter.doc,
        "",
        f"Polls `{waiter.operation}` (same arguments) every `poll_interval` seconds (default "
        f"{waiter.delay:g}) until `{waiter.status}`"
        + (f" of every item of `{waiter.items}`" if waiter.items else "")
        + f" is one of {', '.join(f'`{v}`' for v in settle)}; "
        + (
            f"{', '.join(f'`{v}`' for v in sorted(waiter.failure))} raises `WaiterFailedError` "
            "unless `raise_on_failure=False`; "
            if waiter.failure
            else ""
        )
        + f"after `timeout` seconds (default {waiter.timeout:g}) it raises `WaiterTimeoutError`.",
    ]
    return "\n".join(out) + "\n"


#: The hand-written pages next to the reference, linked from its index.
GUIDES = (
    ("architecture.md", "Architecture: where each fact lives, how a call flows"),
    ("batch.md", "Batches"),
    ("distributed.md", "Batches across a Dask cluster"),
    ("cli.md", "The `dify-oapi` command line"),
    ("observability.md", "Observability: OpenTelemetry spans, trace context and metrics"),
    ("guarantees.md", "What the SDK guarantees under faults"),
    ("runtimes.md", "Running the SDK in workers, forks, threads and event loops"),
    ("emulator.md", "The emulator: what it answers as Dify does, and what still differs"),
    ("migration.md", "Moving from dify-oapi2 1.x to 2.x"),
)


def generate() -> dict[str, str]:
    """File name -> text of every reference page."""
    names = type_names()
    pages: dict[str, str] = {}
    index = [
        "# API reference",
        "",
        "Generated from the endpoint tables by `python -m tools.docgen`; do not edit.",
        "",
        "| service | operations | |",
        "|---|---|---|",
    ]
    for service in SERVICE_NAMES:
        table = TABLES[service]
        endpoints = table.endpoints
        intro = table.spec.doc
        if table.spec.key:
            intro += f" Takes {'a' if table.spec.key[0] not in 'aeiou' else 'an'} "
            intro += f"{table.spec.key} API key."
        index.append(f"| [`client.{service}`]({service}.md) | {len(endpoints)} | {intro} |")
        body = [
            f"# `client.{service}`",
            "",
            intro,
            "",
            "Generated from the endpoint tables; do not edit.",
            "",
        ]
        body += [f"- [`{ep.name}`](#{ep.name}) `{ep.method} {ep.path}`" for ep in endpoints]
        body += [f"- [`{w.method_name}`](#{w.method_name}) (waiter)" for w in table.waiters]
        body.append("")
        body += [_operation(ep, names) for ep in endpoints]
        body += [_waiter(w) for w in table.waiters]
        pages[f"{service}.md"] = "\n".join(body).rstrip() + "\n"
    index += ["", "## Guides", "", *(f"- [{title}]({name})" for name, title in GUIDES)]
    pages["index.md"] = "\n".join(index) + "\n"
    return pages


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    pages = generate()
    if "--check" in args:
        stale = [
            n
            for n, t in pages.items()
            if not (DOCS_DIR / n).is_file() or (DOCS_DIR / n).read_text("utf-8") != t
        ]
        if stale:
            print(f"stale docs: {', '.join(stale)}; run python -m tools.docgen", file=sys.stderr)
            return 1
        print("docs are current")
        return 0
    DOCS_DIR.mkdir(exist_ok=True)
    for name, text in pages.items():
        (DOCS_DIR / name).write_text(text, "utf-8")
    print(f"wrote {len(pages)} pages to {DOCS_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
