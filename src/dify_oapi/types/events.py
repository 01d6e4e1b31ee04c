"""Streamed events of chat, chatflow, completion and workflow runs.

Each event is decoded on its JSON ``event`` field (not the SSE ``event:`` line). Every event
carries the ids a caller needs to stop or continue the run; fields the server may omit are
optional so newer servers still decode. An event type this SDK does not know arrives as
:class:`UnknownEvent`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

from ._base import Model
from .common import MessageMetadata

#: A workflow or node event's identity, for dropping what a re-attached stream replays.
_NODE_KEY = ("data.id", "data.index", "data.retry_index")

__all__ = [
    "RunIds",
    "AgentLogData",
    "AgentLogEvent",
    "AgentMessageEvent",
    "AgentThoughtEvent",
    "ChatEvent",
    "CompletionEvent",
    "ErrorEvent",
    "Event",
    "HumanInputFormFilledData",
    "HumanInputFormFilledEvent",
    "HumanInputFormTimeoutData",
    "HumanInputFormTimeoutEvent",
    "HumanInputRequiredData",
    "HumanInputRequiredEvent",
    "IterationCompletedEvent",
    "IterationNextEvent",
    "IterationStartedEvent",
    "LoopCompletedEvent",
    "LoopNextEvent",
    "LoopStartedEvent",
    "MessageEndEvent",
    "MessageEvent",
    "MessageFileEvent",
    "MessageReplaceEvent",
    "NodeFinishedEvent",
    "NodeGroupCompletedData",
    "NodeGroupNextData",
    "NodeGroupStartedData",
    "NodeRetryEvent",
    "NodeRunData",
    "NodeStartedEvent",
    "PingEvent",
    "ReasoningChunkData",
    "ReasoningChunkEvent",
    "TextChunkData",
    "TextChunkEvent",
    "TextReplaceData",
    "TextReplaceEvent",
    "TtsMessageEndEvent",
    "TtsMessageEvent",
    "UnknownEvent",
    "WorkflowEvent",
    "WorkflowFinishedData",
    "WorkflowFinishedEvent",
    "WorkflowPausedData",
    "WorkflowPausedEvent",
    "WorkflowStartedData",
    "WorkflowStartedEvent",
]


class RunIds:
    """Typed views of the ids a stream remembers (see :attr:`Event.ids`).

    Mixed into :class:`~dify_oapi.StreamState` and the stream classes, which keep the ids
    in a dict; ``None`` until an event carried the id.
    """

    __slots__ = ()

    def _id(self, name: str) -> str | None:
        raise NotImplementedError

    @property
    def task_id(self) -> str | None:
        """The generation's task id: stop it with the service's ``stop``."""
        return self._id("task_id")

    @property
    def message_id(self) -> str | None:
        return self._id("message_id")

    @property
    def conversation_id(self) -> str | None:
        """Pass it to the next message to continue the conversation."""
        return self._id("conversation_id")

    @property
    def workflow_run_id(self) -> str | None:
        """Re-attach to the run with ``stream.resume()`` or look it up with ``get_run``."""
        return self._id("workflow_run_id")


class Event(Model, tag_field="event"):
    """Fields every event may carry; which ones are set depends on the app type.

    The class variables are what the generic stream machinery knows about each event type
    (see ``docs/architecture.md``):

    - ``ids``: fields a stream remembers from its events (to stop, continue or re-attach).
    - ``skip``: a keep-alive, not delivered.
    - ``delta``: dotted path of answer text the event adds; ``replaces``: its text replaces
      the answer so far; ``whole_after``: event names whose later text is the whole answer.
    - ``final``: a stream may end after it; ``opens``/``closes``: it starts or ends a run,
      and a stream whose run is open ends only with the final event that closes it.
    - ``raises``: the event reports a failure, and these are the paths of its status, code and
      message: the stream raises it as an APIStatusError.
    - ``failure``: ``(status path, failing values, error path)`` of a run that failed.
    - ``collect``: fields ``collect=True`` copies into the blocking answer; ``sets``: fields
      it sets there.
    - ``replay``: fields that identify the event when a re-attached stream replays it.
    - ``stopped``: ``(status path, value)``: when the failure it reports ends a run this
      client asked to stop, the status is set to this value (what the run's record says).
    """

    ids: ClassVar[tuple[str, ...]] = ("task_id", "message_id", "conversation_id", "workflow_run_id")
    skip: ClassVar[bool] = False
    delta: ClassVar[str] = ""
    replaces: ClassVar[bool] = False
    whole_after: ClassVar[tuple[str, ...]] = ()
    final: ClassVar[bool] = False
    opens: ClassVar[bool] = False
    closes: ClassVar[bool] = False
    raises: ClassVar[tuple[str, str, str] | None] = None
    failure: ClassVar[tuple[str, tuple[str, ...], str] | None] = None
    collect: ClassVar[tuple[str, ...]] = ()
    sets: ClassVar[dict[str, Any]] = {}
    replay: ClassVar[tuple[str, ...]] = ()
    stopped: ClassVar[tuple[str, str] | None] = None

    task_id: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    workflow_run_id: str | None = None
    created_at: int | None = None


class UnknownEvent(Model):
    """An event type this SDK does not know yet: its name and the whole JSON object."""

    ids: ClassVar[tuple[str, ...]] = Event.ids
    skip: ClassVar[bool] = False
    delta: ClassVar[str] = ""
    replaces: ClassVar[bool] = False
    whole_after: ClassVar[tuple[str, ...]] = ()
    final: ClassVar[bool] = False
    opens: ClassVar[bool] = False
    closes: ClassVar[bool] = False
    raises: ClassVar[tuple[str, str, str] | None] = None
    failure: ClassVar[tuple[str, tuple[str, ...], str] | None] = None
    collect: ClassVar[tuple[str, ...]] = ()
    sets: ClassVar[dict[str, Any]] = {}
    replay: ClassVar[tuple[str, ...]] = ()
    stopped: ClassVar[tuple[str, str] | None] = None

    event: str
    raw: dict[str, Any]


class PingEvent(Event, tag="ping"):
    """Keep-alive; streams skip it."""

    skip = True


class MessageEvent(Event, tag="message"):
    """A chunk of the answer (for New Agent apps, one closing chunk with the whole answer)."""

    delta = "answer"

    id: str | None = None
    answer: str = ""
    from_variable_selector: list[str] | None = None


class AgentMessageEvent(Event, tag="agent_message"):
    """A chunk of an agent's answer."""

    delta = "answer"
    # New Agent apps close with one `message` that holds the whole answer.
    whole_after = ("message",)

    id: str | None = None
    answer: str = ""


class AgentThoughtEvent(Event, tag="agent_thought"):
    """A reasoning or tool-call step of an agent."""

    sets = {"mode": "agent-chat"}

    id: str | None = None
    position: int | None = None
    thought: str | None = None
    observation: str | None = None
    tool: str | None = None
    tool_labels: dict[str, Any] | None = None
    tool_input: str | None = None
    message_files: list[str] | None = None


class MessageFileEvent(Event, tag="message_file"):
    """A file the assistant produced."""

    id: str | None = None
    type: str | None = None
    belongs_to: str | None = None
    url: str | None = None


class MessageEndEvent(Event, tag="message_end"):
    """The message finished: usage and cited resources."""

    final = True
    collect = ("id", "metadata", "created_at")

    id: str | None = None
    metadata: MessageMetadata | None = None
    files: list[dict[str, Any]] | None = None


class MessageReplaceEvent(Event, tag="message_replace"):
    """Content moderation replaced the whole answer with ``answer``."""

    delta = "answer"
    replaces = True

    answer: str = ""
    reason: str | None = None


class TtsMessageEvent(Event, tag="tts_message"):
    """A base64 chunk of synthesized speech."""

    audio: str = ""


class TtsMessageEndEvent(Event, tag="tts_message_end"):
    audio: str = ""


class ErrorEvent(Event, tag="error"):
    """An error inside a 200 stream; streams raise it as an :class:`APIStatusError`."""

    raises = ("status", "code", "message")
    final = True

    status: int | None = None
    code: str | None = None
    message: str | None = None


class ReasoningChunkData(Model):
    reasoning: str = ""
    message_id: str | None = None
    node_id: str | None = None
    is_final: bool | None = None


class ReasoningChunkEvent(Event, tag="reasoning_chunk"):
    """A delta of the model's reasoning (LLM nodes with separated reasoning)."""

    data: ReasoningChunkData | None = None


class TextChunkData(Model):
    text: str = ""
    from_variable_selector: list[str] | None = None


class TextChunkEvent(Event, tag="text_chunk"):
    """A chunk of a workflow's streamed text output."""

    delta = "data.text"

    data: TextChunkData | None = None


class TextReplaceData(Model):
    text: str = ""


class TextReplaceEvent(Event, tag="text_replace"):
    """Moderation replaced a workflow's streamed text output so far with ``data.text``."""

    delta = "data.text"
    replaces = True

    data: TextReplaceData | None = None


class WorkflowStartedData(Model):
    id: str | None = None
    workflow_id: str | None = None
    inputs: dict[str, Any] | None = None
    created_at: int | None = None
    reason: str | None = None


class WorkflowStartedEvent(Event, tag="workflow_started"):
    """The run started; a stream that saw it ends with the run's own final event."""

    opens = True
    sets = {"mode": "advanced-chat"}
    replay = _NODE_KEY
    data: WorkflowStartedData | None = None


class WorkflowFinishedData(Model):
    id: str | None = None
    workflow_id: str | None = None
    status: str | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    created_by: dict[str, Any] | None = None
    exceptions_count: int | None = None
    files: list[dict[str, Any]] | None = None
    # Set when a blocking run paused (on human input) instead of finishing.
    paused_nodes: list[str] | None = None
    reasons: list[dict[str, Any]] | None = None


class WorkflowFinishedEvent(Event, tag="workflow_finished"):
    """The run ended; ``data.status`` is ``succeeded``, ``failed``, ``stopped`` or newer."""

    final = True
    closes = True
    failure = ("data.status", ("failed",), "data.error")
    # A run stopped on request streams "failed" ("Aborted: User requested stop"); get_run
    # then says "stopped".
    stopped = ("data.status", "stopped")
    collect = ("data",)
    replay = _NODE_KEY

    data: WorkflowFinishedData | None = None


class NodeRunData(Model):
    """One node execution, as node_started, node_finished and node_retry carry it."""

    id: str | None = None
    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    index: int | None = None
    predecessor_node_id: str | None = None
    inputs: dict[str, Any] | None = None
    inputs_truncated: bool | None = None
    process_data: dict[str, Any] | None = None
    process_data_truncated: bool | None = None
    outputs: dict[str, Any] | None = None
    outputs_truncated: bool | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    execution_metadata: dict[str, Any] | None = None
    created_at: int | None = None
    finished_at: int | None = None
    files: list[dict[str, Any]] | None = None
    extras: dict[str, Any] | None = None
    iteration_id: str | None = None
    loop_id: str | None = None
    retry_index: int | None = None
    # An agent node's strategy (null for other nodes).
    agent_strategy: dict[str, Any] | None = None


class NodeStartedEvent(Event, tag="node_started"):
    replay = _NODE_KEY
    data: NodeRunData | None = None


class NodeFinishedEvent(Event, tag="node_finished"):
    replay = _NODE_KEY
    data: NodeRunData | None = None


class NodeRetryEvent(Event, tag="node_retry"):
    replay = _NODE_KEY
    data: NodeRunData | None = None


class NodeGroupStartedData(Model):
    """Start of an iteration or loop node."""

    id: str | None = None
    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    created_at: int | None = None
    inputs: dict[str, Any] | None = None
    inputs_truncated: bool | None = None
    metadata: dict[str, Any] | None = None
    extras: dict[str, Any] | None = None


class NodeGroupNextData(Model):
    """One round of an iteration or loop node."""

    id: str | None = None
    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    index: int | None = None
    created_at: int | None = None
    pre_loop_output: Any = None
    extras: dict[str, Any] | None = None


class NodeGroupCompletedData(Model):
    """End of an iteration or loop node."""

    id: str | None = None
    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    inputs: dict[str, Any] | None = None
    inputs_truncated: bool | None = None
    outputs: dict[str, Any] | None = None
    outputs_truncated: bool | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    execution_metadata: dict[str, Any] | None = None
    created_at: int | None = None
    finished_at: int | None = None
    extras: dict[str, Any] | None = None
    steps: int | None = None


class IterationStartedEvent(Event, tag="iteration_started"):
    replay = _NODE_KEY
    data: NodeGroupStartedData | None = None


class IterationNextEvent(Event, tag="iteration_next"):
    replay = _NODE_KEY
    data: NodeGroupNextData | None = None


class IterationCompletedEvent(Event, tag="iteration_completed"):
    replay = _NODE_KEY
    data: NodeGroupCompletedData | None = None


class LoopStartedEvent(Event, tag="loop_started"):
    replay = _NODE_KEY
    data: NodeGroupStartedData | None = None


class LoopNextEvent(Event, tag="loop_next"):
    replay = _NODE_KEY
    data: NodeGroupNextData | None = None


class LoopCompletedEvent(Event, tag="loop_completed"):
    replay = _NODE_KEY
    data: NodeGroupCompletedData | None = None


class HumanInputRequiredData(Model):
    form_id: str | None = None
    node_id: str | None = None
    node_title: str | None = None
    form_content: str | None = None
    inputs: list[dict[str, Any]] | None = None
    actions: list[dict[str, Any]] | None = None
    display_in_ui: bool | None = None
    form_token: str | None = None
    resolved_default_values: dict[str, Any] | None = None
    expiration_time: int | None = None


class HumanInputRequiredEvent(Event, tag="human_input_required"):
    """The run waits for a human-input form; it pauses next."""

    data: HumanInputRequiredData | None = None


class HumanInputFormFilledData(Model):
    node_id: str | None = None
    node_title: str | None = None
    rendered_content: str | None = None
    action_id: str | None = None
    action_text: str | None = None
    submitted_data: dict[str, Any] | None = None


class HumanInputFormFilledEvent(Event, tag="human_input_form_filled"):
    data: HumanInputFormFilledData | None = None


class HumanInputFormTimeoutData(Model):
    node_id: str | None = None
    node_title: str | None = None
    expiration_time: int | None = None


class HumanInputFormTimeoutEvent(Event, tag="human_input_form_timeout"):
    data: HumanInputFormTimeoutData | None = None


class WorkflowPausedData(Model):
    workflow_run_id: str | None = None
    paused_nodes: list[str] | None = None
    outputs: dict[str, Any] | None = None
    reasons: list[dict[str, Any]] | None = None
    status: str | None = None
    created_at: int | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None


class WorkflowPausedEvent(Event, tag="workflow_paused"):
    """The run paused (for example on human input); the stream ends here."""

    final = True
    closes = True
    collect = ("data",)

    data: WorkflowPausedData | None = None


class AgentLogData(Model):
    node_execution_id: str | None = None
    id: str | None = None
    label: str | None = None
    parent_id: str | None = None
    error: str | None = None
    status: str | None = None
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    node_id: str | None = None


class AgentLogEvent(Event, tag="agent_log"):
    replay = _NODE_KEY
    data: AgentLogData | None = None


#: Events of workflow runs and of re-attached workflow event streams (23 types).
WorkflowEvent = Union[
    WorkflowStartedEvent,
    WorkflowFinishedEvent,
    NodeStartedEvent,
    NodeFinishedEvent,
    NodeRetryEvent,
    IterationStartedEvent,
    IterationNextEvent,
    IterationCompletedEvent,
    LoopStartedEvent,
    LoopNextEvent,
    LoopCompletedEvent,
    WorkflowPausedEvent,
    HumanInputRequiredEvent,
    HumanInputFormFilledEvent,
    HumanInputFormTimeoutEvent,
    AgentLogEvent,
    ReasoningChunkEvent,
    TextChunkEvent,
    TextReplaceEvent,
    TtsMessageEvent,
    TtsMessageEndEvent,
    ErrorEvent,
    PingEvent,
]

#: Events of chat, agent and chatflow streams (29 types): chatflows stream every workflow
#: event too.
ChatEvent = Union[
    MessageEvent,
    AgentMessageEvent,
    AgentThoughtEvent,
    MessageFileEvent,
    MessageEndEvent,
    MessageReplaceEvent,
    WorkflowEvent,
]

#: Events of completion-message streams (8 types).
CompletionEvent = Union[
    MessageEvent,
    MessageEndEvent,
    MessageFileEvent,
    TtsMessageEvent,
    TtsMessageEndEvent,
    MessageReplaceEvent,
    ErrorEvent,
    PingEvent,
]
