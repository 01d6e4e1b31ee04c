"""Annotations: curated question-answer pairs and the annotation-reply switch."""

from __future__ import annotations

from typing import Literal

from ._base import UNSET, Model, Request, UnsetType
from .common import Page, Uuid

__all__ = [
    "Annotation",
    "AnnotationList",
    "AnnotationReplyJob",
    "AnnotationReplyJobStatus",
    "AnnotationReplyRequest",
    "AnnotationReplyStatusRequest",
    "CreateAnnotationRequest",
    "DeleteAnnotationRequest",
    "ListAnnotationsRequest",
    "UpdateAnnotationRequest",
]


class ListAnnotationsRequest(Request):
    """List annotations; ``keyword`` filters on question or answer text."""

    page: int | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    keyword: str | UnsetType = UNSET


class CreateAnnotationRequest(Request):
    question: str
    answer: str


class UpdateAnnotationRequest(Request):
    annotation_id: Uuid
    question: str
    answer: str


class DeleteAnnotationRequest(Request):
    annotation_id: Uuid


class AnnotationReplyRequest(Request):
    """Enable or disable annotation reply; the server wants all settings even for ``disable``."""

    action: Literal["enable", "disable"]
    score_threshold: float
    embedding_provider_name: str
    embedding_model_name: str


class AnnotationReplyStatusRequest(Request):
    """Poll an annotation-reply job; ``action`` must match the one that started it."""

    action: Literal["enable", "disable"]
    job_id: str


class Annotation(Model):
    id: str | None = None
    question: str | None = None
    answer: str | None = None
    hit_count: int | None = None
    created_at: int | None = None


class AnnotationList(Page):
    data: list[Annotation] = []


class AnnotationReplyJob(Model):
    """The job that applies an annotation-reply change (``waiting`` or ``processing``)."""

    job_id: str | None = None
    job_status: str | None = None


class AnnotationReplyJobStatus(AnnotationReplyJob):
    """A job's progress: ``waiting``, ``processing``, ``completed`` or ``error``."""

    error_msg: str | None = None
