"""The floor's msgspec Structs, written by hand for exactly the benchmark payloads.

Every field the payloads carry, typed as they carry it; the spec's free-form objects
(``inputs``, ``data_source_info``, ``data_source_detail_dict``, node ``outputs``...) are dicts.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec


class ChatRequest(msgspec.Struct):
    query: str
    user: str
    inputs: dict[str, Any]
    response_mode: str


class WorkflowRequest(msgspec.Struct):
    inputs: dict[str, Any]
    user: str
    response_mode: str


class TextToAudioRequest(msgspec.Struct):
    text: str
    user: str


encode = msgspec.json.Encoder().encode


class Usage(msgspec.Struct):
    prompt_tokens: int
    prompt_unit_price: str
    prompt_price_unit: str
    prompt_price: str
    completion_tokens: int
    completion_unit_price: str
    completion_price_unit: str
    completion_price: str
    total_tokens: int
    total_price: str
    currency: str
    latency: float


class RetrieverResource(msgspec.Struct):
    id: str
    message_id: str
    position: int
    dataset_id: str
    dataset_name: str
    document_id: str
    document_name: str
    data_source_type: str
    segment_id: str
    score: float
    hit_count: int
    word_count: int
    segment_position: int
    index_node_hash: str
    content: str
    created_at: int


class Metadata(msgspec.Struct):
    usage: Usage
    retriever_resources: list[RetrieverResource]


class ChatAnswer(msgspec.Struct):
    event: str
    task_id: str
    id: str
    message_id: str
    conversation_id: str
    mode: str
    answer: str
    metadata: Metadata
    created_at: int


# -- chat stream ---------------------------------------------------------------------------


class Message(msgspec.Struct, tag_field="event", tag="message"):
    task_id: str
    message_id: str
    conversation_id: str
    created_at: int
    id: str
    answer: str


class MessageEnd(msgspec.Struct, tag_field="event", tag="message_end"):
    task_id: str
    message_id: str
    conversation_id: str
    created_at: int
    id: str
    metadata: Metadata


ChatEvent = Union[Message, MessageEnd]


# -- workflow stream -----------------------------------------------------------------------


class WorkflowStartedData(msgspec.Struct):
    id: str
    workflow_id: str
    inputs: dict[str, Any]
    created_at: int
    reason: str


class WorkflowStarted(msgspec.Struct, tag_field="event", tag="workflow_started"):
    task_id: str
    workflow_run_id: str
    data: WorkflowStartedData


class NodeData(msgspec.Struct):
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: dict[str, Any] | None
    inputs_truncated: bool
    created_at: int
    extras: dict[str, Any]
    iteration_id: str | None
    loop_id: str | None
    # node_finished only
    process_data: dict[str, Any] | None = None
    process_data_truncated: bool | None = None
    outputs: dict[str, Any] | None = None
    outputs_truncated: bool | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    execution_metadata: dict[str, Any] | None = None
    finished_at: int | None = None
    files: list[dict[str, Any]] | None = None


class NodeStarted(msgspec.Struct, tag_field="event", tag="node_started"):
    task_id: str
    workflow_run_id: str
    data: NodeData


class NodeFinished(msgspec.Struct, tag_field="event", tag="node_finished"):
    task_id: str
    workflow_run_id: str
    data: NodeData


class TextChunkData(msgspec.Struct):
    text: str
    from_variable_selector: list[str]


class TextChunk(msgspec.Struct, tag_field="event", tag="text_chunk"):
    task_id: str
    workflow_run_id: str
    data: TextChunkData


class WorkflowFinishedData(msgspec.Struct):
    id: str
    workflow_id: str
    status: str
    outputs: dict[str, Any]
    error: str | None
    elapsed_time: float
    total_tokens: int
    total_steps: int
    created_at: int
    finished_at: int
    created_by: dict[str, Any]
    exceptions_count: int
    files: list[dict[str, Any]]


class WorkflowFinished(msgspec.Struct, tag_field="event", tag="workflow_finished"):
    task_id: str
    workflow_run_id: str
    data: WorkflowFinishedData


WorkflowEvent = Union[WorkflowStarted, NodeStarted, NodeFinished, TextChunk, WorkflowFinished]


# -- lists ----------------------------------------------------------------------------------


class DocMetadata(msgspec.Struct):
    id: str
    name: str
    type: str
    value: str


class Document(msgspec.Struct):
    id: str
    position: int
    data_source_type: str
    data_source_info: dict[str, Any]
    data_source_detail_dict: dict[str, Any]
    dataset_process_rule_id: str
    name: str
    created_from: str
    created_by: str
    created_at: int
    tokens: int
    indexing_status: str
    error: str | None
    enabled: bool
    disabled_at: int | None
    disabled_by: str | None
    archived: bool
    display_status: str
    word_count: int
    hit_count: int
    doc_form: str
    doc_metadata: list[DocMetadata]
    summary_index_status: str | None
    need_summary: bool


class DocumentList(msgspec.Struct):
    data: list[Document]
    has_more: bool
    limit: int
    total: int
    page: int


class MessageFile(msgspec.Struct):
    id: str
    filename: str
    type: str
    url: str
    mime_type: str
    size: int
    transfer_method: str
    belongs_to: str
    upload_file_id: str


class Feedback(msgspec.Struct):
    rating: str


class HistoryMessage(msgspec.Struct):
    id: str
    conversation_id: str
    parent_message_id: str | None
    inputs: dict[str, Any]
    query: str
    answer: str
    status: str
    error: str | None
    message_files: list[MessageFile]
    feedback: Feedback | None
    retriever_resources: list[RetrieverResource]
    agent_thoughts: list[dict[str, Any]]
    created_at: int
    extra_contents: list[dict[str, Any]]
    message_tokens: int
    answer_tokens: int
    total_tokens: int
    provider_response_latency: float
    total_price: str
    currency: str


class MessageList(msgspec.Struct):
    limit: int
    has_more: bool
    data: list[HistoryMessage]
