"""Knowledge bases: datasets, retrieval settings and retrieval queries."""

from __future__ import annotations

from typing import Any, Literal

from ._base import UNSET, Model, Request, UnsetType
from .common import Page, Uuid

__all__ = [
    "CreateDatasetRequest",
    "Dataset",
    "DatasetIdRequest",
    "DatasetList",
    "ExternalRetrievalModel",
    "KeywordSetting",
    "KnowledgeTag",
    "ListDatasetsRequest",
    "MetadataCondition",
    "MetadataField",
    "MetadataFilteringConditions",
    "PartialMember",
    "RerankingModel",
    "RerankingModelInfo",
    "RetrievalModel",
    "RetrievalModelInfo",
    "RetrievalWeights",
    "RetrieveQuery",
    "RetrieveRequest",
    "RetrievedChildChunk",
    "RetrievedDocument",
    "SummaryIndexSetting",
    "UpdateDatasetRequest",
    "VectorSetting",
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
