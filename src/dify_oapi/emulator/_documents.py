"""Documents: creation and indexing, updates, listing, status, downloads."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from typing import Any

from ._base import Ctx, Reply, handles, invalid, not_found, page, tokens
from ._datasets import (
    _AUTOMATIC,
    _drop_document,
    _drop_segment,
    _hash,
    dataset_of,
    display_status,
    document_of,
    document_view,
    segments,
    split,
    terms,
)
from ._state import Record, StoredFile, Upload


def _index(ctx: Ctx, doc: Record, text: str, first: str) -> None:
    """Split the text into chunks (replacing any) and hand the document to the worker.

    Dify answers a create while it splits (``splitting``) and an update still queued
    (``waiting``); the document keeps its batch, and its counts until indexed again.
    """
    kb, now, account = ctx.kb, ctx.now(), ctx.em.account_id
    for seg in segments(ctx, doc):
        _drop_segment(ctx, seg)
    parts = split(text, doc["_rule"])
    for position, (content, kids) in enumerate(parts, 1):
        seg = _new_segment(ctx, doc, content, position, "indexing")
        for n, kid in enumerate(kids, 1):
            _new_chunk(ctx, seg, kid, n, "automatic")
    doc.update(indexing_status=first, error=None, _since=ctx.em.ids.mark(), _completed=None)
    doc.update(_counts=(sum(len(c) for c, _ in parts), _tokens(ctx, doc, text)), _updated=now)
    doc.update(_started=None if first == "waiting" else now, created_by=account)
    doc["_batch"] = doc.get("_batch") or ctx.em.ids.digits(20)
    kb.batches[doc["_batch"]] = [doc["id"]]
    _progress(ctx, doc)


def _tokens(ctx: Ctx, doc: Record, text: str) -> int:
    """Economy indexing embeds nothing, so Dify counts no tokens."""
    economy = ctx.kb.datasets[doc["_dataset"]]["indexing_technique"] == "economy"
    return 0 if economy else tokens(text)


def settle(ctx: Ctx) -> None:
    """Move every document on as far as the time since it was queued takes it."""
    for doc in ctx.kb.documents.values():
        _progress(ctx, doc)


def _new_segment(ctx: Ctx, doc: Record, content: str, position: int, status: str) -> Record:
    now, account = ctx.now(), ctx.em.account_id
    common = Counter(t for t in terms(content) if len(t) > 2).most_common(5)
    nulls = ("disabled_at", "disabled_by", "error", "stopped_at", "summary")
    seg = (
        {"id": ctx.id(), "position": position, "document_id": doc["id"], "answer": None}
        | {"content": content, "sign_content": content, "word_count": len(content)}
        | {"tokens": _tokens(ctx, doc, content), "keywords": [t for t, _ in common]}
        | {"hit_count": 0}
        | {"index_node_id": ctx.id(), "index_node_hash": _hash(content), "enabled": True}
        | {"status": status, "created_by": account, "created_at": now, "updated_at": now}
        | {"updated_by": None, "indexing_at": now, "attachments": []}
        | {"completed_at": now if status == "completed" else None}
        | dict.fromkeys(nulls)
    )
    ctx.kb.segments[seg["id"]] = seg
    return seg


def _new_chunk(ctx: Ctx, seg: Record, content: str, position: int, kind: str) -> Record:
    now = ctx.now()
    chunk = {"id": ctx.id(), "segment_id": seg["id"], "content": content, "position": position}
    chunk |= {"word_count": len(content), "type": kind, "created_at": now, "updated_at": now}
    ctx.kb.child_chunks[chunk["id"]] = chunk
    return chunk


def _progress(ctx: Ctx, doc: Record) -> None:
    if doc["indexing_status"] in ("completed", "error"):
        return
    took, elapsed = ctx.em.indexing_seconds, ctx.em.ids.since(doc["_since"])
    if elapsed < took / 20:  # Dify leaves its first state after some 70 ms of 2 s
        return
    now = ctx.now()
    doc["_started"] = doc["_started"] or now
    if elapsed < took:
        doc["indexing_status"] = "indexing"
        return
    segs = segments(ctx, doc)
    if not segs:
        doc.update(indexing_status="error", error="The document has no text to index.")
        return
    doc.update(indexing_status="completed", _completed=now)
    doc["word_count"], doc["tokens"] = doc["_counts"]
    for seg in segs:
        seg.update(status="completed", completed_at=now)


def _settings(ctx: Ctx, settings: Record, doc: Record | None = None) -> Record:
    rule = settings.get("process_rule") or (doc["_rule"] if doc else {"mode": "automatic"})
    if rule["mode"] == "automatic":
        rule = {"mode": "automatic", "rules": _AUTOMATIC}
    form = settings.get("doc_form") or (
        "hierarchical_model" if rule["mode"] == "hierarchical" else None
    )
    return {"_rule": rule, "doc_form": form or (doc["doc_form"] if doc else "text_model")} | (
        {"_language": settings["doc_language"]} if "doc_language" in settings else {}
    )


def _create_document(ctx: Ctx, name: str, upload: Upload, settings: Record) -> Record:
    ds = dataset_of(ctx)
    f = ctx.em.store(upload, ctx.em.account_id)
    if settings.get("indexing_technique"):
        ds["indexing_technique"] = settings["indexing_technique"]
    position = 1 + sum(d["_dataset"] == ds["id"] for d in ctx.kb.documents.values())
    nulls = ("error", "disabled_at", "disabled_by", "summary_index_status")
    doc = (
        {"id": ctx.id(), "position": position, "data_source_type": "upload_file"}
        | {"data_source_info": {"upload_file_id": f.id}}
        | {"data_source_detail_dict": {"upload_file": _file_info(f)}}
        | {"dataset_process_rule_id": ctx.id(), "name": name, "created_from": "api"}
        | {"created_by": ctx.em.account_id, "created_at": ctx.now(), "tokens": None}
        | {"indexing_status": "waiting", "enabled": True, "archived": False, "word_count": None}
        | {"hit_count": 0, "doc_metadata": [], "need_summary": False}
        | {"_dataset": ds["id"], "_file": f.id, "_language": "English"}
        | dict.fromkeys(nulls)
        | _settings(ctx, settings)
    )
    ctx.kb.documents[doc["id"]] = doc
    if ds["doc_form"] is None:  # a knowledge base takes its form and source from its first document
        ds.update(doc_form=doc["doc_form"], data_source_type="upload_file")
    _index(ctx, doc, _text(f), "splitting")
    return doc


def _text(f: StoredFile) -> str:
    return f.content.decode("utf-8", "ignore") if not f.content.startswith(b"%PDF") else ""


def _doc_reply(ctx: Ctx, doc: Record) -> Record:
    return {"document": document_view(ctx, doc), "batch": doc["_batch"]}


@handles("knowledge.create_document_by_text")
def create_by_text(ctx: Ctx) -> Any:
    p = ctx.p
    upload = Upload(f"{p['name']}.txt", p["text"].encode(), "text/plain")
    return _doc_reply(ctx, _create_document(ctx, p["name"], upload, p))


@handles("knowledge.create_document_by_file")
def create_by_file(ctx: Ctx) -> Any:
    upload = ctx.files["file"]
    return _doc_reply(ctx, _create_document(ctx, upload.name, upload, ctx.p.get("data", {})))


@handles("knowledge.update_document_by_text")
def update_by_text(ctx: Ctx) -> Any:
    p, doc = ctx.p, document_of(ctx)
    if "text" in p and "name" not in p:
        raise invalid("name is required when text is given.")
    doc.update(_settings(ctx, p, doc))
    doc["name"] = p.get("name", doc["name"])
    if "text" in p:
        f = ctx.em.store(Upload(f"{doc['name']}.txt", p["text"].encode(), "text/plain"), None)
        doc["_file"], doc["data_source_info"] = f.id, {"upload_file_id": f.id}
    _index(ctx, doc, _text(ctx.em.files[doc["_file"]]), "waiting")
    return _doc_reply(ctx, doc)


@handles("knowledge.update_document_by_file", "knowledge.update_document")
def update_by_file(ctx: Ctx) -> Any:
    doc = document_of(ctx)
    doc.update(_settings(ctx, ctx.p.get("data", {}), doc))
    if "file" in ctx.files:
        f = ctx.em.store(ctx.files["file"], ctx.em.account_id)
        doc.update(name=f.name, _file=f.id, data_source_info={"upload_file_id": f.id})
    _index(ctx, doc, _text(ctx.em.files[doc["_file"]]), "waiting")
    return _doc_reply(ctx, doc)


@handles("knowledge.list_documents")
def list_documents(ctx: Ctx) -> Any:
    ds, p = dataset_of(ctx), ctx.p
    docs = [d for d in reversed(ctx.kb.documents.values()) if d["_dataset"] == ds["id"]]
    docs = [d for d in docs if p.get("keyword", "") in d["name"]]
    if "status" in p:
        docs = [d for d in docs if display_status(d) == p["status"]]
    return page([document_view(ctx, d) for d in docs], p)


@handles("knowledge.get_document")
def get_document(ctx: Ctx) -> Any:
    view = document_view(ctx, document_of(ctx), detail=True)
    mode = ctx.p.get("metadata", "all")
    if mode == "only":
        return {k: view[k] for k in ("id", "doc_type", "doc_metadata")}
    if mode == "without":
        return {k: v for k, v in view.items() if k not in ("doc_type", "doc_metadata")}
    return view


@handles("knowledge.delete_document")
def delete_document(ctx: Ctx) -> Any:
    _drop_document(ctx, document_of(ctx))
    return None


@handles("knowledge.get_indexing_status")
def indexing_status(ctx: Ctx) -> Any:
    dataset_of(ctx)
    ids = ctx.kb.batches.get(ctx.p["batch"])
    docs = [ctx.kb.documents[i] for i in ids or () if i in ctx.kb.documents]
    if not docs:
        raise not_found("Documents not found.")
    out = []
    for doc in docs:
        status, started = doc["indexing_status"], doc["_started"]
        split_at = None if status in ("waiting", "parsing", "splitting") else started
        done, total = status == "completed", len(segments(ctx, doc))
        out.append(
            {"id": doc["id"], "indexing_status": status, "error": doc["error"]}
            | dict.fromkeys(("processing_started_at", "parsing_completed_at"), started)
            | dict.fromkeys(("cleaning_completed_at", "splitting_completed_at"), split_at)
            | {"completed_at": doc["_completed"], "paused_at": None, "stopped_at": None}
            | {"completed_segments": total if done else 0, "total_segments": total}
        )
    return {"data": out}


def _file_info(f: StoredFile) -> Record:
    info = {"id": f.id, "name": f.name, "size": len(f.content), "extension": f.extension}
    return info | {"mime_type": f.mime_type, "created_by": f.created_by, "created_at": f.created_at}


@handles("knowledge.download_document")
def download_document(ctx: Ctx) -> Any:
    return {"url": ctx.file_url(ctx.em.files[document_of(ctx)["_file"]])}


@handles("knowledge.download_documents_zip")
def download_zip(ctx: Ctx) -> Any:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for doc_id in ctx.p["document_ids"]:
            f = ctx.em.files[document_of(ctx, doc_id)["_file"]]
            archive.writestr(f.name, f.content)
    headers = {"content-disposition": 'attachment; filename="documents.zip"'}
    return Reply(content=buffer.getvalue(), content_type="application/zip", headers=headers)


@handles("knowledge.update_document_status")
def update_document_status(ctx: Ctx) -> Any:
    action, now = ctx.p["action"], ctx.now()
    for doc in [document_of(ctx, i) for i in ctx.p["document_ids"]]:
        if action in ("enable", "disable"):
            on = action == "enable"
            doc.update(enabled=on, disabled_at=None if on else now)
            doc["disabled_by"] = None if on else ctx.em.account_id
        else:
            doc["archived"] = action == "archive"
    return {"result": "success"}
