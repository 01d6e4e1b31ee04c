"""Knowledge-base tags and metadata fields."""

from __future__ import annotations

from typing import Literal

from ._base import UNSET, Model, Request, UnsetType
from .common import Uuid
from .datasets import KnowledgeTag, MetadataField

__all__ = [
    "BindTagsRequest",
    "BuiltInMetadataFields",
    "CreateMetadataFieldRequest",
    "CreateTagRequest",
    "DatasetTags",
    "DeleteTagRequest",
    "DocumentMetadataOperation",
    "DocumentMetadataValue",
    "MetadataFieldIdRequest",
    "MetadataFieldList",
    "UnbindTagsRequest",
    "UpdateBuiltInMetadataRequest",
    "UpdateDocumentMetadataRequest",
    "UpdateMetadataFieldRequest",
    "UpdateTagRequest",
]


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
