"""Knowledge-base models, the knowledge pipeline and its datasource events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from ._base import UNSET, FileInput, Model, Request, UnsetType
from .common import Uuid
from .datasets import DatasourceType
from .events import ErrorEvent, Event, PingEvent

__all__ = [
    "DatasourceInfo",
    "AvailableModels",
    "DatasourceCompletedEvent",
    "DatasourceCredential",
    "DatasourceErrorEvent",
    "DatasourceNodeEvent",
    "DatasourcePlugin",
    "DatasourceProcessingEvent",
    "I18nText",
    "ListDatasourcePluginsRequest",
    "ListModelsRequest",
    "LocalFileDatasource",
    "ModelProvider",
    "OnlineDocumentDatasource",
    "OnlineDocumentPage",
    "OnlineDriveDatasource",
    "PipelineFile",
    "PipelineFileUploadRequest",
    "ProviderModel",
    "RunDatasourceNodeRequest",
    "RunPipelineRequest",
    "WebsiteCrawlDatasource",
]


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
