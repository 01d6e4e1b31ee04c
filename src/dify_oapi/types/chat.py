"""Chat and chatflow messages: send, stop, suggested questions."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ._base import UNSET, Model, Request, UnsetType
from .common import InputFile, MessageMetadata, Uuid, UuidOrEmpty

__all__ = ["ChatRequest", "ChatResponse", "StopRequest", "SuggestedQuestions", "SuggestedRequest"]


class ChatRequest(Request):
    """Send a message to a chat, agent or chatflow app.

    ``response_mode`` follows the call's ``stream`` argument; leave it unset.
    """

    query: str
    user: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    response_mode: Literal["streaming", "blocking"] | UnsetType = UNSET
    conversation_id: UuidOrEmpty | UnsetType = UNSET
    files: list[InputFile] | UnsetType = UNSET
    auto_generate_name: bool | UnsetType = UNSET
    workflow_id: str | UnsetType = UNSET


class ChatResponse(Model):
    """The blocking answer of a chat message."""

    event: str | None = None
    task_id: str | None = None
    id: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    mode: str | None = None
    answer: str = ""
    metadata: MessageMetadata | None = None
    created_at: int | None = None
    # A chatflow's blocking answer that paused (on human input) instead of finishing.
    workflow_run_id: str | None = None
    status: str | None = None
    paused_nodes: list[str] | None = None
    reasons: list[dict[str, Any]] | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None


class StopRequest(Request):
    """Stop a streaming generation; ``user`` must match the one that started it."""

    task_id: str
    user: str


class SuggestedRequest(Request):
    message_id: Uuid
    user: str


class SuggestedQuestions(Model):
    result: str | None = None
    data: list[str] = []
