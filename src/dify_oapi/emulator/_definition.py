"""What an emulated app is: its mode, graph, replies and settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AgentTool", "AppDefinition"]


def _no_observation(arguments: Mapping[str, Any]) -> str:
    return ""


@dataclass(frozen=True)
class AgentTool:
    """A tool an agent-chat app's model calls before it answers, once per answer (as Dify's
    function-calling agent does with a model that always calls its tools).

    ``labels`` are its display names per language (Dify's ``tool_labels``; default the
    name in ``en_US``), ``arguments`` what the model passes it, and ``run(arguments)`` the
    text it gives back (the thought's ``observation``).
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    arguments: Mapping[str, Any] = field(default_factory=dict)
    run: Callable[[Mapping[str, Any]], str] = _no_observation


@dataclass(frozen=True, eq=False)
class AppDefinition:
    """What an emulated app answers with.

    ``mode`` is ``chat``, ``agent-chat``, ``advanced-chat`` (chatflow), ``completion`` or
    ``workflow``; with ``None`` every app route works and chat answers like a chat app.
    ``replies`` are the answers in order (then echoes), or a function ``(query, inputs) ->
    answer``; ``outputs`` computes a workflow run's outputs from its inputs (default
    ``{"text": answer}``). ``variables`` are the conversation variables each new
    conversation starts with (dicts with ``name``, ``value_type``, ``value``,
    ``description``). ``follow_ups`` are the suggested questions after an answer, given
    only with ``suggested_questions_after_answer=True``: the feature is off in a fresh Dify
    app, which answers 400 ``bad_request`` "Suggested Questions Is Disabled." (``/parameters``
    reports the switch).
    ``parameters`` and ``site`` override keys of those answers. ``nodes`` are the node
    types of a workflow or chatflow graph, in order (default ``start, end`` for a workflow,
    ``start, llm, answer`` for a chatflow); the answer streams inside the first ``llm``
    node, or before the nodes when there is none. ``max_concurrent_requests`` caps the
    app's generations in flight (Dify's ``max_active_requests``; 0: no cap): past it a send
    or run answers 429 ``too_many_requests`` before anything is created; a slot is held
    until a blocking answer is made or a stream ends or is closed.

    What the nodes report, as Dify's do: an ``llm`` node names ``model_provider`` and
    ``model_name``, its prompts (``system_prompt`` when set, then the query) and usage; an
    ``http-request`` node the request it sent to ``http_url``. An agent-chat app calls its
    ``tools`` (:class:`AgentTool`) in a first round of thoughts, then answers in a second.

    Failures, as Dify reports them: ``fail_after=n`` makes the model fail after ``n``
    answer words (chat types: an ``error`` event ``completion_request_error``, blocking
    400; in a graph, the LLM node fails); ``failing_node`` names a node type of ``nodes``
    that fails (an ``http-request`` node, say). A failed run ends with a failed
    ``node_finished`` and ``workflow_finished`` (``exceptions_count`` 1) and no
    ``message_end``; blocking, a workflow answers 200 with ``status: "failed"`` and a
    chatflow 400 ``invalid_param`` "Run failed: ...". ``failure`` is the error text. An
    ``outputs`` or ``replies`` function that raises fails the run the same way (a chat
    answer gets Dify's 500 ``unknown``).
    """

    name: str = "Emulated app"
    mode: str | None = None
    description: str = "An app served by the dify-oapi emulator."
    tags: Sequence[str] = ()
    author_name: str = "dify-oapi"
    opening_statement: str | None = None
    suggested_questions: Sequence[str] = ()
    suggested_questions_after_answer: bool = False
    follow_ups: Sequence[str] = (
        "Can you tell me more?",
        "Why is that?",
        "What should I do next?",
    )
    user_input_form: Sequence[Mapping[str, Any]] = ()
    variables: Sequence[Mapping[str, Any]] = ()
    replies: Sequence[str] | Callable[[str, dict[str, Any]], str] | None = None
    outputs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    site: Mapping[str, Any] = field(default_factory=dict)
    nodes: Sequence[str] = ()
    max_concurrent_requests: int = 0
    fail_after: int | None = None
    failing_node: str | None = None
    failure: str = "Emulated failure"
    model_provider: str = "dify-oapi/emulator/emulator"
    model_name: str = "emulated-chat"
    system_prompt: str = ""
    http_url: str = "http://127.0.0.1/"
    tools: Sequence[AgentTool] = ()
