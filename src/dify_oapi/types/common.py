"""Structs shared by several services: usage, retriever resources, file references."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ._base import UNSET, Model, Request, UnsetType, constrained

__all__ = [
    "InputFile",
    "Page",
    "MessageMetadata",
    "RetrieverResource",
    "SimpleResult",
    "Usage",
    "UserRequest",
]


_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: An id the server parses as a UUID (a route converter or a UUID field): anything else is
#: refused before sending, where Dify would answer 404 HTML, 400 or 500 (retried on a GET).
Uuid = Annotated[str, constrained(f"^{_UUID}$", "a UUID")]
#: A UUID, or ``""`` where the server reads an empty id as none given.
UuidOrEmpty = Annotated[str, constrained(f"^(?:{_UUID})?$", 'a UUID or ""')]


class Usage(Model):
    """Token counts and prices of one generation."""

    prompt_tokens: int | None = None
    prompt_unit_price: str | None = None
    prompt_price_unit: str | None = None
    prompt_price: str | None = None
    completion_tokens: int | None = None
    completion_unit_price: str | None = None
    completion_price_unit: str | None = None
    completion_price: str | None = None
    total_tokens: int | None = None
    total_price: str | None = None
    currency: str | None = None
    latency: float | None = None
    # Seconds; null from chat, completion and agent apps, floats from chatflows.
    time_to_first_token: float | None = None
    time_to_generate: float | None = None


class RetrieverResource(Model):
    """A knowledge-base chunk that an answer cited."""

    id: str | None = None
    message_id: str | None = None
    position: int | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    document_id: str | None = None
    document_name: str | None = None
    data_source_type: str | None = None
    segment_id: str | None = None
    score: float | None = None
    hit_count: int | None = None
    word_count: int | None = None
    segment_position: int | None = None
    index_node_hash: str | None = None
    content: str | None = None
    summary: str | None = None
    created_at: int | None = None


class MessageMetadata(Model):
    """``metadata`` of a finished message: usage and cited resources."""

    usage: Usage | None = None
    retriever_resources: list[RetrieverResource] | None = None
    annotation_reply: dict[str, Any] | None = None


class Page(Model):
    """Paging fields of a list answer; each list adds its ``data`` items."""

    has_more: bool | None = None
    limit: int | None = None
    total: int | None = None
    page: int | None = None


class SimpleResult(Model):
    """The ``{"result": "success"}`` answer of many write operations."""

    result: str | None = None


class InputFile(Request):
    """A file attached to a message or workflow input: a URL or an uploaded file id."""

    type: Literal["image", "document", "audio", "video", "custom"]
    transfer_method: Literal["remote_url", "local_file"]
    url: str | UnsetType = UNSET
    upload_file_id: str | UnsetType = UNSET


class UserRequest(Request):
    """A request whose only field is the end-user id ``user``."""

    user: str
