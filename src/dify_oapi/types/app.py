"""App-level operations shared by every app type: info, parameters, files, audio, feedback."""

from __future__ import annotations

from typing import Any, Literal

from ._base import UNSET, FileInput, Model, Request, UnsetType
from .common import Uuid

__all__ = [
    "AppFeedbacks",
    "AppFeedbacksRequest",
    "AppInfo",
    "AppMeta",
    "AppParameters",
    "AudioToTextRequest",
    "AudioToTextResponse",
    "EndUser",
    "EndUserRequest",
    "Feedback",
    "FeedbackRequest",
    "FilePreviewRequest",
    "FileUploadRequest",
    "SiteSettings",
    "TextToAudioRequest",
    "UploadedFile",
]


class AudioToTextRequest(Request):
    """Speech to text: ``file`` is mp3, mp4, mpeg, mpga, m4a, wav or webm (15 MB at most).

    Dify reads only the part's media type, and takes only its own spellings (``audio/mp3``,
    not the ``audio/mpeg`` a path or bytes would otherwise get: 415 unsupported_audio_type);
    give a ``(name, content, type)`` tuple to choose another.
    """

    media_types = {
        "file": {
            ".mp3": "audio/mp3",
            ".mpeg": "audio/mpga",
            ".mpga": "audio/mpga",
            ".m4a": "audio/m4a",
            ".mp4": "audio/m4a",
            ".wav": "audio/wav",
            ".amr": "audio/amr",
            "": "audio/mp3",
        }
    }

    file: FileInput
    user: str | UnsetType = UNSET


class AudioToTextResponse(Model):
    text: str | None = None


class TextToAudioRequest(Request):
    """Text to speech; give ``message_id`` (takes precedence) or ``text``."""

    message_id: Uuid | UnsetType = UNSET
    text: str | UnsetType = UNSET
    user: str | UnsetType = UNSET
    voice: str | UnsetType = UNSET
    streaming: bool | UnsetType = UNSET


class FeedbackRequest(Request):
    """Rate a message: ``like``, ``dislike``, or ``None`` to revoke."""

    message_id: Uuid
    user: str
    rating: Literal["like", "dislike"] | UnsetType | None = UNSET
    content: str | UnsetType = UNSET


class AppFeedbacksRequest(Request):
    page: int | UnsetType = UNSET
    limit: int | UnsetType = UNSET


class Feedback(Model):
    id: str | None = None
    app_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    rating: str | None = None
    content: str | None = None
    from_source: str | None = None
    from_end_user_id: str | None = None
    from_account_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class AppFeedbacks(Model):
    data: list[Feedback] = []


class FileUploadRequest(Request):
    """Upload a file for use in messages or workflow inputs."""

    file: FileInput
    user: str | UnsetType = UNSET


class UploadedFile(Model):
    id: str | None = None
    name: str | None = None
    size: int | None = None
    extension: str | None = None
    mime_type: str | None = None
    created_by: str | None = None
    created_at: int | None = None
    preview_url: str | None = None
    source_url: str | None = None
    original_url: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    conversation_id: str | None = None
    file_key: str | None = None
    reference: str | None = None


class FilePreviewRequest(Request):
    file_id: Uuid
    as_attachment: bool | UnsetType = UNSET
    user: str | UnsetType = UNSET


class EndUserRequest(Request):
    end_user_id: str


class EndUser(Model):
    id: str | None = None
    tenant_id: str | None = None
    app_id: str | None = None
    type: str | None = None
    external_user_id: str | None = None
    name: str | None = None
    is_anonymous: bool | None = None
    session_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class AppInfo(Model):
    name: str | None = None
    description: str | None = None
    tags: list[str] = []
    mode: str | None = None
    author_name: str | None = None


class AppParameters(Model):
    """The app's input form and feature switches.

    ``user_input_form`` items are one-key objects such as ``{"text-input": {...}}``;
    feature blocks stay plain dicts because their keys grow with every Dify release.
    """

    opening_statement: str | None = None
    suggested_questions: list[str] = []
    suggested_questions_after_answer: dict[str, Any] | None = None
    speech_to_text: dict[str, Any] | None = None
    text_to_speech: dict[str, Any] | None = None
    retriever_resource: dict[str, Any] | None = None
    annotation_reply: dict[str, Any] | None = None
    more_like_this: dict[str, Any] | None = None
    sensitive_word_avoidance: dict[str, Any] | None = None
    user_input_form: list[dict[str, Any]] = []
    file_upload: dict[str, Any] | None = None
    system_parameters: dict[str, Any] | None = None


class AppMeta(Model):
    tool_icons: dict[str, Any] = {}


class SiteSettings(Model):
    title: str | None = None
    chat_color_theme: str | None = None
    chat_color_theme_inverted: bool | None = None
    icon_type: str | None = None
    icon: str | None = None
    icon_background: str | None = None
    icon_url: str | None = None
    description: str | None = None
    copyright: str | None = None
    privacy_policy: str | None = None
    input_placeholder: str | None = None
    custom_disclaimer: str | None = None
    default_language: str | None = None
    show_workflow_steps: bool | None = None
    use_icon_as_answer_icon: bool | None = None
