"""Completion (text generator) messages: send and stop."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ._base import UNSET, Model, Request, UnsetType
from .common import InputFile, MessageMetadata

__all__ = ["CompletionRequest", "CompletionResponse"]


class CompletionRequest(Request):
    """Send a request to a text generator app.

    ``query`` is a legacy field: newer apps take the text inside ``inputs``.
    ``response_mode`` follows the call's ``stream`` argument; leave it unset.
    """

    user: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    query: str | UnsetType = UNSET
    response_mode: Literal["streaming", "blocking"] | UnsetType = UNSET
    files: list[InputFile] | UnsetType = UNSET


class CompletionResponse(Model):
    """The blocking answer of a completion message."""

    event: str | None = None
    task_id: str | None = None
    id: str | None = None
    message_id: str | None = None
    mode: str | None = None
    answer: str = ""
    metadata: MessageMetadata | None = None
    created_at: int | None = None
