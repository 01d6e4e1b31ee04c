"""Knowledge-base chunks (segments), child chunks and retrieval results."""

from __future__ import annotations

from typing import Any

from ._base import UNSET, Model, Request, UnsetType
from .common import Page, Uuid
from .datasets import RetrievedChildChunk, RetrievedDocument, RetrieveQuery

__all__ = [
    "ChildChunk",
    "ChildChunkDetail",
    "ChildChunkIdRequest",
    "ChildChunkList",
    "CreateChildChunkRequest",
    "CreateSegmentsRequest",
    "ListChildChunksRequest",
    "ListSegmentsRequest",
    "NewSegment",
    "RetrievalRecord",
    "RetrieveResponse",
    "RetrievedSegment",
    "Segment",
    "SegmentAttachment",
    "SegmentDetail",
    "SegmentIdRequest",
    "SegmentList",
    "SegmentUpdate",
    "UpdateChildChunkRequest",
    "UpdateSegmentRequest",
]


# --- Chunks (segments) and child chunks ------------------------------------------------


class NewSegment(Request):
    """A chunk to add; ``answer`` is required in ``qa_model`` documents."""

    content: str
    answer: str | UnsetType = UNSET
    keywords: list[str] | UnsetType = UNSET
    attachment_ids: list[str] | UnsetType = UNSET


class CreateSegmentsRequest(Request):
    dataset_id: Uuid
    document_id: Uuid
    segments: list[NewSegment]


class ListSegmentsRequest(Request):
    """``status`` filters by indexing status (``completed``, ``indexing``, ``error``, ...)."""

    dataset_id: Uuid
    document_id: Uuid
    page: int | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    status: list[str] | UnsetType = UNSET
    keyword: str | UnsetType = UNSET


class SegmentIdRequest(Request):
    dataset_id: Uuid
    document_id: Uuid
    segment_id: Uuid


class SegmentUpdate(Request):
    """The fields of a chunk to change."""

    content: str | UnsetType = UNSET
    answer: str | UnsetType = UNSET
    keywords: list[str] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    regenerate_child_chunks: bool | UnsetType = UNSET
    attachment_ids: list[str] | UnsetType = UNSET
    summary: str | UnsetType | None = UNSET


class UpdateSegmentRequest(Request):
    dataset_id: Uuid
    document_id: Uuid
    segment_id: Uuid
    segment: SegmentUpdate


class CreateChildChunkRequest(Request):
    dataset_id: Uuid
    document_id: Uuid
    segment_id: Uuid
    content: str


class ListChildChunksRequest(Request):
    dataset_id: Uuid
    document_id: Uuid
    segment_id: Uuid
    page: int | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    keyword: str | UnsetType = UNSET


class UpdateChildChunkRequest(Request):
    dataset_id: Uuid
    document_id: Uuid
    segment_id: Uuid
    child_chunk_id: Uuid
    content: str


class ChildChunkIdRequest(Request):
    dataset_id: Uuid
    document_id: Uuid
    segment_id: Uuid
    child_chunk_id: Uuid


class ChildChunk(Model):
    """A child chunk of a parent chunk (``type``: ``automatic`` or ``customized``)."""

    id: str | None = None
    segment_id: str | None = None
    content: str | None = None
    position: int | None = None
    word_count: int | None = None
    type: str | None = None
    created_at: int | float | None = None
    updated_at: int | float | None = None


class SegmentAttachment(Model):
    """A file attached to a chunk."""

    id: str | None = None
    name: str | None = None
    size: int | None = None
    extension: str | None = None
    mime_type: str | None = None
    source_url: str | None = None


class Segment(Model):
    """A chunk of a document."""

    id: str | None = None
    position: int | None = None
    document_id: str | None = None
    content: str | None = None
    sign_content: str | None = None
    answer: str | None = None
    word_count: int | None = None
    tokens: int | None = None
    keywords: list[str] | None = None
    index_node_id: str | None = None
    index_node_hash: str | None = None
    hit_count: int | None = None
    enabled: bool | None = None
    disabled_at: int | float | None = None
    disabled_by: str | None = None
    status: str | None = None
    created_by: str | None = None
    created_at: int | float | None = None
    updated_at: int | float | None = None
    updated_by: str | None = None
    indexing_at: int | float | None = None
    completed_at: int | float | None = None
    error: str | None = None
    stopped_at: int | float | None = None
    child_chunks: list[ChildChunk] | None = None
    attachments: list[SegmentAttachment] | None = None
    summary: str | None = None


class SegmentList(Page):
    """Chunks of a document (paging fields are set by the list operation only)."""

    data: list[Segment] = []
    doc_form: str | None = None


class SegmentDetail(Model):
    data: Segment | None = None
    doc_form: str | None = None


class ChildChunkDetail(Model):
    data: ChildChunk | None = None


class ChildChunkList(Model):
    """A page of child chunks; this list reports ``total_pages`` rather than ``has_more``."""

    data: list[ChildChunk] = []
    total: int | None = None
    total_pages: int | None = None
    page: int | None = None
    limit: int | None = None


class RetrievedSegment(Segment):
    """A matched chunk with its document."""

    document: RetrievedDocument | None = None


class RetrievalRecord(Model):
    segment: RetrievedSegment | None = None
    child_chunks: list[RetrievedChildChunk] | None = None
    score: float | None = None
    tsne_position: dict[str, Any] | None = None
    files: list[SegmentAttachment] | None = None
    summary: str | None = None


class RetrieveResponse(Model):
    query: RetrieveQuery | None = None
    records: list[RetrievalRecord] = []
