"""Knowledge bases: chunking, BM25, lookups and views, dataset routes and retrieval.

Documents are split when they are created: the automatic rule merges paragraphs (then
sentences, words) back up to 500 tokens, a custom rule cuts at its separator, then into
windows of at most ``max_tokens`` words; tokens are words. Indexing then takes
``indexing_seconds``, polled or not (``splitting`` or ``waiting`` → ``indexing`` →
``completed``). Only completed documents are searched. Retrieval ranks chunks with BM25 over
the query's terms; ``keyword_search`` reports every score as 0.0, as Dify does.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections import Counter
from typing import Any

from ._base import (
    ApiError,
    Ctx,
    handles,
    is_uuid,
    max_length,
    not_found,
    page,
    server_error,
    tokens,
)
from ._state import Record, public

_TERM = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]|[^\W_]+")
_RETRIEVAL = {
    "search_method": "semantic_search",
    "reranking_enable": False,
    "reranking_mode": None,
    "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
    "weights": None,
    "top_k": 2,
    "score_threshold_enabled": False,
    "score_threshold": None,
}
_AUTOMATIC: Record = {
    "pre_processing_rules": [
        {"id": "remove_extra_spaces", "enabled": True},
        {"id": "remove_urls_emails", "enabled": False},
    ],
    # Dify's stored AUTOMATIC_RULES (its key is ``delimiter``; requests send ``separator``).
    "segmentation": {"delimiter": "\n", "max_tokens": 500, "chunk_overlap": 50},
}
_RECURSIVE = ("\n\n", "。", ". ", " ", "")
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


def merged(text: str, limit: int, overlap: int, seps: tuple[str, ...] = _RECURSIVE) -> list[str]:
    """Dify's automatic splitter (langchain's recursive one): cut at the coarsest separator
    the text has, merge the pieces back up to ``limit`` tokens, start each chunk with up to
    ``overlap`` tokens of the one before; a piece still too long is cut at the next one."""
    i = next(n for n, sep in enumerate(seps) if sep == "" or sep in text)
    sep, finer = seps[i], seps[i + 1 :]
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        window: list[str] = []
        for piece in run:
            if window and tokens(sep.join([*window, piece])) > limit:
                out.append(sep.join(window))
                while window and (
                    tokens(sep.join([*window, piece])) > limit or tokens(sep.join(window)) > overlap
                ):
                    window.pop(0)
            window.append(piece)
        if window:
            out.append(sep.join(window))
        run.clear()

    for piece in text.split(sep) if sep else list(text):
        if tokens(piece) <= limit or not finer:
            run.append(piece)
        else:
            flush()
            out += merged(piece, limit, overlap, finer)
    flush()
    return [c.strip() for c in out if c.strip()]


def split(text: str, rule: Record) -> list[tuple[str, list[str]]]:
    """Parent chunks and (hierarchical mode) their child chunks."""
    rules: Record = (rule.get("rules") or {}) if rule["mode"] != "automatic" else _AUTOMATIC
    enabled = {r.get("id") for r in rules.get("pre_processing_rules", ()) if r.get("enabled")}
    if "remove_extra_spaces" in enabled:
        text = re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+", " ", text))
    if "remove_urls_emails" in enabled:
        text = re.sub(r"https?://\S+|[\w.+-]+@[\w-]+\.[\w.]+", "", text)
    if rule["mode"] == "automatic":
        return [(c, []) for c in merged(text, 500, 50)]
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


#: The account the dataset key acts as, as Dify's built-in ``uploader`` names it.
UPLOADER = "admin"


def built_in(ctx: Ctx, doc: Record) -> list[Record]:
    """The built-in metadata Dify adds to a document while its knowledge base enables them
    (dates as epoch seconds, floats)."""
    if not ctx.kb.datasets[doc["_dataset"]]["built_in_field_enabled"]:
        return []
    source = {"upload_file": "file_upload"}.get(doc["data_source_type"], doc["data_source_type"])
    values = (doc["name"], UPLOADER, float(doc["created_at"]), float(doc["_updated"]), source)
    return [
        {"id": "built-in", "name": name, "type": kind, "value": value}
        for (name, kind), value in zip(_BUILT_IN, values, strict=True)
    ]


def metadata_values(ctx: Ctx, doc: Record) -> Record:
    return {m["name"]: m["value"] for m in [*doc["doc_metadata"], *built_in(ctx, doc)]}


def document_view(ctx: Ctx, doc: Record, detail: bool = False) -> Record:
    view = public(doc) | {"display_status": display_status(doc)}
    if not detail:
        return view
    segs = segments(ctx, doc)
    lengths = [s["word_count"] for s in segs] or [0]
    # The detail writes built-in values as text ("1796215047.0") and no metadata as null.
    extra = [m | {"value": str(m["value"])} for m in built_in(ctx, doc)]
    return (
        {k: v for k, v in view.items() if k != "word_count"}
        | {"dataset_process_rule": doc["_rule"], "document_process_rule": doc["_rule"]}
        | {"doc_language": doc["_language"], "doc_type": None, "indexing_latency": 0.0}
        | {"completed_at": doc["_completed"], "updated_at": int(doc["_updated"])}
        | {"segment_count": len(segs), "average_segment_length": sum(lengths) // len(lengths)}
        | {"doc_metadata": [*doc["doc_metadata"], *extra] or None}
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
        | {"document_count": len(docs), "word_count": sum(d["word_count"] or 0 for d in docs)}
        | {"total_documents": len(docs), "total_available_documents": available}
        | {"tags": tags, "doc_metadata": fields, "embedding_available": True}
    )


# --- knowledge bases -------------------------------------------------------------------


def _check_name(ctx: Ctx, name: str, own: str | None = None) -> None:
    model = "DatasetUpdatePayload" if own else "DatasetCreatePayload"
    max_length(ctx, "name", 40, model)
    if any(d["name"] == name and d["id"] != own for d in ctx.kb.datasets.values()):
        raise ApiError(409, "dataset_name_duplicate", "The dataset name already exists.")


#: Objects Dify sends with every value null until they are set (FACTS 5), not ``null``.
_NULL_OBJECTS = {
    "external_knowledge_info": {
        f"external_knowledge_{name}": None for name in ("id", "api_id", "api_name", "api_endpoint")
    },
    "icon_info": dict.fromkeys(("icon_type", "icon", "icon_background", "icon_url")),
    "summary_index_setting": dict.fromkeys(
        ("enable", "model_name", "model_provider_name", "summary_prompt")
    ),
    "external_retrieval_model": {
        "top_k": 2,
        "score_threshold": 0.0,
        "score_threshold_enabled": None,
    },
}


@handles("knowledge.create_dataset")
def create_dataset(ctx: Ctx) -> Any:
    p, now, account = ctx.p, ctx.now(), ctx.em.account_id
    _check_name(ctx, p["name"])
    technique = p.get("indexing_technique")
    # An economy (or not yet chosen) knowledge base has no embedding model on Dify.
    embedding = technique == "high_quality" or "embedding_model" in p
    ds = (
        {"id": ctx.id(), "name": p["name"], "description": p.get("description", "")}
        | {"provider": p.get("provider", "vendor"), "permission": p.get("permission", "only_me")}
        | {"data_source_type": None, "app_count": 0, "author_name": "emulator"}
        | {"indexing_technique": technique}
        | {"created_by": account, "created_at": now, "updated_by": account, "updated_at": now}
        | {
            "embedding_model": p.get("embedding_model", "text-embedding-3-small")
            if embedding
            else None
        }
        | {
            "embedding_model_provider": p.get("embedding_model_provider", _MODELS["llm"][0])
            if embedding
            else None
        }
        | {"doc_form": None, "runtime_mode": "general"}
        | {"retrieval_model_dict": _RETRIEVAL | p.get("retrieval_model", {})}
        | {"_members": [], "built_in_field_enabled": False}
        | {"is_published": False, "enable_api": True, "is_multimodal": False}
        | dict.fromkeys(("pipeline_id", "chunk_structure"))
        | {k: dict(v) for k, v in _NULL_OBJECTS.items()}
    )
    for name in ("summary_index_setting", "external_retrieval_model"):
        ds[name] |= p.get(name) or {}
    ctx.kb.datasets[ds["id"]] = ds
    return dataset_view(ctx, ds) | {"embedding_available": None}  # null on a write, as on Dify


@handles("knowledge.list_datasets")
def list_datasets(ctx: Ctx) -> Any:
    p, kb = ctx.p, ctx.kb
    found = [d for d in reversed(kb.datasets.values()) if p.get("keyword", "") in d["name"]]
    if p.get("tag_ids"):
        if not all(map(is_uuid, p["tag_ids"])):
            raise server_error()  # Dify hands the ids to the database unchecked
        wanted = set(p["tag_ids"])
        found = [d for d in found if wanted & set(kb.bindings.get(d["id"], ()))]
    return page([dataset_view(ctx, d) for d in found], p)


@handles("knowledge.get_dataset")
def get_dataset(ctx: Ctx) -> Any:
    ds = dataset_of(ctx)
    view = dataset_view(ctx, ds)
    if ds["indexing_technique"] == "economy":  # Dify's detail names the search it will run
        view["retrieval_model_dict"] = view["retrieval_model_dict"] | {
            "search_method": "keyword_search"
        }
    return view


@handles("knowledge.update_dataset")
def update_dataset(ctx: Ctx) -> Any:
    ds, p = dataset_of(ctx), dict(ctx.p)
    if "name" in p:
        _check_name(ctx, p["name"], ds["id"])
    if "retrieval_model" in p:
        ds["retrieval_model_dict"] = ds["retrieval_model_dict"] | p.pop("retrieval_model")
    if "partial_member_list" in p:
        ds["_members"] = [m.get("user_id") for m in p.pop("partial_member_list")]
    if "external_retrieval_model" in p:
        ds["external_retrieval_model"] = p.pop("external_retrieval_model")
    ds.update({k: v for k, v in p.items() if k in ds and k != "id"}, updated_at=ctx.now())
    # A write answers embedding_available null, as Dify does; only PATCH shows the members.
    return dataset_view(ctx, ds) | {
        "embedding_available": None,
        "partial_member_list": ds["_members"],
    }


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


def _matches(values: Record, filtering: Record | None) -> bool:
    conditions = (filtering or {}).get("conditions") or []
    if not conditions:
        return True
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
    docs = {k: d for k, d in docs.items() if _matches(metadata_values(ctx, d), filtering)}
    segs = [s for s in kb.segments.values() if s["document_id"] in docs and s["enabled"]]
    query = terms(p["query"])
    scores = bm25(query, [terms(s["content"] + " " + (s["answer"] or "")) for s in segs])
    ranked = sorted(zip(scores, segs, strict=True), key=lambda x: -x[0])  # stable: ties in order
    # Dify's keyword index ranks by keyword hits and scores nothing (0.0), nor thresholds.
    keyword = settings.get("search_method") == "keyword_search"
    thresholded = settings["score_threshold_enabled"] and not keyword
    threshold = (settings.get("score_threshold") or 0) if thresholded else 0
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
        metadata = metadata_values(ctx, doc) or None
        document = {
            "id": doc["id"],
            "data_source_type": doc["data_source_type"],
            "name": doc["name"],
        }
        document |= {"doc_type": None, "doc_metadata": metadata}
        score = 0.0 if keyword else _unit(raw)
        found = segment_view(ctx, seg) | {"sign_content": None, "document": document}
        record = {"segment": found, "score": score}
        records.append(record | {"child_chunks": matched, "files": []} | _NO_EXTRAS)
    return {"query": {"content": p["query"]}, "records": records}


def _drop_segment(ctx: Ctx, seg: Record) -> None:
    for chunk in children(ctx, seg):
        del ctx.kb.child_chunks[chunk["id"]]
    del ctx.kb.segments[seg["id"]]


def _drop_document(ctx: Ctx, doc: Record) -> None:
    for seg in segments(ctx, doc):
        _drop_segment(ctx, seg)
    del ctx.kb.documents[doc["id"]]


_MODELS = {
    "text-embedding": ("langgenius/openai/openai", "text-embedding-3-small"),
    "rerank": ("langgenius/cohere/cohere", "rerank-v3.5"),
    "llm": ("langgenius/openai/openai", "gpt-4o-mini"),
    "tts": ("langgenius/openai/openai", "tts-1"),
    "speech2text": ("langgenius/openai/openai", "whisper-1"),
    "moderation": ("langgenius/openai/openai", "omni-moderation-latest"),
}
