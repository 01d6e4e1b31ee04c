"""Conversations: list, message history, variables, rename, delete."""

from __future__ import annotations

from typing import Any, Literal

from ._base import UNSET, Model, Request, UnsetType
from .common import RetrieverResource, Uuid
from .workflow import HumanInputContent

__all__ = [
    "AgentThought",
    "Conversation",
    "ConversationList",
    "ConversationMessage",
    "ConversationVariable",
    "ConversationVariableList",
    "DeleteConversationRequest",
    "ListConversationVariablesRequest",
    "ListConversationsRequest",
    "ListMessagesRequest",
    "MessageFeedback",
    "MessageFile",
    "MessageList",
    "RenameConversationRequest",
    "UpdateConversationVariableRequest",
]


class ListConversationsRequest(Request):
    """List the user's conversations; page on with ``last_id`` (the last item's id)."""

    user: str | UnsetType = UNSET
    last_id: str | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    sort_by: Literal["created_at", "-created_at", "updated_at", "-updated_at"] | UnsetType = UNSET


class Conversation(Model):
    id: str | None = None
    name: str | None = None
    inputs: dict[str, Any] | None = None
    status: str | None = None
    introduction: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class ConversationList(Model):
    limit: int | None = None
    has_more: bool | None = None
    data: list[Conversation] = []


class ListMessagesRequest(Request):
    """A conversation's messages, newest page first; page back with ``first_id``."""

    conversation_id: Uuid
    user: str | UnsetType = UNSET
    first_id: str | UnsetType = UNSET
    limit: int | UnsetType = UNSET


class MessageFile(Model):
    id: str | None = None
    filename: str | None = None
    type: str | None = None
    url: str | None = None
    mime_type: str | None = None
    size: int | None = None
    transfer_method: str | None = None
    belongs_to: str | None = None
    upload_file_id: str | None = None


class MessageFeedback(Model):
    rating: str | None = None


class AgentThought(Model):
    """One reasoning or tool-call step an agent recorded for a message."""

    id: str | None = None
    chain_id: str | None = None
    message_id: str | None = None
    position: int | None = None
    thought: str | None = None
    tool: str | None = None
    tool_labels: dict[str, Any] | None = None
    tool_input: str | None = None
    observation: str | None = None
    files: list[str] = []
    created_at: int | None = None


class ConversationMessage(Model):
    """One exchange of a conversation: the user's ``query`` and the ``answer``."""

    id: str | None = None
    conversation_id: str | None = None
    parent_message_id: str | None = None
    inputs: dict[str, Any] | None = None
    query: str | None = None
    answer: str | None = None
    status: str | None = None
    error: str | None = None
    message_files: list[MessageFile] = []
    feedback: MessageFeedback | None = None
    retriever_resources: list[RetrieverResource] = []
    agent_thoughts: list[AgentThought] = []
    created_at: int | None = None
    extra_contents: list[HumanInputContent] = []
    message_tokens: int | None = None
    answer_tokens: int | None = None
    total_tokens: int | None = None
    provider_response_latency: float | None = None
    total_price: str | None = None
    currency: str | None = None


class MessageList(Model):
    limit: int | None = None
    has_more: bool | None = None
    data: list[ConversationMessage] = []


class ListConversationVariablesRequest(Request):
    """A conversation's variables; page on with ``last_id``, filter by ``variable_name``."""

    conversation_id: Uuid
    user: str | UnsetType = UNSET
    last_id: str | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    variable_name: str | UnsetType = UNSET


class ConversationVariable(Model):
    """A conversation variable; ``value`` may be a JSON string for complex types."""

    id: str | None = None
    name: str | None = None
    value_type: str | None = None
    value: Any = None
    description: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class ConversationVariableList(Model):
    limit: int | None = None
    has_more: bool | None = None
    data: list[ConversationVariable] = []


class UpdateConversationVariableRequest(Request):
    """Set a variable's value; it must match the variable's ``value_type``."""

    conversation_id: Uuid
    variable_id: str
    value: Any
    user: str | UnsetType = UNSET


class RenameConversationRequest(Request):
    """Rename a conversation, or let the server name it with ``auto_generate=True``."""

    conversation_id: Uuid
    name: str | UnsetType = UNSET
    auto_generate: bool | UnsetType = UNSET
    user: str | UnsetType = UNSET


class DeleteConversationRequest(Request):
    conversation_id: Uuid
    user: str | UnsetType = UNSET
