"""Workflow runs (run, detail, logs, re-attach) and human-input forms."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ._base import UNSET, Model, Request, UnsetType
from .app import EndUser
from .common import InputFile, Page, Uuid
from .events import WorkflowFinishedData

__all__ = [
    "GetWorkflowRunRequest",
    "HumanInputAction",
    "HumanInputContent",
    "HumanInputField",
    "HumanInputForm",
    "HumanInputFormDefinition",
    "HumanInputFormRequest",
    "HumanInputSubmission",
    "HumanInputValueSource",
    "ListWorkflowLogsRequest",
    "SubmitHumanInputFormRequest",
    "WorkflowEventsRequest",
    "WorkflowLog",
    "WorkflowLogAccount",
    "WorkflowLogList",
    "WorkflowRunByIdRequest",
    "WorkflowRunDetail",
    "WorkflowRunRequest",
    "WorkflowRunResponse",
    "WorkflowRunSummary",
]


class WorkflowRunRequest(Request):
    """Run the app's published workflow.

    ``inputs`` values may be strings, numbers, booleans, objects or lists of file objects
    (``InputFile`` structs or dicts). ``response_mode`` follows the call's ``stream`` argument;
    leave it unset.
    """

    user: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    response_mode: Literal["streaming", "blocking"] | UnsetType = UNSET
    files: list[InputFile] | UnsetType = UNSET


class WorkflowRunByIdRequest(WorkflowRunRequest, kw_only=True):
    """Run one specific published version of the workflow, by its ``workflow_id``."""

    workflow_id: Uuid


class WorkflowRunResponse(Model):
    """The blocking answer of a workflow run."""

    task_id: str | None = None
    workflow_run_id: str | None = None
    data: WorkflowFinishedData | None = None


class GetWorkflowRunRequest(Request):
    workflow_run_id: Uuid


class WorkflowRunDetail(Model):
    """One workflow run; ``inputs`` (and sometimes ``outputs``) may arrive as a JSON string."""

    id: str | None = None
    workflow_id: str | None = None
    status: str | None = None
    inputs: dict[str, Any] | str | None = None
    outputs: dict[str, Any] | str | None = None
    error: str | None = None
    total_steps: int | None = None
    total_tokens: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    elapsed_time: float | None = None


class ListWorkflowLogsRequest(Request):
    """List past runs; ``created_at__before``/``__after`` are ISO 8601 date-times."""

    keyword: str | UnsetType = UNSET
    status: Literal["succeeded", "failed", "stopped"] | UnsetType = UNSET
    page: int | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    created_at__before: str | UnsetType = UNSET
    created_at__after: str | UnsetType = UNSET
    created_by_end_user_session_id: str | UnsetType = UNSET
    created_by_account: str | UnsetType = UNSET


class WorkflowRunSummary(Model):
    id: str | None = None
    version: str | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    exceptions_count: int | None = None
    triggered_from: str | None = None


class WorkflowLogAccount(Model):
    """The console account that started a run."""

    id: str | None = None
    name: str | None = None
    email: str | None = None


class WorkflowLog(Model):
    id: str | None = None
    workflow_run: WorkflowRunSummary | None = None
    created_from: str | None = None
    created_by_role: str | None = None
    created_by_account: WorkflowLogAccount | None = None
    created_by_end_user: EndUser | None = None
    created_at: int | None = None
    details: dict[str, Any] | None = None


class WorkflowLogList(Page):
    data: list[WorkflowLog] = []


class WorkflowEventsRequest(Request):
    """Re-attach to a run's event stream.

    ``include_state_snapshot`` replays the nodes already executed; ``continue_on_pause``
    keeps the stream open across human-input pauses.
    """

    workflow_run_id: Uuid
    user: str
    include_state_snapshot: bool | UnsetType = UNSET
    continue_on_pause: bool | UnsetType = UNSET


class HumanInputValueSource(Model):
    """Where a form field's default value or options come from: a constant or a variable."""

    type: str | None = None
    selector: list[str] = []
    value: Any = None


class HumanInputField(Model):
    """One field of a human-input form (``paragraph``, ``select``, ``file``, ``file-list``...)."""

    type: str | None = None
    output_variable_name: str | None = None
    default: HumanInputValueSource | None = None
    option_source: HumanInputValueSource | None = None
    allowed_file_types: list[str] = []
    allowed_file_extensions: list[str] = []
    allowed_file_upload_methods: list[str] = []
    number_limits: int | None = None


class HumanInputAction(Model):
    """A button of a human-input form; submit its ``id`` as the ``action``."""

    id: str | None = None
    title: str | None = None
    button_style: str | None = None


class HumanInputFormDefinition(Model):
    form_id: str | None = None
    node_id: str | None = None
    node_title: str | None = None
    form_content: str | None = None
    inputs: list[HumanInputField] = []
    actions: list[HumanInputAction] = []
    display_in_ui: bool | None = None
    form_token: str | None = None
    resolved_default_values: dict[str, Any] | None = None
    expiration_time: int | None = None


class HumanInputSubmission(Model):
    """What a recipient submitted on a human-input form."""

    node_id: str | None = None
    node_title: str | None = None
    rendered_content: str | None = None
    action_id: str | None = None
    action_text: str | None = None
    submitted_data: dict[str, Any] | None = None


class HumanInputContent(Model):
    """A human-input form attached to a message (its definition, and the answer if submitted)."""

    workflow_run_id: str | None = None
    submitted: bool | None = None
    type: str | None = None
    form_definition: HumanInputFormDefinition | None = None
    form_submission_data: HumanInputSubmission | None = None


class HumanInputFormRequest(Request):
    """A paused form, by the ``form_token`` of its ``human_input_required`` event."""

    form_token: str


class HumanInputForm(Model):
    form_content: str | None = None
    inputs: list[HumanInputField] = []
    resolved_default_values: dict[str, Any] | None = None
    user_actions: list[HumanInputAction] = []
    expiration_time: int | None = None


class SubmitHumanInputFormRequest(Request):
    """Answer a human-input form: field values by ``output_variable_name`` and an action id."""

    form_token: str
    inputs: dict[str, Any]
    action: str
    user: str
