"""OpenTelemetry for every call: one span, a W3C ``traceparent`` to Dify, and metrics.

``instrument(client)`` registers four handlers on the client's hooks (a client and its
copies share them); ``uninstrument(client)`` takes them away again. Nothing here is
imported by ``dify_oapi`` itself, and until ``instrument`` is called no handler runs, so a
client that is not instrumented pays nothing for this module existing (extra
``dify-oapi2[otel]``; see ``docs/observability.md``).

The span of a call is named after the operation (``chat.send``) and starts before its first
request; it is a child of the span current at that moment. It ends with the call: for a
blocking call when the answer is decoded, for a stream when its last event arrived, it
failed or it was closed. Each retry is an event on it. What Dify said (its ids, token
usage, latency) is read from the answer or the stream's final event when the span ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._hooks import Hooks, scope
from ._streaming import StreamState
from ._version import __version__
from .types.events import Event

__all__ = ["Instrumentation", "instrument", "uninstrument"]

#: The ids a call's span carries, as the event types declare them (``Event.ids``).
IDS: tuple[str, ...] = Event.ids
#: Token usage, as Dify reports it in a finished message's ``metadata.usage``.
_USAGE = {
    "prompt_tokens": "gen_ai.usage.input_tokens",
    "completion_tokens": "gen_ai.usage.output_tokens",
    "total_tokens": "dify.usage.total_tokens",
    "total_price": "dify.usage.total_price",
    "currency": "dify.usage.currency",
    "latency": "dify.usage.latency",
}
_POINTS = ("before-request", "after-response", "on-retry", "on-end")


class _Call:
    """One call's span and what its handlers learnt so far."""

    __slots__ = ("attempts", "labels", "span", "status")

    def __init__(self, span: Any, labels: dict[str, str]) -> None:
        self.span = span
        self.labels = labels
        self.attempts = 0
        self.status = 0


class Instrumentation:
    """The handlers one :func:`instrument` call registered, and the instruments they use."""

    def __init__(
        self, hooks: Hooks, tracer_provider: Any = None, meter_provider: Any = None
    ) -> None:
        self.hooks = hooks
        self.tracer = trace.get_tracer("dify_oapi", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("dify_oapi", __version__, meter_provider=meter_provider)
        self.in_flight = meter.create_up_down_counter(
            "dify.client.calls.in_flight", unit="{call}", description="Calls under way"
        )
        self.retries = meter.create_counter(
            "dify.client.retries", unit="{retry}", description="Requests sent again"
        )
        self.rate_limited = meter.create_counter(
            "dify.client.rate_limited",
            unit="{response}",
            description="Answers with status 429 (Dify's concurrency or rate cap)",
        )
        self.handlers: dict[str, Callable[..., None]] = {
            "before-request": self._before,
            "after-response": self._after,
            "on-retry": self._retry,
            "on-end": self._end,
        }

    # -- the handlers ------------------------------------------------------------------------

    def _start(self, ep: Any) -> _Call:
        labels = {"dify.operation": ep.qualname}
        span = self.tracer.start_span(
            ep.qualname,
            kind=SpanKind.CLIENT,
            attributes={
                **labels,
                "http.request.method": ep.method,
                "url.template": ep.path,
            },
        )
        return _Call(span, labels)

    def _before(self, ep: Any, request: Any, attempt: int) -> None:
        mine = scope()
        call: _Call | None = mine.get(self)
        if call is None:
            call = mine[self] = self._start(ep)
            call.span.set_attribute("server.address", request.url.host)
            self.in_flight.add(1, call.labels)
        call.attempts = attempt + 1
        # The server continues this trace: Dify reads W3C trace context from the headers.
        propagate.inject(request.headers, context=trace.set_span_in_context(call.span))

    def _after(self, ep: Any, response: Any, attempt: int) -> None:
        call: _Call | None = scope().get(self)
        if call is None:
            return
        call.status = response.status_code
        if call.status == 429:
            self.rate_limited.add(1, call.labels)

    def _retry(self, ep: Any, attempt: int, delay: float, reason: str) -> None:
        call: _Call | None = scope().get(self)
        if call is None:
            return
        call.span.add_event(
            "retry",
            {"dify.retry.attempt": attempt, "dify.retry.delay": delay, "dify.retry.reason": reason},
        )
        self.retries.add(1, {**call.labels, "dify.retry.reason": reason})

    def _end(self, ep: Any, outcome: Any, error: BaseException | None) -> None:
        call: _Call | None = scope().pop(self, None)
        counted = call is not None
        if call is None:  # refused before anything was sent: a span all the same
            call = self._start(ep)
        span = call.span
        try:
            if call.attempts:
                span.set_attribute("dify.attempts", call.attempts)
            if call.status:
                span.set_attribute("http.response.status_code", call.status)
            # A failed stream (also one collect=True read) says what it had received.
            got = outcome if outcome is not None else getattr(error, "partial", None)
            for name, value in _facts(got).items():
                span.set_attribute(name, value)
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}"))
                span.set_attribute("error.type", type(error).__qualname__)
        finally:
            span.end()
            if counted:
                self.in_flight.add(-1, call.labels)

    # -- registering ---------------------------------------------------------------------------

    def register(self) -> None:
        for point, handler in self.handlers.items():
            self.hooks.register(point, handler)

    def unregister(self) -> None:
        for point, handler in self.handlers.items():
            self.hooks.unregister(point, handler)


def _facts(outcome: Any) -> dict[str, Any]:
    """Dify's ids and usage from a call's outcome: a stream, an answer or a raw answer."""
    facts: dict[str, Any] = {}
    state = outcome if isinstance(outcome, StreamState) else getattr(outcome, "state", None)
    if isinstance(state, StreamState):  # a stream, or what a failed one had received
        facts.update({f"dify.{n}": v for n, v in state.ids.items() if n in IDS and v})
        facts["dify.events"] = state.count
        answer: Any = next(
            (e for e in reversed(state.events) if getattr(type(e), "final", False)), None
        )
    else:
        answer = getattr(outcome, "data", outcome) if hasattr(outcome, "http_response") else outcome
        for name in IDS:
            value = getattr(answer, name, None)
            if isinstance(value, str) and value:
                facts[f"dify.{name}"] = value
    if answer is None:
        return facts
    metadata = getattr(answer, "metadata", None)
    usage = getattr(metadata, "usage", None)
    if usage is not None:
        for field, attribute in _USAGE.items():
            value = getattr(usage, field, None)
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                facts[attribute] = value
    data = getattr(answer, "data", None)  # a workflow run's summary
    for field, attribute in (
        ("total_tokens", "dify.usage.total_tokens"),
        ("elapsed_time", "dify.usage.latency"),
    ):
        value = getattr(data, field, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            facts.setdefault(attribute, value)
    return facts


def _hooks_of(target: Any) -> Hooks:
    if isinstance(target, Hooks):
        return target
    hooks = getattr(target, "hooks", None)
    if not isinstance(hooks, Hooks):
        raise TypeError(
            f"instrument() takes a client or a Hooks registry, not {type(target).__name__}"
        )
    return hooks


def instrument(
    client_or_hooks: Any, tracer_provider: Any = None, meter_provider: Any = None
) -> Instrumentation:
    """Trace and measure every call of a client (or of every client sharing ``hooks``).

    ``tracer_provider`` and ``meter_provider`` default to OpenTelemetry's global ones.
    Instrumenting the same registry again replaces the earlier instrumentation.
    """
    hooks = _hooks_of(client_or_hooks)
    uninstrument(hooks)
    made = Instrumentation(hooks, tracer_provider, meter_provider)
    made.register()
    return made


def uninstrument(client_or_hooks: Any) -> None:
    """Stop tracing a client's calls: its hooks run no handler of this module any more."""
    hooks = _hooks_of(client_or_hooks)
    # Found among the registry's own handlers, so nothing here keeps a client alive.
    for handler in hooks.handlers(_POINTS[0], ""):
        owner = getattr(handler, "__self__", None)
        if isinstance(owner, Instrumentation):
            owner.unregister()
