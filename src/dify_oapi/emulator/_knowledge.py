"""Behaviour per operation for dataset keys: knowledge bases, documents, chunks, retrieval.

Documents are split when they are created (by the process rule's separator, then into
windows of at most ``max_tokens`` words); each poll of their batch's indexing status moves
them on (``waiting`` → ``indexing`` → ``completed``). Only completed documents are
searched. Retrieval scores chunks with BM25 over the query's terms.
"""

from __future__ import annotations

import hashlib
import io
import math
import operator
import re
import zipfile
from collections import Counter
from typing import Any

from ._handlers import (
    ApiError,
    Ctx,
    Reply,
    handles,
    invalid,
    not_found,
    page,
    tokens,
    words,
    workflow_task,
)
from ._state import Record, StoredFile, Upload, public

_TERM = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]|[^\W_]+")
_RETRIEVAL = {
    "search_method": "semantic_search",
    "reranking_enable": False,
    "reranking_mode": None,
    "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
    "weights": None,
    "top_k": 2,
    "score_threshold_enabled": False,
    "score_threshold": 0.0,
}
_AUTOMATIC: Record = {
    "pre_processing_rules": [
        {"id": "remove_extra_spaces", "enabled": True},
        {"id": "remove_urls_emails", "enabled": False},
    ],
    "segmentation": {"separator": "\n", "max_tokens": 500, "chunk_overlap": 50},
}
_BUILT_IN = [("document_name", "string"), ("uploader", "string"), ("upload_date", "time")]
_BUILT_IN += [("last_update_date", "time"), ("source", "string")]


_NO_EXTRAS = {"tsne_position": None, "summary": None}


def _unit(score: float) -> float:
    """A BM25 score squashed into (0, 1), as Dify's scores are."""
    return round(score / (score + 1), 6)


def _hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def terms(text: str) -> list[str]:
    return _TERM.findall(text.casefold())


def bm25(query: list[str], docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each document (a list of terms) for the query terms."""
    n = len(docs)
    avg = sum(map(len, docs)) / n if n else 1.0
    df = Counter(t for d in docs for t in set(d))
    scores = []
    for doc in docs:
        tf, score = Counter(doc), 0.0
        for term in set(query) & tf.keys():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(doc) / avg))
        scores.append(score)
    return scores


def chunks(text: str, segmentation: Record, default_max: int) -> list[str]:
    separator = str(segmentation.get("separator") or "\n").replace("\\n", "\n")
    limit = max(1, int(segmentation.get("max_tokens") or default_max))
    out = []
    for piece in (p.strip() for p in text.split(separator)):
        ws = piece.split(" ")
        out += [" ".join(ws[i : i + limit]).strip() for i in range(0, len(ws), limit)]
    return [c for c in out if c]


def split(text: str, rule: Record) -> list[tuple[str, list[str]]]:
    """Parent chunks and (hierarchical mode) their child chunks."""
    rules: Record = (rule.get("rules") or {}) if rule["mode"] != "automatic" else _AUTOMATIC
    enabled = {r.get("id") for r in rules.get("pre_processing_rules", ()) if r.get("enabled")}
    if "remove_extra_spaces" in enabled:
        text = re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+", " ", text))
    if "remove_urls_emails" in enabled:
        text = re.sub(r"https?://\S+|[\w.+-]+@[\w-]+\.[\w.]+", "", text)
    if rule["mode"] != "hierarchical":
        return [(c, []) for c in chunks(text, rules.get("segmentation", {}), 500)]
    if rules.get("parent_mode") == "full-doc":
        parents = [text.strip()] if text.strip() else []
    else:
        parents = chunks(text, rules.get("segmentation", {}), 500)
    sub = rules.get("subchunk_segmentation", {})
    return [(p, chunks(p, sub, 200)) for p in parents]


# --- lookups and views -------------------------------------------------------------------


def dataset_of(ctx: Ctx) -> Record:
    ds = ctx.kb.datasets.get(ctx.p["dataset_id"])
    if ds is None:
        raise not_found("Dataset not found.")
    return ds


def document_of(ctx: Ctx, document_id: str | None = None) -> Record:
    ds = dataset_of(ctx)
    doc = ctx.kb.documents.get(document_id or ctx.p["document_id"])
    if doc is None or doc["_dataset"] != ds["id"]:
        raise not_found("Document not found.")
    return doc


def segment_of(ctx: Ctx) -> Record:
    doc = document_of(ctx)
    seg = ctx.kb.segments.get(ctx.p["segment_id"])
    if seg is None or seg["document_id"] != doc["id"]:
        raise not_found("Segment not found.")
    return seg


def chunk_of(ctx: Ctx) -> Record:
    seg = segment_of(ctx)
    chunk = ctx.kb.child_chunks.get(ctx.p["child_chunk_id"])
    if chunk is None or chunk["segment_id"] != seg["id"]:
        raise not_found("Child chunk not found.")
    return chunk


def segments(ctx: Ctx, doc: Record) -> list[Record]:
    return [s for s in ctx.kb.segments.values() if s["document_id"] == doc["id"]]


def children(ctx: Ctx, seg: Record) -> list[Record]:
    return [c for c in ctx.kb.child_chunks.values() if c["segment_id"] == seg["id"]]


def segment_view(ctx: Ctx, seg: Record) -> Record:
    return public(seg) | {"child_chunks": [public(c) for c in children(ctx, seg)]}


def display_status(doc: Record) -> str:
    status = doc["indexing_status"]
    if status == "completed":
        return "archived" if doc["archived"] else "available" if doc["enabled"] else "disabled"
    return {"waiting": "queuing", "error": "error"}.get(status, "indexing")


def document_view(ctx: Ctx, doc: Record, detail: bool = False) -> Record:
    view = public(doc) | {"display_status": display_status(doc)}
    if not detail:
        return view
    segs = segments(ctx, doc)
    lengths = [s["word_count"] for s in segs]
    average = sum(lengths) / len(lengths) if lengths else 0.0
    return (
        view
        | {"dataset_process_rule": doc["_rule"], "document_process_rule": doc["_rule"]}
        | {"doc_language": doc["_language"], "doc_type": None, "indexing_latency": 0.0}
        | {"completed_at": doc["_completed"], "updated_at": doc["_updated"]}
        | {"segment_count": len(segs), "average_segment_length": average}
    )


def tag_view(ctx: Ctx, tag: Record) -> Record:
    count = sum(tag["id"] in ids for ids in ctx.kb.bindings.values())
    return tag | {"binding_count": str(count)}


def dataset_view(ctx: Ctx, ds: Record) -> Record:
    kb = ctx.kb
    docs = [d for d in kb.documents.values() if d["_dataset"] == ds["id"]]
    tags = [tag_view(ctx, kb.tags[t]) for t in kb.bindings.get(ds["id"], ())]
    fields = [public(f) for f in kb.fields.values() if f["_dataset"] == ds["id"]]
    available = sum(display_status(d) == "available" for d in docs)
    return (
        public(ds)
        | {"document_count": len(docs), "word_count": sum(d["word_count"] for d in docs)}
        | {"total_documents": len(docs), "total_available_documents": available}
        | {"tags": tags, "doc_metadata": fields}
    )


# --- knowledge bases -------------------------------------------------------------------


def _check_name(ctx: Ctx, name: str, own: str | None = None) -> None:
    if any(d["name"] == name and d["id"] != own for d in ctx.kb.datasets.values()):
        raise ApiError(409, "dataset_name_duplicate", "The dataset name already exists.")


@handles("knowledge.create_dataset")
def create_dataset(ctx: Ctx) -> Any:
    p, now, account = ctx.p, ctx.now(), ctx.em.account_id
    _check_name(ctx, p["name"])
    nulls: tuple[str, ...] = ("external_knowledge_info", "external_retrieval_model", "pipeline_id")
    nulls += ("chunk_structure", "icon_info", "maintainer")
    ds = (
        {"id": ctx.id(), "name": p["name"], "description": p.get("description", "")}
        | {"provider": p.get("provider", "vendor"), "permission": p.get("permission", "only_me")}
        | {"data_source_type": "upload_file", "app_count": 0, "author_name": "emulator"}
        | {"indexing_technique": p.get("indexing_technique") or "high_quality"}
        | {"created_by": account, "created_at": now, "updated_by": account, "updated_at": now}
        | {"embedding_model": p.get("embedding_model", "text-embedding-3-small")}
        | {"embedding_model_provider": p.get("embedding_model_provider", _MODELS["llm"][0])}
        | {"embedding_available": True, "doc_form": "text_model", "runtime_mode": "general"}
        | {"retrieval_model_dict": _RETRIEVAL | p.get("retrieval_model", {})}
        | {"summary_index_setting": p.get("summary_index_setting"), "partial_member_list": []}
        | {"built_in_field_enabled": False, "is_published": True, "enable_api": True}
        | {"is_multimodal": False}
        | dict.fromkeys(nulls)
    )
    ctx.kb.datasets[ds["id"]] = ds
    return dataset_view(ctx, ds)


@handles("knowledge.list_datasets")
def list_datasets(ctx: Ctx) -> Any:
    p, kb = ctx.p, ctx.kb
    found = [d for d in reversed(kb.datasets.values()) if p.get("keyword", "") in d["name"]]
    if p.get("tag_ids"):
        wanted = set(p["tag_ids"])
        found = [d for d in found if wanted & set(kb.bindings.get(d["id"], ()))]
    return page([dataset_view(ctx, d) for d in found], p)


@handles("knowledge.get_dataset")
def get_dataset(ctx: Ctx) -> Any:
    return dataset_view(ctx, dataset_of(ctx))


@handles("knowledge.update_dataset")
def update_dataset(ctx: Ctx) -> Any:
    ds, p = dataset_of(ctx), dict(ctx.p)
    if "name" in p:
        _check_name(ctx, p["name"], ds["id"])
    if "retrieval_model" in p:
        ds["retrieval_model_dict"] = ds["retrieval_model_dict"] | p.pop("retrieval_model")
    if "partial_member_list" in p:
        ds["partial_member_list"] = [m.get("user_id") for m in p.pop("partial_member_list")]
    if "external_retrieval_model" in p:
        ds["external_retrieval_model"] = p.pop("external_retrieval_model")
    ds.update({k: v for k, v in p.items() if k in ds and k != "id"}, updated_at=ctx.now())
    return dataset_view(ctx, ds)


@handles("knowledge.delete_dataset")
def delete_dataset(ctx: Ctx) -> Any:
    kb, ds = ctx.kb, dataset_of(ctx)
    for doc in [d for d in kb.documents.values() if d["_dataset"] == ds["id"]]:
        _drop_document(ctx, doc)
    for fid in [f["id"] for f in kb.fields.values() if f["_dataset"] == ds["id"]]:
        del kb.fields[fid]
    kb.bindings.pop(ds["id"], None)
    del kb.datasets[ds["id"]]
    return None


_COMPARE = {
    "=": operator.eq,
    "≠": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "≥": operator.ge,
    "≤": operator.le,
    "before": operator.lt,
    "after": operator.gt,
}
_TEXT = {
    "contains": lambda a, b: b in a,
    "not contains": lambda a, b: b not in a,
    "start with": str.startswith,
    "end with": str.endswith,
    "is": operator.eq,
    "is not": operator.ne,
}


def _holds(value: Any, op: str, target: Any) -> bool:
    if op in ("empty", "not empty"):
        return (value in (None, "")) == (op == "empty")
    if value is None:
        return op in ("not contains", "is not", "≠", "not in")
    if op in ("in", "not in"):
        return (str(value) in [str(t) for t in target or ()]) == (op == "in")
    if op in _COMPARE:
        try:
            return bool(_COMPARE[op](float(value), float(target)))
        except (TypeError, ValueError):
            return False
    return bool(_TEXT[op](str(value), str(target)))


def _matches(doc: Record, filtering: Record | None) -> bool:
    conditions = (filtering or {}).get("conditions") or []
    if not conditions:
        return True
    values = {m["name"]: m["value"] for m in doc["doc_metadata"]}
    results = [
        _holds(values.get(c["name"]), c["comparison_operator"], c.get("value")) for c in conditions
    ]
    return any(results) if (filtering or {}).get("logical_operator") == "or" else all(results)


@handles("knowledge.retrieve")
def retrieve(ctx: Ctx) -> Any:
    """BM25 over the enabled chunks of completed documents whose metadata match."""
    kb, ds, p = ctx.kb, dataset_of(ctx), ctx.p
    settings = ds["retrieval_model_dict"] | p.get("retrieval_model", {})
    filtering = settings.get("metadata_filtering_conditions")
    docs = {d["id"]: d for d in kb.documents.values() if d["_dataset"] == ds["id"]}
    docs = {k: d for k, d in docs.items() if display_status(d) == "available"}
    docs = {k: d for k, d in docs.items() if _matches(d, filtering)}
    segs = [s for s in kb.segments.values() if s["document_id"] in docs and s["enabled"]]
    query = terms(p["query"])
    scores = bm25(query, [terms(s["content"] + " " + s["answer"]) for s in segs])
    ranked = sorted(zip(scores, segs, strict=True), key=lambda x: -x[0])  # stable: ties in order
    threshold = (settings.get("score_threshold") or 0) if settings["score_threshold_enabled"] else 0
    records = []
    for raw, seg in ranked[: settings.get("top_k") or 2]:
        if raw <= 0 or _unit(raw) < threshold:
            break
        seg["hit_count"] += 1
        kids = children(ctx, seg)
        kid_scores = bm25(query, [terms(c["content"]) for c in kids])
        matched = [
            {"id": c["id"], "content": c["content"], "position": c["position"], "score": _unit(s)}
            for s, c in sorted(zip(kid_scores, kids, strict=True), key=lambda x: -x[0])
            if s > 0
        ]
        doc = docs[seg["document_id"]]
        metadata = {m["name"]: m["value"] for m in doc["doc_metadata"]} or None
        document = {
            "id": doc["id"],
            "data_source_type": doc["data_source_type"],
            "name": doc["name"],
        }
        document |= {"doc_type": None, "doc_metadata": metadata}
        record = {"segment": segment_view(ctx, seg) | {"document": document}, "score": _unit(raw)}
        records.append(record | {"child_chunks": matched, "files": []} | _NO_EXTRAS)
    return {"query": {"content": p["query"]}, "records": records}


# --- documents ---------------------------------------------------------------------------


def _index(ctx: Ctx, doc: Record, text: str) -> None:
    """Split the text into chunks (replacing any) and queue the document for indexing."""
    kb, now, account = ctx.kb, ctx.now(), ctx.em.account_id
    for seg in segments(ctx, doc):
        _drop_segment(ctx, seg)
    parts = split(text, doc["_rule"])
    for position, (content, kids) in enumerate(parts, 1):
        seg = _new_segment(ctx, doc, content, position, "indexing")
        for n, kid in enumerate(kids, 1):
            _new_chunk(ctx, seg, kid, n, "automatic")
    doc.update(indexing_status="waiting", error=None, _polls=0, _started=None, _completed=None)
    doc.update(word_count=sum(len(c) for c, _ in parts), tokens=tokens(text), _updated=now)
    doc["created_by"] = account
    batch = ctx.em.ids.digits(20)
    kb.batches[batch] = [doc["id"]]
    doc["_batch"] = batch
    if ctx.em.indexing_polls <= 0:
        _advance(ctx, doc, finish=True)


def _new_segment(ctx: Ctx, doc: Record, content: str, position: int, status: str) -> Record:
    now, account = ctx.now(), ctx.em.account_id
    common = Counter(t for t in terms(content) if len(t) > 2).most_common(5)
    nulls = ("disabled_at", "disabled_by", "error", "stopped_at", "summary")
    seg = (
        {"id": ctx.id(), "position": position, "document_id": doc["id"], "answer": ""}
        | {"content": content, "sign_content": content, "word_count": len(content)}
        | {"tokens": tokens(content), "keywords": [t for t, _ in common], "hit_count": 0}
        | {"index_node_id": ctx.id(), "index_node_hash": _hash(content), "enabled": True}
        | {"status": status, "created_by": account, "created_at": now, "updated_at": now}
        | {"updated_by": account, "indexing_at": now, "attachments": []}
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


def _drop_segment(ctx: Ctx, seg: Record) -> None:
    for chunk in children(ctx, seg):
        del ctx.kb.child_chunks[chunk["id"]]
    del ctx.kb.segments[seg["id"]]


def _drop_document(ctx: Ctx, doc: Record) -> None:
    for seg in segments(ctx, doc):
        _drop_segment(ctx, seg)
    del ctx.kb.documents[doc["id"]]


def _advance(ctx: Ctx, doc: Record, finish: bool = False) -> None:
    """One poll's worth of indexing progress."""
    if doc["indexing_status"] in ("completed", "error"):
        return
    now = ctx.now()
    doc["_polls"] += 1
    doc["_started"] = doc["_started"] or now
    if not finish and doc["_polls"] < ctx.em.indexing_polls:
        doc["indexing_status"] = "indexing"
        return
    segs = segments(ctx, doc)
    if not segs:
        doc.update(indexing_status="error", error="The document has no text to index.")
        return
    doc.update(indexing_status="completed", _completed=now)
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
        | {"created_by": ctx.em.account_id, "created_at": ctx.now(), "tokens": 0}
        | {"indexing_status": "waiting", "enabled": True, "archived": False, "word_count": 0}
        | {"hit_count": 0, "doc_metadata": [], "need_summary": False}
        | {"_dataset": ds["id"], "_file": f.id, "_language": "English"}
        | dict.fromkeys(nulls)
        | _settings(ctx, settings)
    )
    ctx.kb.documents[doc["id"]] = doc
    _index(ctx, doc, _text(f))
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
    _index(ctx, doc, _text(ctx.em.files[doc["_file"]]))
    return _doc_reply(ctx, doc)


@handles("knowledge.update_document_by_file", "knowledge.update_document")
def update_by_file(ctx: Ctx) -> Any:
    doc = document_of(ctx)
    doc.update(_settings(ctx, ctx.p.get("data", {}), doc))
    if "file" in ctx.files:
        f = ctx.em.store(ctx.files["file"], ctx.em.account_id)
        doc.update(name=f.name, _file=f.id, data_source_info={"upload_file_id": f.id})
    _index(ctx, doc, _text(ctx.em.files[doc["_file"]]))
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
        _advance(ctx, doc)
        started, done = doc["_started"], doc["indexing_status"] == "completed"
        total = len(segments(ctx, doc))
        steps = ("processing_started_at", "parsing_completed_at", "cleaning_completed_at")
        out.append(
            {"id": doc["id"], "indexing_status": doc["indexing_status"], "error": doc["error"]}
            | dict.fromkeys((*steps, "splitting_completed_at"), started)
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


@handles("knowledge.get_document_file")
def document_file(ctx: Ctx) -> Any:
    f = ctx.em.files[document_of(ctx)["_file"]]
    return _file_info(f) | {"url": ctx.file_url(f), "download_url": ctx.file_url(f)}


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


# --- chunks ------------------------------------------------------------------------------


@handles("knowledge.create_segments")
def create_segments(ctx: Ctx) -> Any:
    doc = document_of(ctx)
    position = len(segments(ctx, doc))
    created = []
    for n, new in enumerate(ctx.p["segments"], 1):
        seg = _new_segment(ctx, doc, new["content"], position + n, "completed")
        seg.update(answer=new.get("answer", ""), keywords=new.get("keywords", seg["keywords"]))
        created.append(segment_view(ctx, seg))
    return {"data": created, "doc_form": doc["doc_form"]}


@handles("knowledge.list_segments")
def list_segments(ctx: Ctx) -> Any:
    doc, p = document_of(ctx), ctx.p
    found = [s for s in segments(ctx, doc) if p.get("keyword", "") in s["content"]]
    if p.get("status"):
        found = [s for s in found if s["status"] in p["status"]]
    return page([segment_view(ctx, s) for s in found], p) | {"doc_form": doc["doc_form"]}


@handles("knowledge.get_segment")
def get_segment(ctx: Ctx) -> Any:
    seg = segment_of(ctx)
    return {"data": segment_view(ctx, seg), "doc_form": document_of(ctx)["doc_form"]}


@handles("knowledge.update_segment")
def update_segment(ctx: Ctx) -> Any:
    seg, change = segment_of(ctx), ctx.p["segment"]
    doc = document_of(ctx)
    if "content" in change:
        content = change["content"]
        seg.update(content=content, sign_content=content, word_count=len(content))
        seg.update(tokens=tokens(content), index_node_hash=_hash(content))
    for key in ("answer", "keywords", "enabled", "summary"):
        if key in change:
            seg[key] = change[key]
    seg.update(updated_at=ctx.now(), disabled_at=None if seg["enabled"] else ctx.now())
    if change.get("regenerate_child_chunks"):
        for chunk in children(ctx, seg):
            del ctx.kb.child_chunks[chunk["id"]]
        sub = (doc["_rule"].get("rules") or {}).get("subchunk_segmentation", {})
        for n, kid in enumerate(chunks(seg["content"], sub, 200), 1):
            _new_chunk(ctx, seg, kid, n, "automatic")
    return {"data": segment_view(ctx, seg), "doc_form": doc["doc_form"]}


@handles("knowledge.delete_segment")
def delete_segment(ctx: Ctx) -> Any:
    _drop_segment(ctx, segment_of(ctx))
    return None


@handles("knowledge.create_child_chunk")
def create_child_chunk(ctx: Ctx) -> Any:
    seg = segment_of(ctx)
    chunk = _new_chunk(ctx, seg, ctx.p["content"], len(children(ctx, seg)) + 1, "customized")
    return {"data": public(chunk)}


@handles("knowledge.list_child_chunks")
def list_child_chunks(ctx: Ctx) -> Any:
    p = ctx.p
    found = [
        public(c) for c in children(ctx, segment_of(ctx)) if p.get("keyword", "") in c["content"]
    ]
    result = page(found, p)
    pages = math.ceil(result["total"] / result["limit"])
    return {k: result[k] for k in ("data", "total", "page", "limit")} | {"total_pages": pages}


@handles("knowledge.update_child_chunk")
def update_child_chunk(ctx: Ctx) -> Any:
    chunk = chunk_of(ctx)
    content = ctx.p["content"]
    chunk.update(content=content, word_count=len(content), type="customized", updated_at=ctx.now())
    return {"data": public(chunk)}


@handles("knowledge.delete_child_chunk")
def delete_child_chunk(ctx: Ctx) -> Any:
    del ctx.kb.child_chunks[chunk_of(ctx)["id"]]
    return None


# --- tags ----------------------------------------------------------------------------------


def tag_of(ctx: Ctx, tag_id: str) -> Record:
    tag = ctx.kb.tags.get(tag_id)
    if tag is None:
        raise not_found("Tag not found.")
    return tag


@handles("knowledge.create_tag")
def create_tag(ctx: Ctx) -> Any:
    if any(t["name"] == ctx.p["name"] for t in ctx.kb.tags.values()):
        raise invalid("Tag name already exists.")
    tag = {"id": ctx.id(), "name": ctx.p["name"], "type": "knowledge"}
    ctx.kb.tags[tag["id"]] = tag
    return tag_view(ctx, tag)


@handles("knowledge.list_tags")
def list_tags(ctx: Ctx) -> Any:
    return [tag_view(ctx, t) for t in ctx.kb.tags.values()]


@handles("knowledge.update_tag")
def update_tag(ctx: Ctx) -> Any:
    tag = tag_of(ctx, ctx.p["tag_id"])
    tag["name"] = ctx.p["name"]
    return tag_view(ctx, tag)


@handles("knowledge.delete_tag")
def delete_tag(ctx: Ctx) -> Any:
    del ctx.kb.tags[tag_of(ctx, ctx.p["tag_id"])["id"]]
    for ids in ctx.kb.bindings.values():
        ids[:] = [i for i in ids if i != ctx.p["tag_id"]]
    return None


@handles("knowledge.bind_tags")
def bind_tags(ctx: Ctx) -> Any:
    ds = dataset_of(_target(ctx))
    bound = ctx.kb.bindings.setdefault(ds["id"], [])
    bound += [t for t in ctx.p["tag_ids"] if tag_of(ctx, t) and t not in bound]
    return None


def _target(ctx: Ctx) -> Ctx:
    ctx.p["dataset_id"] = ctx.p["target_id"]
    return ctx


@handles("knowledge.unbind_tags")
def unbind_tags(ctx: Ctx) -> Any:
    ds = dataset_of(_target(ctx))
    drop = set(ctx.p.get("tag_ids", ())) | ({ctx.p["tag_id"]} if "tag_id" in ctx.p else set())
    bound = ctx.kb.bindings.get(ds["id"], [])
    bound[:] = [t for t in bound if t not in drop]
    return None


@handles("knowledge.list_dataset_tags")
def list_dataset_tags(ctx: Ctx) -> Any:
    ids = ctx.kb.bindings.get(dataset_of(ctx)["id"], [])
    return {"data": [{"id": t, "name": ctx.kb.tags[t]["name"]} for t in ids], "total": len(ids)}


# --- metadata ------------------------------------------------------------------------------


def field_of(ctx: Ctx, field_id: str) -> Record:
    ds = dataset_of(ctx)
    found = ctx.kb.fields.get(field_id)
    if found is None or found["_dataset"] != ds["id"]:
        raise not_found("Metadata not found.")
    return found


@handles("knowledge.create_metadata_field")
def create_metadata_field(ctx: Ctx) -> Any:
    ds = dataset_of(ctx)
    if any(
        f["name"] == ctx.p["name"] and f["_dataset"] == ds["id"] for f in ctx.kb.fields.values()
    ):
        raise invalid("Metadata name already exists.")
    new = {"id": ctx.id(), "type": ctx.p["type"], "name": ctx.p["name"], "_dataset": ds["id"]}
    ctx.kb.fields[new["id"]] = new
    return Reply(201, public(new))


@handles("knowledge.list_metadata_fields")
def list_metadata_fields(ctx: Ctx) -> Any:
    ds = dataset_of(ctx)
    docs = [d for d in ctx.kb.documents.values() if d["_dataset"] == ds["id"]]
    fields = [f for f in ctx.kb.fields.values() if f["_dataset"] == ds["id"]]
    counted = [
        public(f) | {"count": sum(any(m["id"] == f["id"] for m in d["doc_metadata"]) for d in docs)}
        for f in fields
    ]
    return {"doc_metadata": counted, "built_in_field_enabled": ds["built_in_field_enabled"]}


@handles("knowledge.update_metadata_field")
def update_metadata_field(ctx: Ctx) -> Any:
    found = field_of(ctx, ctx.p["metadata_id"])
    found["name"] = ctx.p["name"]
    for doc in ctx.kb.documents.values():
        for entry in doc["doc_metadata"]:
            if entry["id"] == found["id"]:
                entry["name"] = found["name"]
    return public(found)


@handles("knowledge.delete_metadata_field")
def delete_metadata_field(ctx: Ctx) -> Any:
    found = field_of(ctx, ctx.p["metadata_id"])
    del ctx.kb.fields[found["id"]]
    for doc in ctx.kb.documents.values():
        doc["doc_metadata"] = [m for m in doc["doc_metadata"] if m["id"] != found["id"]]
    return None


@handles("knowledge.list_built_in_metadata_fields")
def list_built_in(ctx: Ctx) -> Any:
    dataset_of(ctx)
    return {"fields": [{"id": "built-in", "name": n, "type": t} for n, t in _BUILT_IN]}


@handles("knowledge.update_built_in_metadata_fields")
def toggle_built_in(ctx: Ctx) -> Any:
    dataset_of(ctx)["built_in_field_enabled"] = ctx.p["action"] == "enable"
    return {"result": "success"}


@handles("knowledge.update_document_metadata")
def update_document_metadata(ctx: Ctx) -> Any:
    for op in ctx.p["operation_data"]:
        doc = document_of(ctx, op["document_id"])
        entries = {m["id"]: m for m in doc["doc_metadata"]} if op.get("partial_update") else {}
        for value in op["metadata_list"]:
            found = field_of(ctx, value["id"])
            entries[found["id"]] = public(found) | {"value": value.get("value")}
        doc["doc_metadata"] = list(entries.values())
    return {"result": "success"}


# --- models and the pipeline ------------------------------------------------------------

_MODELS = {
    "text-embedding": ("langgenius/openai/openai", "text-embedding-3-small"),
    "rerank": ("langgenius/cohere/cohere", "rerank-v3.5"),
    "llm": ("langgenius/openai/openai", "gpt-4o-mini"),
    "tts": ("langgenius/openai/openai", "tts-1"),
    "speech2text": ("langgenius/openai/openai", "whisper-1"),
    "moderation": ("langgenius/openai/openai", "omni-moderation-latest"),
}


@handles("knowledge.list_models", "knowledge.list_embedding_models")
def list_models(ctx: Ctx) -> Any:
    kind = ctx.p.get("model_type", "text-embedding")
    provider, model = _MODELS[kind]
    label = {"en_US": provider.rpartition("/")[2].title(), "zh_Hans": provider.rpartition("/")[2]}
    entry = {"model": model, "label": {"en_US": model, "zh_Hans": model}, "model_type": kind}
    entry |= {"features": [], "fetch_from": "predefined-model", "model_properties": {}}
    entry |= {"status": "active", "deprecated": False, "load_balancing_enabled": False}
    entry |= {"has_invalid_load_balancing_configs": False}
    vendor = {"provider": provider, "label": label, "icon_small": label, "status": "active"}
    return {"data": [vendor | {"models": [entry], "tenant_id": ctx.em.tenant_id}]}


@handles("knowledge.upload_pipeline_file")
def upload_pipeline_file(ctx: Ctx) -> Any:
    f = ctx.em.store(ctx.files["file"], ctx.em.account_id)
    return Reply(201, _file_info(f) | {"created_at": ctx.em.ids.iso()})


@handles("knowledge.list_datasource_plugins")
def list_datasource_plugins(ctx: Ctx) -> Any:
    dataset_of(ctx)
    plugin = {"node_id": "datasource", "plugin_id": "langgenius/file", "provider_name": "file"}
    plugin |= {"datasource_type": "local_file", "title": "File upload"}
    return [plugin | {"user_input_variables": [], "credentials": []}]


@handles("knowledge.run_datasource_node")
def run_datasource_node(ctx: Ctx) -> Any:
    dataset_of(ctx)
    done = {"event": "datasource_completed", "data": [], "total": 0, "completed": 0}
    return Reply(stream=True, prefix=[done | {"time_consuming": 0.0}])


@handles("knowledge.run_pipeline")
def run_pipeline(ctx: Ctx) -> Any:
    """Each ``local_file`` item becomes a document of the knowledge base; other kinds are
    skipped. The run streams like a workflow's."""
    p = ctx.p
    created = []
    for item in p["datasource_info_list"] if p["datasource_type"] == "local_file" else ():
        f = ctx.em.files.get(item.get("reference", "")) if isinstance(item, dict) else None
        if f is None:
            raise not_found("File not found.")
        upload = Upload(f.name, f.content, f.mime_type)
        created.append(_create_document(ctx, item.get("name") or f.name, upload, {})["id"])
    outputs: Record = {"documents": created}
    text = " ".join(words(f"{len(created)} documents queued for indexing"))
    ctx.app = ctx.em.pipeline_app
    task = workflow_task(ctx, p["inputs"], ctx.em.account_id, outputs, text)
    if p.get("response_mode") == "streaming":
        return Reply(stream=True, task=task)
    task.drain()
    run = ctx.state.runs[task.run_id or ""]
    data = {k: run[k] for k in ("id", "workflow_id", "status", "outputs", "error", "created_at")}
    return {"task_id": task.id, "workflow_run_id": run["id"], "data": data}
