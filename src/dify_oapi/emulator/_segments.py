"""Chunks (segments) and child chunks of a document."""

from __future__ import annotations

import math
from typing import Any

from ._base import Ctx, handles, page
from ._datasets import (
    _drop_segment,
    _hash,
    children,
    chunk_of,
    chunks,
    document_of,
    segment_of,
    segment_view,
    segments,
)
from ._documents import _new_chunk, _new_segment, _tokens
from ._state import public


@handles("knowledge.create_segments")
def create_segments(ctx: Ctx) -> Any:
    doc = document_of(ctx)
    position = len(segments(ctx, doc))
    created = []
    for n, new in enumerate(ctx.p["segments"], 1):
        seg = _new_segment(ctx, doc, new["content"], position + n, "completed")
        seg.update(answer=new.get("answer"), keywords=new.get("keywords", seg["keywords"]))
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
        seg.update(tokens=_tokens(ctx, doc, content), index_node_hash=_hash(content))
    for key in ("answer", "keywords", "enabled", "summary"):
        if key in change:
            seg[key] = change[key]
    seg.update(updated_at=ctx.now(), disabled_at=None if seg["enabled"] else ctx.now())
    seg["updated_by"] = ctx.em.account_id
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
