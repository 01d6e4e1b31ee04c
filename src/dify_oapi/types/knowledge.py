"""Knowledge bases: datasets, documents, chunks, tags, metadata, models and the pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from ._base import UNSET, FileInput, Model, Request, UnsetType
from .common import Page, Uuid
from .events import ErrorEvent, Event, PingEvent

__all__ = [
    "AvailableModels",
    "BindTagsRequest",
    "BuiltInMetadataFields",
    "ChildChunk",
    "ChildChunkDetail",
    "ChildChunkIdRequest",
    "ChildChunkList",
    "CreateChildChunkRequest",
    "CreateDatasetRequest",
    "CreateDocumentByFileRequest",
    "CreateDocumentByTextRequest",
    "CreateMetadataFieldRequest",
    "CreateSegmentsRequest",
    "CreateTagRequest",
    "Dataset",
    "DatasetIdRequest",
    "DatasetList",
    "DatasetTags",
    "DatasourceCompletedEvent",
    "DatasourceCredential",
    "DatasourceErrorEvent",
    "DatasourceInfo",
    "DatasourceNodeEvent",
    "DatasourcePlugin",
    "DatasourceProcessingEvent",
    "DeleteTagRequest",
    "Document",
    "DocumentDetail",
    "DocumentDownload",
    "DocumentIdRequest",
    "DocumentIndexingStatus",
    "DocumentList",
    "DocumentMetadataEntry",
    "DocumentMetadataOperation",
    "DocumentMetadataValue",
    "DocumentResponse",
    "DocumentSettings",
    "DocumentUploadFile",
    "DownloadDocumentsZipRequest",
    "ExternalRetrievalModel",
    "GetDocumentRequest",
    "I18nText",
    "IndexingStatusList",
    "IndexingStatusRequest",
    "KeywordSetting",
    "KnowledgeTag",
    "ListChildChunksRequest",
    "ListDatasetsRequest",
    "ListDatasourcePluginsRequest",
    "ListDocumentsRequest",
    "ListModelsRequest",
    "ListSegmentsRequest",
    "LocalFileDatasource",
    "MetadataCondition",
    "MetadataField",
    "MetadataFieldIdRequest",
    "MetadataFieldList",
    "MetadataFilteringConditions",
    "ModelProvider",
    "NewSegment",
    "OnlineDocumentDatasource",
    "OnlineDocumentPage",
    "OnlineDriveDatasource",
    "PartialMember",
    "PipelineFile",
    "PipelineFileUploadRequest",
    "PreProcessingRule",
    "ProcessRule",
    "ProcessRules",
    "ProviderModel",
    "RerankingModel",
    "RerankingModelInfo",
    "RetrievalModel",
    "RetrievalModelInfo",
    "RetrievalRecord",
    "RetrievalWeights",
    "RetrieveQuery",
    "RetrieveRequest",
    "RetrieveResponse",
    "RetrievedChildChunk",
    "RetrievedDocument",
    "RetrievedSegment",
    "RunDatasourceNodeRequest",
    "RunPipelineRequest",
    "Segment",
    "SegmentAttachment",
    "SegmentDetail",
    "SegmentIdRequest",
    "SegmentList",
    "SegmentUpdate",
    "Segmentation",
    "SummaryIndexSetting",
    "UnbindTagsRequest",
    "UpdateBuiltInMetadataRequest",
    "UpdateChildChunkRequest",
    "UpdateDatasetRequest",
    "UpdateDocumentByFileRequest",
    "UpdateDocumentByTextRequest",
    "UpdateDocumentMetadataRequest",
    "UpdateDocumentStatusRequest",
    "UpdateMetadataFieldRequest",
    "UpdateSegmentRequest",
    "UpdateTagRequest",
    "VectorSetting",
    "WebsiteCrawlDatasource",
]

IndexingTechnique = Literal["high_quality", "economy"]
DocForm = Literal["text_model", "hierarchical_model", "qa_model"]
Permission = Literal["only_me", "all_team_members", "partial_members"]
DatasourceType = Literal["local_file", "online_document", "website_crawl", "online_drive"]
ComparisonOperator = Literal[
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "empty",
    "not empty",
    "in",
    "not in",
    "=",
    "≠",
    ">",
    "<",
    "≥",
    "≤",
    "before",
    "after",
]


# --- Retrieval settings (sent) ---------------------------------------------------------


class RerankingModel(Request):
    """A rerank model, as ``list_models(model_type="rerank")`` names it.

    ``reranking_provider_name`` is ``organization/plugin/provider``, e.g.
    ``langgenius/cohere/cohere``.
    """

    reranking_provider_name: str | UnsetType = UNSET
    reranking_model_name: str | UnsetType = UNSET


class VectorSetting(Request):
    vector_weight: float | UnsetType = UNSET
    embedding_provider_name: str | UnsetType = UNSET
    embedding_model_name: str | UnsetType = UNSET


class KeywordSetting(Request):
    keyword_weight: float | UnsetType = UNSET


class RetrievalWeights(Request):
    """How hybrid search balances semantic and keyword results."""

    weight_type: Literal["semantic_first", "keyword_first", "customized"] | UnsetType = UNSET
    vector_setting: VectorSetting | UnsetType = UNSET
    keyword_setting: KeywordSetting | UnsetType = UNSET


class MetadataCondition(Request):
    """One condition on a document metadata field.

    ``value`` is a string, a list of strings (``in``, ``not in``) or a number; omit it for
    ``empty`` and ``not empty``.
    """

    name: str
    comparison_operator: ComparisonOperator
    value: str | list[str] | int | float | UnsetType | None = UNSET


class MetadataFilteringConditions(Request):
    """Restrict retrieval to chunks whose document metadata match these conditions."""

    logical_operator: Literal["and", "or"] | UnsetType | None = UNSET
    conditions: list[MetadataCondition] | UnsetType | None = UNSET


class RetrievalModel(Request):
    """How chunks are searched and ranked; ``reranking_mode`` is needed when reranking is on."""

    search_method: Literal["keyword_search", "semantic_search", "full_text_search", "hybrid_search"]
    reranking_enable: bool
    top_k: int
    score_threshold_enabled: bool
    reranking_model: RerankingModel | UnsetType = UNSET
    reranking_mode: Literal["reranking_model", "weighted_score"] | UnsetType | None = UNSET
    score_threshold: float | UnsetType | None = UNSET
    weights: RetrievalWeights | UnsetType | None = UNSET
    metadata_filtering_conditions: MetadataFilteringConditions | UnsetType | None = UNSET


class ExternalRetrievalModel(Request):
    """Retrieval settings of an external knowledge base."""

    top_k: int | UnsetType = UNSET
    score_threshold: float | UnsetType = UNSET
    score_threshold_enabled: bool | UnsetType = UNSET


class SummaryIndexSetting(Request):
    enable: bool | UnsetType = UNSET
    model_name: str | UnsetType = UNSET
    model_provider_name: str | UnsetType = UNSET
    summary_prompt: str | UnsetType = UNSET


# --- Datasets ----------------------------------------------------------------------------


class CreateDatasetRequest(Request):
    name: str
    description: str | UnsetType = UNSET
    indexing_technique: IndexingTechnique | UnsetType | None = UNSET
    permission: Permission | UnsetType = UNSET
    provider: Literal["vendor", "external"] | UnsetType = UNSET
    embedding_model: str | UnsetType = UNSET
    embedding_model_provider: str | UnsetType = UNSET
    retrieval_model: RetrievalModel | UnsetType = UNSET
    external_knowledge_api_id: str | UnsetType = UNSET
    external_knowledge_id: str | UnsetType = UNSET
    summary_index_setting: SummaryIndexSetting | UnsetType | None = UNSET


class ListDatasetsRequest(Request):
    page: int | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    keyword: str | UnsetType = UNSET
    include_all: bool | UnsetType = UNSET
    tag_ids: list[Uuid] | UnsetType = UNSET


class DatasetIdRequest(Request):
    dataset_id: Uuid


class PartialMember(Request):
    """A team member given access when ``permission`` is ``partial_members``."""

    user_id: str | UnsetType = UNSET


class UpdateDatasetRequest(Request):
    """Change a knowledge base; only the fields given are changed."""

    dataset_id: Uuid
    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    indexing_technique: IndexingTechnique | UnsetType | None = UNSET
    permission: Permission | UnsetType = UNSET
    embedding_model: str | UnsetType = UNSET
    embedding_model_provider: str | UnsetType = UNSET
    retrieval_model: RetrievalModel | UnsetType = UNSET
    partial_member_list: list[PartialMember] | UnsetType = UNSET
    external_retrieval_model: ExternalRetrievalModel | UnsetType = UNSET
    external_knowledge_id: str | UnsetType = UNSET
    external_knowledge_api_id: str | UnsetType = UNSET


class RetrieveRequest(Request):
    """Search a knowledge base (``query`` is at most 250 characters)."""

    dataset_id: Uuid
    query: str
    retrieval_model: RetrievalModel | UnsetType = UNSET
    attachment_ids: list[str] | UnsetType | None = UNSET
    external_retrieval_model: ExternalRetrievalModel | UnsetType = UNSET


class RerankingModelInfo(Model):
    reranking_provider_name: str | None = None
    reranking_model_name: str | None = None


class RetrievalModelInfo(Model):
    """A knowledge base's retrieval settings as the server reports them."""

    search_method: str | None = None
    reranking_enable: bool | None = None
    reranking_mode: str | None = None
    reranking_model: RerankingModelInfo | None = None
    weights: dict[str, Any] | None = None
    top_k: int | None = None
    score_threshold_enabled: bool | None = None
    score_threshold: float | None = None
    metadata_filtering_conditions: dict[str, Any] | None = None


class KnowledgeTag(Model):
    """A knowledge-base tag; ``binding_count`` comes as a string."""

    id: str | None = None
    name: str | None = None
    type: str | None = None
    binding_count: str | int | None = None


class MetadataField(Model):
    """A metadata field of a knowledge base (custom or built-in)."""

    id: str | None = None
    name: str | None = None
    type: str | None = None
    count: int | None = None


class Dataset(Model):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    provider: str | None = None
    permission: str | None = None
    data_source_type: str | None = None
    indexing_technique: str | None = None
    app_count: int | None = None
    document_count: int | None = None
    word_count: int | None = None
    created_by: str | None = None
    author_name: str | None = None
    created_at: int | float | None = None
    updated_by: str | None = None
    updated_at: int | float | None = None
    embedding_model: str | None = None
    embedding_model_provider: str | None = None
    embedding_available: bool | None = None
    retrieval_model_dict: RetrievalModelInfo | None = None
    summary_index_setting: dict[str, Any] | None = None
    tags: list[KnowledgeTag] | None = None
    doc_form: str | None = None
    external_knowledge_info: dict[str, Any] | None = None
    external_retrieval_model: dict[str, Any] | None = None
    doc_metadata: list[MetadataField] | None = None
    built_in_field_enabled: bool | None = None
    pipeline_id: str | None = None
    runtime_mode: str | None = None
    chunk_structure: str | None = None
    icon_info: dict[str, Any] | None = None
    is_published: bool | None = None
    total_documents: int | None = None
    total_available_documents: int | None = None
    enable_api: bool | None = None
    is_multimodal: bool | None = None
    maintainer: str | None = None
    partial_member_list: list[str] | None = None


class DatasetList(Page):
    data: list[Dataset] = []


class RetrieveQuery(Model):
    content: str | None = None


class RetrievedDocument(Model):
    id: str | None = None
    data_source_type: str | None = None
    name: str | None = None
    doc_type: str | None = None
    doc_metadata: dict[str, Any] | None = None


class RetrievedChildChunk(Model):
    id: str | None = None
    content: str | None = None
    position: int | None = None
    score: float | None = None


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


# --- Tags --------------------------------------------------------------------------------


class CreateTagRequest(Request):
    name: str


class UpdateTagRequest(Request):
    tag_id: str
    name: str


class DeleteTagRequest(Request):
    tag_id: str


class BindTagsRequest(Request):
    """Bind tags to the knowledge base ``target_id``."""

    tag_ids: list[Uuid]
    target_id: str


class UnbindTagsRequest(Request):
    """Unbind tags from the knowledge base ``target_id``; ``tag_id`` is the legacy single form."""

    target_id: str
    tag_ids: list[Uuid] | UnsetType = UNSET
    tag_id: str | UnsetType = UNSET


class DatasetTags(Model):
    data: list[KnowledgeTag] = []
    total: int | None = None


# --- Metadata ----------------------------------------------------------------------------


class CreateMetadataFieldRequest(Request):
    dataset_id: Uuid
    type: Literal["string", "number", "time"]
    name: str


class UpdateMetadataFieldRequest(Request):
    dataset_id: Uuid
    metadata_id: Uuid
    name: str


class MetadataFieldIdRequest(Request):
    dataset_id: Uuid
    metadata_id: Uuid


class UpdateBuiltInMetadataRequest(Request):
    dataset_id: Uuid
    action: Literal["enable", "disable"]


class DocumentMetadataValue(Request):
    """A value for the metadata field ``id``: a string, a number or ``None``."""

    id: str
    name: str
    value: str | int | float | UnsetType | None = UNSET


class DocumentMetadataOperation(Request):
    """The metadata to set on one document; ``partial_update`` keeps the fields not given."""

    document_id: Uuid
    metadata_list: list[DocumentMetadataValue]
    partial_update: bool | UnsetType = UNSET


class UpdateDocumentMetadataRequest(Request):
    dataset_id: Uuid
    operation_data: list[DocumentMetadataOperation]


class MetadataFieldList(Model):
    doc_metadata: list[MetadataField] = []
    built_in_field_enabled: bool | None = None


class BuiltInMetadataFields(Model):
    fields: list[MetadataField] = []


# --- Models ------------------------------------------------------------------------------


class ListModelsRequest(Request):
    model_type: Literal["text-embedding", "rerank", "llm", "tts", "speech2text", "moderation"]


class I18nText(Model):
    """A text in several languages."""

    en_US: str | None = None
    zh_Hans: str | None = None


class ProviderModel(Model):
    """A model of a provider; ``model`` is the name to configure (``embedding_model``, ...)."""

    model: str | None = None
    label: I18nText | None = None
    model_type: str | None = None
    features: list[str] | None = None
    fetch_from: str | None = None
    model_properties: dict[str, Any] | None = None
    status: str | None = None
    deprecated: bool | None = None
    load_balancing_enabled: bool | None = None
    has_invalid_load_balancing_configs: bool | None = None


class ModelProvider(Model):
    """A model provider (``organization/plugin/provider``) and its available models."""

    provider: str | None = None
    label: I18nText | None = None
    icon_small: I18nText | None = None
    icon_small_dark: I18nText | None = None
    status: str | None = None
    models: list[ProviderModel] = []
    tenant_id: str | None = None


class AvailableModels(Model):
    data: list[ModelProvider] = []


# --- Knowledge pipeline ------------------------------------------------------------------


class PipelineFileUploadRequest(Request):
    """Upload a file; its ``id`` is the ``reference`` of a ``local_file`` datasource."""

    file: FileInput


class PipelineFile(Model):
    """An uploaded pipeline file; ``created_at`` is an ISO 8601 string."""

    id: str | None = None
    name: str | None = None
    size: int | None = None
    extension: str | None = None
    mime_type: str | None = None
    created_by: str | None = None
    created_at: str | None = None


class ListDatasourcePluginsRequest(Request):
    """``is_published`` (default true) reads the published pipeline rather than the draft."""

    dataset_id: Uuid
    is_published: bool | UnsetType = UNSET


class DatasourceCredential(Model):
    id: str | None = None
    name: str | None = None
    type: str | None = None
    is_default: bool | None = None


class DatasourcePlugin(Model):
    """A datasource node of the pipeline: pass ``node_id`` to run it or to start a run there."""

    node_id: str | None = None
    plugin_id: str | None = None
    provider_name: str | None = None
    datasource_type: str | None = None
    title: str | None = None
    user_input_variables: list[dict[str, Any]] = []
    credentials: list[DatasourceCredential] = []


class RunDatasourceNodeRequest(Request):
    """Run one datasource node; it always answers with a stream of datasource events."""

    dataset_id: Uuid
    node_id: str
    inputs: dict[str, Any]
    datasource_type: DatasourceType
    is_published: bool
    credential_id: str | UnsetType | None = UNSET


class LocalFileDatasource(Request):
    """A ``local_file`` item: ``reference`` is the id of an uploaded pipeline file."""

    reference: str
    name: str | UnsetType = UNSET


class OnlineDocumentPage(Request):
    page_id: str
    type: str
    page_name: str | UnsetType = UNSET


class OnlineDocumentDatasource(Request):
    """An ``online_document`` item (a Notion page, for example)."""

    workspace_id: str
    page: OnlineDocumentPage
    credential_id: str | UnsetType = UNSET


class WebsiteCrawlDatasource(Request):
    """A ``website_crawl`` item; ``title`` becomes the document name."""

    url: str
    title: str | UnsetType = UNSET


class OnlineDriveDatasource(Request):
    """An ``online_drive`` item: a file, or a folder to expand."""

    id: str
    type: Literal["file", "folder"]
    bucket: str | UnsetType = UNSET
    name: str | UnsetType = UNSET


if TYPE_CHECKING:
    #: One item of ``datasource_info_list``; its shape follows ``datasource_type``.
    DatasourceInfo = Union[
        LocalFileDatasource,
        OnlineDocumentDatasource,
        WebsiteCrawlDatasource,
        OnlineDriveDatasource,
        dict[str, Any],
    ]
else:
    # msgspec cannot tell these untagged shapes apart, so at run time the items are
    # taken as they come (structs are encoded to objects like any nested struct). The
    # annotation keeps the alias an object of its own, so generated stubs can name it.
    DatasourceInfo = Annotated[Any, "DatasourceInfo"]


class RunPipelineRequest(Request):
    """Run the knowledge pipeline over ``datasource_info_list`` from ``start_node_id``.

    ``response_mode`` follows the call's ``stream`` argument; leave it unset.
    """

    dataset_id: Uuid
    inputs: dict[str, Any]
    datasource_type: DatasourceType
    datasource_info_list: list[DatasourceInfo]
    start_node_id: str
    is_published: bool
    response_mode: Literal["streaming", "blocking"] | UnsetType = UNSET


class DatasourceProcessingEvent(Event, tag="datasource_processing"):
    """Progress of a datasource node: ``completed`` of ``total`` items."""

    total: int | None = None
    completed: int | None = None


class DatasourceCompletedEvent(Event, tag="datasource_completed"):
    """A batch of datasource results (several may come, one per page of results)."""

    final = True

    data: dict[str, Any] | list[Any] | None = None
    total: int | None = None
    completed: int | None = None
    time_consuming: float | None = None


class DatasourceErrorEvent(Event, tag="datasource_error"):
    """The datasource node failed."""

    raises = ("status", "code", "error")

    error: str | None = None


#: Events of a datasource node run.
DatasourceNodeEvent = Union[
    DatasourceProcessingEvent,
    DatasourceCompletedEvent,
    DatasourceErrorEvent,
    ErrorEvent,
    PingEvent,
]
