"""The ``kb`` commands: knowledge bases and their documents (a ``dataset-`` key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .context import Context, dump_json, err
from .errors import CLIError, UsageError

__all__ = ["cmd_kb_create", "cmd_kb_list", "cmd_kb_retrieve", "cmd_kb_upload"]


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
        raise UsageError(f"not a folder: {folder}")
    found = folder.rglob(pattern) if recursive else folder.glob(pattern)
    files = sorted(
        p
        for p in found
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise UsageError(f"no files matching {pattern!r} in {folder}")
    return files


def cmd_kb_upload(ctx: Context) -> int:
    from ..types import DocumentSettings, ProcessRule

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
            err(f"uploaded {path.name} -> document {document.id if document else '?'}")
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
    from ..types import RetrievalModel

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
        err("no matching chunks")
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
