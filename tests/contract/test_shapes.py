"""Contract (b): the emulator answers each recorded scenario in the shape Dify 1.14.2 did.

Every recorded exchange that needs no state the recording built earlier (no id or value
that an earlier answer of the same file handed out) is sent again, through the same SDK
call (or the same plain httpx request for ``raw`` lines), to a fresh emulator: in-process
(the emulator as the client's transport) and over loopback (``Emulator.serve``). Each
answer is compared with the recorded one by shape, not by value: the status, the media
type, the set of JSON key paths with the type found there, and for a stream the sequence
of event names (a run of equal names counts once: their number follows the answer text).

An exchange whose answer depends on how the recording server was set up goes in
``ENVIRONMENT`` with the reason (``docs/emulator.md`` lists them). An exchange the emulator
does not match yet is ``xfail(strict=True)`` with what differs, so it flips when fixed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dify_oapi import Client, RequestValidationError
from dify_oapi.emulator import AgentTool, AppDefinition, Emulator
from tests.recordings import AREAS, Exchange, load

from .outcomes import record
from .test_replay import _mode

BASE = "http://emulator.test/v1"
KEY = "app-contract"
DATASET_KEY = "dataset-contract"

#: Exchanges whose recorded answer depends on the recording server's setup (FACTS.md "env").
ENVIRONMENT = {
    ("knowledge", "embedding models list"): "the stand-in model provider shapes the list",
    (
        "app",
        "audio-to-text tuple audio/mp3",
    ): "no speech-to-text model: 400 provider_not_initialize",
    (
        "app",
        "audio-to-text tuple audio/wav",
    ): "no speech-to-text model: 400 provider_not_initialize",
    ("app", "text-to-audio (no TTS model)"): "no text-to-speech model: 400 provider_not_initialize",
    ("app", "chat send with remote_url image"): (
        "Dify fetched the URL (an unreachable 127.0.0.1:9) and gave up: 400; the emulator makes"
        " no network calls and takes a remote file as given"
    ),
}

#: Scenarios the emulator does not answer in Dify's shape yet: what differs.
#: Empty: every recorded scenario a fresh emulator can be sent matches (the rest are
#: ``ENVIRONMENT``). A new recording that differs goes here with its reason.
DIFFERENT: dict[tuple[str, str], str] = {}


def _needs_state(exchange: Exchange, earlier: str) -> bool:
    """The request carries a value an earlier answer of the recording handed out."""
    values: list[str] = [*exchange.path_params().values()]
    for value in [*exchange.query.values(), *_body_values(exchange.body)]:
        values += value if isinstance(value, list) else [value]
    if any(isinstance(v, str) and _UUID.fullmatch(v) and v in earlier for v in values):
        return True
    # An answer listing records made earlier (a page of conversations, datasets, logs...).
    handed_out = set(_UUID.findall(earlier))
    return bool(handed_out & set(_UUID.findall(json.dumps(exchange.response_body))))


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _body_values(body: Any) -> Iterator[Any]:
    if isinstance(body, dict):
        for key, value in body.items():
            if key != "_multipart":
                yield from _body_values(value) if isinstance(value, (dict, list)) else [value]
    elif isinstance(body, list):
        for value in body:
            yield from _body_values(value)


def scenarios() -> Iterator[Any]:
    for area in AREAS:
        earlier = ""
        for exchange in load(area):
            runnable = not re.search(r" #\d+$", exchange.name) and not exchange.name.startswith(
                "setup:"
            )
            if runnable and not _needs_state(exchange, earlier) and not _concurrent(exchange):
                marks = []
                reason = DIFFERENT.get((area, exchange.name))
                if reason:
                    marks.append(pytest.mark.xfail(strict=True, reason=reason))
                yield pytest.param(exchange, id=f"{area}:{exchange.name}", marks=marks)
            earlier += json.dumps(exchange.raw["response"])


def _concurrent(exchange: Exchange) -> bool:
    """Scenarios made of two overlapping calls (a stop or a re-attach mid-stream)."""
    return bool(re.search(r"stop|re-attach|resume|dropped|slow", exchange.name))


# --- the app each scenario ran on -------------------------------------------------------


def _recorded_form(area: str, name: str) -> list[Any]:
    body = load(area)[name].response_body
    return list(body.get("user_input_form") or []) if isinstance(body, dict) else []


def app_for(exchange: Exchange) -> AppDefinition:
    """The emulated twin of the recorded app (FACTS.md and recordings/README.md)."""
    area, name = exchange.area, exchange.name
    # The stand-in model's markers: [fail] after 3 words, [ratelimit] at once.
    failure: dict[str, Any] = {}
    if "[fail]" in name or "[ratelimit]" in name:
        failure = {"fail_after": 3 if "[fail]" in name else 0, "failure": MODEL_ERROR}
    if "failing" in name:
        failure = {"failing_node": "http-request", "failure": "[Errno 111] Connection refused"}
        failure["http_url"] = "http://127.0.0.1:9/unreachable"
    nodes = ("start", "http-request") if "failing" in name else None
    if "on a chat app" in name:
        return AppDefinition(mode="chat")
    if area == "workflow" or "(workflow app)" in name:
        form = _recorded_form("workflow", "workflow parameters")
        return AppDefinition(
            mode="workflow",
            user_input_form=form,
            outputs=lambda inputs: {"echo": str(inputs.get("text", ""))},
            nodes=nodes or ("start", "end"),
            **failure,
        )
    if area == "chatflow" and "completion-messages" not in name:
        llm = "LLM" in name
        default = ("start", "llm", "answer") if llm else ("start", "answer")
        prompt = {"system_prompt": "You are a helpful assistant."} if llm else {}
        return AppDefinition(
            mode="advanced-chat",
            nodes=nodes or default,
            suggested_questions_after_answer=True,  # switched on (recordings/README.md)
            **prompt,
            **failure,
        )
    if area == "chatflow":
        return AppDefinition(mode="advanced-chat", suggested_questions_after_answer=True)
    if re.search(r"^completion|completion app", name):
        form = _recorded_form("app", "parameters (completion app)")
        return AppDefinition(mode="completion", user_input_form=form, **failure)
    if name.startswith("agent"):
        return AppDefinition(mode="agent-chat", tools=[CURRENT_TIME], **failure)
    return _recorded_chat_app(failure)


#: Features the recording's chat app had switched on (a fresh app has them off).
_CHAT_FEATURES = ("suggested_questions_after_answer", "speech_to_text", "text_to_speech")


def _recorded_chat_app(failure: dict[str, Any]) -> AppDefinition:
    recorded = load("app")["parameters (chat app)"].response_body
    return AppDefinition(
        mode="chat",
        user_input_form=_recorded_form("app", "parameters (chat app)"),
        opening_statement=recorded["opening_statement"],
        suggested_questions=recorded["suggested_questions"],
        parameters={k: recorded[k] for k in (*_CHAT_FEATURES, "file_upload")},
        **failure,
    )


MODEL_ERROR = "fake InvokeServerUnavailableError: model went away"
#: The recorded agent app's one built-in tool (recordings/README.md).
CURRENT_TIME = AgentTool(
    "current_time",
    labels={"zh_Hans": "获取当前时间", "en_US": "Current Time", "pt_BR": "Current Time"}
    | {"ja_JP": "Current Time"},
    run=lambda arguments: "2026-12-02 18:34:51",
)


def _key(exchange: Exchange) -> str:
    if "dataset key on app route" in exchange.name:
        return DATASET_KEY
    if "401" in exchange.name or exchange.status == 401:
        return "app-wrong"  # not among the emulator's keys
    return DATASET_KEY if exchange.area == "knowledge" else KEY


# --- shapes ----------------------------------------------------------------------------


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "object"}[type(value)]


def paths(value: Any, prefix: str = "$") -> set[str]:
    """``path:type`` for every value in a JSON document (list items share ``[]``)."""
    found = {f"{prefix}:{_type(value)}"}
    if isinstance(value, dict):
        for key, item in value.items():
            found |= paths(item, f"{prefix}.{key}")
    elif isinstance(value, list):
        for item in value:
            found |= paths(item, f"{prefix}[]")
    return found


def _collapse(names: list[str]) -> list[str]:
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


def shape(status: int, content_type: str, body: Any, events: list[Any] | None) -> dict[str, Any]:
    media = content_type.partition(";")[0].strip()
    if events is None:
        return {"status": status, "media": media, "paths": paths(body), "events": None}
    names, found = [], set()
    for event in events:
        name = event["event"] if isinstance(event, dict) else event.split(":", 1)[-1].strip()
        names.append(name)
        found |= paths(event, f"<{name}>") if isinstance(event, dict) else set()
    return {"status": status, "media": media, "paths": found, "events": _collapse(names)}


def recorded_shape(exchange: Exchange) -> dict[str, Any]:
    body = exchange.response_body
    if isinstance(body, str) and "json" not in exchange.content_type:
        body = "<text>"
    elif isinstance(body, dict) and body.get("_binary"):
        body = "<bytes>"
    events = exchange.events if exchange.sse is not None else None
    return shape(exchange.status, exchange.content_type, body, events)


def answer_shape(response: httpx.Response) -> dict[str, Any]:
    ctype = response.headers.get("content-type", "")
    events: list[Any] | None = None
    body: Any = None
    if ctype.startswith("text/event-stream"):
        events = []
        for frame in re.split(r"\r?\n\r?\n", response.text):
            frame = frame.strip()
            if frame.startswith("data:"):
                events.append(json.loads(frame[5:]))
            elif frame:
                events.append(frame)
    elif "json" in ctype and response.content:
        body = response.json()
    elif response.content and ctype.startswith("text/"):
        body = "<text>"
    elif response.content:
        body = "<bytes>"
    return shape(response.status_code, ctype, body, events)


def differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = []
    for key in ("status", "media", "events"):
        if want[key] != got[key]:
            out.append(f"{key} {got[key]!r} != recorded {want[key]!r}")
    if want["paths"] != got["paths"]:
        missing, extra = sorted(want["paths"] - got["paths"]), sorted(got["paths"] - want["paths"])
        out.append(f"paths missing {missing[:6]}, extra {extra[:6]}")
    return out


# --- running a scenario ----------------------------------------------------------------


class Capture(httpx.BaseTransport):
    """Passes requests on and keeps each full answer (streams read to the end)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.answers: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        content = response.read()
        response.close()
        copy = httpx.Response(response.status_code, headers=response.headers, content=content)
        self.answers.append(copy)
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )


def _emulator(exchange: Exchange) -> Emulator:
    app = app_for(exchange)
    return Emulator(api_keys={KEY: app, DATASET_KEY: None}, indexing_seconds=0.05)


def _send_as_recorded(exchange: Exchange, capture: Capture, base_url: str) -> None:
    headers = {
        k: v.replace("<key>", _key(exchange))
        for k, v in exchange.headers.items()
        if k in ("authorization", "content-type")
    }
    headers.setdefault("authorization", f"Bearer {_key(exchange)}")
    with httpx.Client(transport=capture, base_url=base_url.removesuffix("/v1")) as plain:
        content = None if exchange.body is None else json.dumps(exchange.body).encode()
        if content is not None:
            headers.setdefault("content-type", "application/json")
        plain.request(
            exchange.method,
            "/v1" + exchange.path,
            params=exchange.query,
            headers=headers,
            content=content,
        )


def run(
    exchange: Exchange,
    transport: httpx.BaseTransport,
    base_url: str,
    ids: dict[str, str] | None = None,
) -> httpx.Response:
    """Make the recorded call; ``ids`` maps recorded ids to those the emulator handed out."""
    capture = Capture(transport)
    if exchange.is_raw:
        _send_as_recorded(exchange, capture, base_url)
    else:
        args = {**_renamed(exchange.arguments(), ids or {}), **_mode(exchange)}
        with Client(
            api_key=_key(exchange), base_url=base_url, transport=capture, max_retries=0
        ) as client:
            try:
                result = client.call(exchange.operation, **args)
                if hasattr(result, "__iter__") and hasattr(result, "close"):
                    list(result)
            except RequestValidationError:
                # The SDK now refuses what Dify refuses (a non-UUID id) before sending; the
                # emulator must still answer the recorded request as Dify did.
                _send_as_recorded(exchange, capture, base_url)
            except Exception:
                pass
    assert capture.answers, "the call sent nothing"
    return capture.answers[-1]


@pytest.mark.parametrize("exchange", list(scenarios()))
def test_in_process_answer_has_the_recorded_shape(exchange: Exchange) -> None:
    if (exchange.area, exchange.name) in ENVIRONMENT:
        pytest.skip(f"environment: {ENVIRONMENT[exchange.area, exchange.name]}")
    got = answer_shape(run(exchange, _emulator(exchange), BASE))
    problems = differences(recorded_shape(exchange), got)
    record("in-process", exchange, not problems)
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("exchange", list(scenarios()))
def test_loopback_answer_has_the_recorded_shape(exchange: Exchange) -> None:
    if (exchange.area, exchange.name) in ENVIRONMENT:
        pytest.skip(f"environment: {ENVIRONMENT[exchange.area, exchange.name]}")
    with _emulator(exchange).serve() as server, httpx.HTTPTransport() as transport:
        got = answer_shape(run(exchange, transport, server.url))
    problems = differences(recorded_shape(exchange), got)
    record("loopback", exchange, not problems)
    assert not problems, "; ".join(problems)


# --- scenarios that need what earlier lines made ----------------------------------------

#: Recorded scenarios whose request uses ids earlier lines handed out, sent after those lines
#: (the POSTs that made the ids, found by :func:`_setup`) on the same emulator, with the
#: recorded ids swapped for the emulator's: previews before and after a message uses the
#: upload, suggested questions, and the message history's keys.
STATEFUL = [
    ("app", "error: file preview png not yet used in a message"),
    ("app", "error: file preview png as_attachment not yet used in a message"),
    ("app", "error: file preview txt not used in a message"),
    ("app", "file preview png (used in a message)"),
    ("app", "file preview png as_attachment (used in a message)"),
    ("app", "file preview png other user"),
    ("app", "messages list"),
    ("app", "messages list first_id limit 1"),
    ("app", "messages list with message_files"),
    ("app", "suggested questions"),
    ("chat", "agent list messages (agent_thoughts)"),
    ("chatflow", "chatflow messages list"),
    ("chatflow", "chatflow suggested questions"),
]


def _uuids(value: Any) -> set[str]:
    return set(_UUID.findall(json.dumps(value)))


def _setup(exchange: Exchange) -> list[Exchange]:
    """The earlier POSTs that made or used the ids ``exchange`` sends or lists, in order.

    A POST that only sends an id counts too: the chat send that attaches an upload is what
    makes its preview work.
    """
    lines = list(load(exchange.area))[: exchange.index]
    wanted = _uuids(exchange.raw["request"]) | _uuids(exchange.response_body)
    chosen: list[Exchange] = []
    for earlier in reversed(lines):
        if earlier.method == "POST" and _uuids(earlier.raw) & wanted:
            chosen.append(earlier)
            wanted |= _uuids(earlier.raw["request"])
    return chosen[::-1]


def _renamed(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {k: _renamed(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, ids) for v in value]
    return value


def _id_paths(value: Any, prefix: str = "$") -> dict[str, str]:
    """``path: id`` for every UUID string in a JSON document (list items by position)."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return {prefix: value}
    found: dict[str, str] = {}
    if isinstance(value, (dict, list)):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            found |= _id_paths(item, f"{prefix}.{key}")
    return found


def _answer_ids(body: Any, events: list[Any] | None) -> dict[str, str]:
    if events is None:
        return _id_paths(body)
    found: dict[str, str] = {}
    for event in events:  # the first event of each name: ids repeat along a stream
        if isinstance(event, dict):
            found = _id_paths(event, f"<{event['event']}>") | found
    return found


def _learn(ids: dict[str, str], exchange: Exchange, response: httpx.Response) -> None:
    """Map the ids the recorded answer handed out to the emulator's at the same places."""
    recorded = _answer_ids(exchange.response_body, exchange.events if exchange.sse else None)
    streamed = response.headers.get("content-type", "").startswith("text/event-stream")
    frames = re.split(r"\r?\n\r?\n", response.text) if streamed else []
    events = [json.loads(f.strip()[5:]) for f in frames if f.strip().startswith("data:")]
    mine = _answer_ids(None if streamed else response.json(), events if streamed else None)
    ids.update({v: mine[k] for k, v in recorded.items() if k in mine})


def _run_with_setup(exchange: Exchange, transport: httpx.BaseTransport, base: str) -> Any:
    ids: dict[str, str] = {}
    for earlier in _setup(exchange):
        _learn(ids, earlier, run(earlier, transport, base, ids))
    return answer_shape(run(exchange, transport, base, ids))


#: Of those, the ones the emulator does not answer in Dify's shape yet: what differs.
DIFFERENT_AFTER_SETUP: dict[tuple[str, str], str] = {}


def _stateful() -> Iterator[Any]:
    for area, name in STATEFUL:
        reason = DIFFERENT_AFTER_SETUP.get((area, name))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(load(area)[name], id=f"{area}:{name}", marks=marks)


@pytest.mark.parametrize("exchange", list(_stateful()))
def test_in_process_answer_after_setup_has_the_recorded_shape(exchange: Exchange) -> None:
    assert _setup(exchange) or exchange.status == 404  # an id no line made stays unknown
    got = _run_with_setup(exchange, _emulator(exchange), BASE)
    problems = differences(recorded_shape(exchange), got)
    record("in-process", exchange, not problems)
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("exchange", list(_stateful()))
def test_loopback_answer_after_setup_has_the_recorded_shape(exchange: Exchange) -> None:
    with _emulator(exchange).serve() as server, httpx.HTTPTransport() as transport:
        got = _run_with_setup(exchange, transport, server.url)
    problems = differences(recorded_shape(exchange), got)
    record("loopback", exchange, not problems)
    assert not problems, "; ".join(problems)
