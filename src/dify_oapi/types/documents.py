"""Knowledge-base documents: create from text or a file, process rules, indexing status."""

from __future__ import annotations

from typing import Any, Literal

from ._base import UNSET, FileInput, Model, Request, UnsetType
from .common import Page, Uuid
from .datasets import DocForm, IndexingTechnique, RetrievalModel

__all__ = [
    "CreateDocumentByFileRequest",
    "CreateDocumentByTextRequest",
    "Document",
    "DocumentDetail",
    "DocumentDownload",
    "DocumentIdRequest",
    "DocumentIndexingStatus",
    "DocumentList",
    "DocumentMetadataEntry",
    "DocumentResponse",
    "DocumentSettings",
    "DocumentUploadFile",
    "DownloadDocumentsZipRequest",
    "GetDocumentRequest",
    "IndexingStatusList",
    "IndexingStatusRequest",
    "ListDocumentsRequest",
    "PreProcessingRule",
    "ProcessRule",
    "ProcessRules",
    "Segmentation",
    "UpdateDocumentByFileRequest",
    "UpdateDocumentByTextRequest",
    "UpdateDocumentStatusRequest",
]


# --- Documents ---------------------------------------------------------------------------


class PreProcessingRule(Request):
    id: Literal["remove_stopwords", "remove_extra_spaces", "remove_urls_emails"] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class Segmentation(Request):
    """How text is split into chunks (``separator`` defaults to a newline)."""

    separator: str | UnsetType = UNSET
    max_tokens: int | UnsetType = UNSET
    chunk_overlap: int | UnsetType = UNSET


class ProcessRules(Request):
    """Custom chunking rules.

    ``parent_mode`` and ``subchunk_segmentation`` apply to the ``hierarchical`` mode (parent
    chunks of a whole document or of paragraphs, split again into child chunks).
    """

    pre_processing_rules: list[PreProcessingRule] | UnsetType = UNSET
    segmentation: Segmentation | UnsetType = UNSET
    parent_mode: Literal["full-doc", "paragraph"] | UnsetType = UNSET
    subchunk_segmentation: Segmentation | UnsetType = UNSET


class ProcessRule(Request):
    """``automatic`` uses built-in rules; ``custom`` and ``hierarchical`` take ``rules``."""

    mode: Literal["automatic", "custom", "hierarchical"]
    rules: ProcessRules | UnsetType = UNSET


class CreateDocumentByTextRequest(Request):
    """Create a document from text; ``indexing_technique`` is required on the first document."""

    dataset_id: Uuid
    name: str
    text: str
    indexing_technique: IndexingTechnique | UnsetType = UNSET
    doc_form: DocForm | UnsetType = UNSET
    doc_language: str | UnsetType = UNSET
    process_rule: ProcessRule | UnsetType = UNSET
    retrieval_model: RetrievalModel | UnsetType = UNSET
    embedding_model: str | UnsetType = UNSET
    embedding_model_provider: str | UnsetType = UNSET
    original_document_id: str | UnsetType = UNSET


class DocumentSettings(Request):
    """The ``data`` form field of file uploads: how the document is indexed and chunked.

    It is sent as a JSON string; build it from this struct, never by hand.
    """

    indexing_technique: IndexingTechnique | UnsetType = UNSET
    doc_form: DocForm | UnsetType = UNSET
    doc_language: str | UnsetType = UNSET
    process_rule: ProcessRule | UnsetType = UNSET
    retrieval_model: RetrievalModel | UnsetType = UNSET
    embedding_model: str | UnsetType = UNSET
    embedding_model_provider: str | UnsetType = UNSET
    original_document_id: str | UnsetType = UNSET


class CreateDocumentByFileRequest(Request):
    """Create a document from a file (PDF, TXT, DOCX, ...)."""

    dataset_id: Uuid
    file: FileInput
    data: DocumentSettings | UnsetType = UNSET


class UpdateDocumentByFileRequest(Request):
    """Replace a document's file and/or settings; the document is indexed again."""

    dataset_id: Uuid
    document_id: Uuid
    file: FileInput | UnsetType = UNSET
    data: DocumentSettings | UnsetType = UNSET


class UpdateDocumentByTextRequest(Request):
    """Change a document's text, name or settings; ``name`` is required with ``text``."""

    dataset_id: Uuid
    document_id: Uuid
    name: str | UnsetType = UNSET
    text: str | UnsetType = UNSET
    process_rule: ProcessRule | UnsetType = UNSET
    doc_form: DocForm | UnsetType = UNSET
    doc_language: str | UnsetType = UNSET
    retrieval_model: RetrievalModel | UnsetType = UNSET


class ListDocumentsRequest(Request):
    dataset_id: Uuid
    page: int | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    keyword: str | UnsetType = UNSET
    status: (
        Literal["queuing", "indexing", "paused", "error", "available", "disabled", "archived"]
        | UnsetType
    ) = UNSET


class GetDocumentRequest(Request):
    """``metadata``: ``all`` fields, ``only`` the metadata, or everything ``without`` it."""

    dataset_id: Uuid
    document_id: Uuid
    metadata: Literal["all", "only", "without"] | UnsetType = UNSET


class DocumentIdRequest(Request):
    dataset_id: Uuid
    document_id: Uuid


class IndexingStatusRequest(Request):
    """``batch`` is the id returned when a document was created or updated."""

    dataset_id: Uuid
    batch: str


class DownloadDocumentsZipRequest(Request):
    """Up to 100 documents uploaded as files."""

    dataset_id: Uuid
    document_ids: list[Uuid]


class UpdateDocumentStatusRequest(Request):
    dataset_id: Uuid
    action: Literal["enable", "disable", "archive", "un_archive"]
    document_ids: list[Uuid]


class DocumentMetadataEntry(Model):
    """A metadata value set on a document."""

    id: str | None = None
    name: str | None = None
    type: str | None = None
    value: Any = None


class Document(Model):
    id: str | None = None
    position: int | None = None
    data_source_type: str | None = None
    data_source_info: dict[str, Any] | None = None
    data_source_detail_dict: dict[str, Any] | None = None
    dataset_process_rule_id: str | None = None
    name: str | None = None
    created_from: str | None = None
    created_by: str | None = None
    created_at: int | float | None = None
    tokens: int | None = None
    indexing_status: str | None = None
    error: str | None = None
    enabled: bool | None = None
    disabled_at: int | float | None = None
    disabled_by: str | None = None
    archived: bool | None = None
    display_status: str | None = None
    word_count: int | None = None
    hit_count: int | None = None
    doc_form: str | None = None
    doc_metadata: list[DocumentMetadataEntry] | None = None
    summary_index_status: str | None = None
    need_summary: bool | None = None


class DocumentDetail(Document):
    """One document with its processing rules and statistics (fields depend on ``metadata``)."""

    dataset_process_rule: dict[str, Any] | None = None
    document_process_rule: dict[str, Any] | None = None
    doc_language: str | None = None
    doc_type: str | None = None
    completed_at: int | float | None = None
    updated_at: int | float | None = None
    indexing_latency: float | None = None
    segment_count: int | None = None
    average_segment_length: float | None = None


class DocumentList(Page):
    data: list[Document] = []


class DocumentResponse(Model):
    """A created or updated document and the ``batch`` id to poll its indexing with."""

    document: Document | None = None
    batch: str | None = None


class DocumentDownload(Model):
    """A signed URL of the document's original file."""

    url: str | None = None


class DocumentUploadFile(Model):
    """The file a document was created from."""

    id: str | None = None
    name: str | None = None
    size: int | None = None
    extension: str | None = None
    url: str | None = None
    download_url: str | None = None
    mime_type: str | None = None
    created_by: str | None = None
    created_at: int | float | None = None


class DocumentIndexingStatus(Model):
    """Indexing progress of one document: ``waiting`` through ``completed``, or ``error``."""

    id: str | None = None
    indexing_status: str | None = None
    processing_started_at: int | float | None = None
    parsing_completed_at: int | float | None = None
    cleaning_completed_at: int | float | None = None
    splitting_completed_at: int | float | None = None
    completed_at: int | float | None = None
    paused_at: int | float | None = None
    error: str | None = None
    stopped_at: int | float | None = None
    completed_segments: int | None = None
    total_segments: int | None = None


class IndexingStatusList(Model):
    data: list[DocumentIndexingStatus] = []
