"""Contract (a): every recorded exchange, replayed through the SDK, decodes as it did on Dify.

Each SDK call of the recordings (a line and the retries the SDK made of it) is made again
against a :class:`~tests.recordings.Replay` of those lines: the request must match the
recorded one, and the call must return the recorded type, stream the recorded event
classes, or raise the recorded error. Every key the server sent must land in a typed field
of the decoded value. Where the recorded outcome is an SDK gap that issue 13 asks to close,
the test asserts the corrected behaviour and is marked ``xfail(strict=True)`` naming the
SDK item, so it flips when that lands.
"""

from __future__ import annotations

import contextlib
import json
import re
import typing
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import dify_oapi
from dify_oapi import Client, RequestValidationError
from tests.recordings import AREAS, Exchange, Replay, load

from .outcomes import record

BASE = "http://dify.test/v1"

# SDK items of issue 13 (someone else's; these tests flip when they land).
COLLECT = "SDK: collect=True never hides a failed run (issue 13)"
TYPED = "SDK: every field and event the server sends is typed (issue 13)"

#: Keys of the server's answers that no SDK type holds yet, and the SDK item adding them.
UNTYPED: dict[str, str] = {}
#: Collected answers that, on Dify, are failed runs (blocking raises for the same run).
FAILED_COLLECTS = {
    ("chatflow", "chatflow LLM collect=True [fail]"),
    ("chatflow", "chatflow failing node collect=True"),
}
AUDIO_TYPES = {"audio/mp3", "audio/m4a", "audio/wav", "audio/amr", "audio/mpga"}


def calls() -> Iterator[Any]:
    """One param per SDK call: a line and the retries the SDK made of it."""
    for area in AREAS:
        exchanges = list(load(area))
        for exchange in exchanges:
            if re.search(r" #\d+$", exchange.name) or exchange.is_raw:
                continue
            group = load(area).call(exchange.name)
            marks = _marks(exchange)
            yield pytest.param(group, id=f"{area}:{exchange.name}", marks=marks)


class KnownGap(Exception):
    """An SDK gap that issue 13 names: the test is an expected failure until it lands."""


def _gaps(exchange: Exchange) -> list[str]:
    """The SDK items whose fix this exchange's test checks."""
    gaps = []
    if _untyped_keys(exchange):
        gaps.append(TYPED)
    return gaps


def _marks(exchange: Exchange) -> list[Any]:
    gaps = _gaps(exchange)
    if not gaps:
        return []
    return [pytest.mark.xfail(strict=True, raises=KnownGap, reason="; ".join(gaps))]


def _untyped_keys(exchange: Exchange) -> set[str]:
    """Keys of the recorded answer that UNTYPED lists (no SDK type holds them yet)."""
    text = exchange.content().decode("utf-8", "replace")
    return {key for key in UNTYPED if f'"{key}"' in text}


def _mode(exchange: Exchange) -> dict[str, Any]:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    if "collect=True" in exchange.name:
        return {"collect": True}
    if body.get("response_mode") == "streaming" or exchange.sse is not None:
        return {"stream": True}
    return {}


@pytest.mark.parametrize("group", list(calls()))
def test_replay_decodes_as_recorded(group: list[Exchange], sleeps: list[float]) -> None:
    first = group[0]
    replay = Replay(group)
    with Client(api_key="app-replay", base_url=BASE, transport=replay) as client:
        try:
            outcome = _call(client, first)
        except KnownGap:
            record("replay", first, True)  # decoded as recorded; the gap is the SDK item's
            raise
    record("replay", first, outcome == "same")
    assert outcome == "same", outcome
    # Relabelled audio is sent again with the type the SDK now gives; a removed row and an id
    # that is not a UUID are not sent.
    sent = not (_not_uuid(first) or first.operation == "knowledge.get_document_file")
    if sent and not _relabelled(first):
        replay.assert_done()
    _check_corrections(first)


def _call(client: Client, exchange: Exchange) -> str:
    """Make the recorded call; "same" when it ends as recorded, else what differs."""
    want = exchange.outcome
    args = {**exchange.arguments(), **_mode(exchange)}
    if (exchange.area, exchange.name) in FAILED_COLLECTS:
        # The recording shows the old SDK returning a truncated answer; on Dify the blocking
        # call answers 400 invalid_param "Run failed: ...", and collect=True must say the same.
        try:
            client.call(exchange.operation, **args)
        except dify_oapi.BadRequestError as error:
            partial = error.partial
            ok = (
                error.code == "invalid_param"
                and error.message.startswith("Run failed: ")
                and partial is not None
                and bool(partial.workflow_run_id and partial.task_id)
            )
            return "same" if ok else f"raised {error!r}"
        return "returned a result for a failed run"
    if _not_uuid(exchange):
        return _refused_before_sending(client, exchange)
    if _relabelled(exchange):
        return _audio(client, exchange)
    if exchange.operation == "knowledge.get_document_file":
        return _no_route(client, exchange)
    if "raised" in want and exchange.sse is None:
        return _raised(lambda: client.call(exchange.operation, **args), exchange)
    if "events" in want:
        stream = client.call(exchange.operation, **args)
        names = []
        try:
            for event in stream:
                names.append(type(event).__name__)
                _typed(event, exchange.events[_data_index(exchange, len(names) - 1)])
                if _dropped(exchange) and len(names) == len(want["events"]):
                    break  # the recorded client closed the stream here
        finally:
            stream.close()
        if names != want["events"]:
            return f"events {names} != recorded {want['events']}"
        if "answer" in want and stream.answer != want["answer"]:
            return f"answer {stream.answer!r} != recorded {want['answer']!r}"
        return "same"
    if "raised" in want:
        return _raised(lambda: _drain(client.call(exchange.operation, **args)), exchange)
    result = client.call(exchange.operation, **args)
    kind = type(result).__name__
    if kind != want["result"]["type"]:
        return f"result {kind} != recorded {want['result']['type']}"
    if exchange.response_body not in (None, "") and not isinstance(result, bytes):
        body = exchange.response_body
        if exchange.sse is None and not (isinstance(body, dict) and body.get("_binary")):
            _typed(result, body)
    if "collect=True" in exchange.name and exchange.area != "workflow" and result.mode is None:
        return f"collected {kind}.mode is None"
    return "same"


def _dropped(exchange: Exchange) -> bool:
    """The client closed this stream before its end (the recording reads part of it)."""
    names = [e["event"] for e in exchange.events if isinstance(e, dict)]
    return not names or names[-1] not in ("message_end", "workflow_finished", "error")


def _data_index(exchange: Exchange, n: int) -> int:
    """The index in ``exchange.events`` of the n-th data frame."""
    seen = -1
    for i, event in enumerate(exchange.events):
        if isinstance(event, dict):
            seen += 1
            if seen == n:
                return i
    raise IndexError(n)


def _drain(result: Any) -> Any:
    if hasattr(result, "__iter__") and not isinstance(result, (bytes, str, dict, list)):
        for _ in result:
            pass
    return result


def _raised(call: Any, exchange: Exchange) -> str:
    want = exchange.outcome
    try:
        call()
    except dify_oapi.DifyError as exc:
        kind = type(exc).__name__
        if kind != want["raised"]:
            return f"raised {kind} ({exc}) != recorded {want['raised']}"
        for key in ("status_code", "code"):
            if key in want and getattr(exc, key, None) != want[key]:
                return f"{key} {getattr(exc, key, None)!r} != recorded {want[key]!r}"
        if "partial_answer" in want:
            partial = exc.partial  # type: ignore[attr-defined]
            got = (partial.answer, partial.task_id) if partial else ("", None)
            if got != (want["partial_answer"], want["partial_task_id"]):
                return (
                    f"partial {got} != recorded {want['partial_answer'], want['partial_task_id']}"
                )
        return "same"
    return f"nothing raised; recorded {want['raised']}"


def _not_uuid(exchange: Exchange) -> bool:
    return bool(re.search(r"non-UUID|not a UUID", exchange.name))


def _refused_before_sending(client: Client, exchange: Exchange) -> str:
    """An id Dify parses as a UUID is checked by the SDK: typed error, nothing sent."""
    args = exchange.arguments()
    try:
        client.call(exchange.operation, **args)
    except RequestValidationError as error:
        name = (error.field or "$.?")[2:].split("[")[0]
        value = args.get(name)
        bad = value[0] if isinstance(value, list) else value
        if error.operation != exchange.operation or not isinstance(bad, str):
            return f"refused {error!r} (field {error.field})"
        text = str(error)
        if f"`{error.field}` must be a UUID" not in text or not text.endswith(f"got {bad!r}"):
            return f"message {error}"
        return "same"
    return "sent a non-UUID id"


def _no_route(client: Client, exchange: Exchange) -> str:
    """The row Dify 1.14.2 has no route for is gone: the call fails before any I/O."""
    if hasattr(client.knowledge, "get_document_file"):
        return "knowledge.get_document_file is still a method"
    with pytest.raises(dify_oapi.InvalidArgumentsError, match="unknown operation"):
        client.call(exchange.operation, **exchange.arguments())
    return "same"


def _relabelled(exchange: Exchange) -> bool:
    """An audio upload refused for the type httpx guessed (a caller's own type is kept)."""
    return (
        exchange.operation == "dify.audio_to_text"
        and exchange.status == 415
        and "tuple" not in exchange.name
    )


def _audio(client: Client, exchange: Exchange) -> str:
    """A path or bytes must go out with a type Dify takes (the recorded 415 is the gap)."""
    replay = Replay(load("app")["audio-to-text tuple audio/mp3"], check=False)
    filename, content, _ = exchange.arguments()["file"]
    with Client(api_key="app-replay", base_url=BASE, transport=replay) as fixed:
        part: Any = content if filename == "file" else (filename, content)
        # The accepted recording answers 400 (no speech-to-text model: env).
        with contextlib.suppress(dify_oapi.APIStatusError):
            fixed.dify.audio_to_text(file=part, user="rec-app-user")
    sent = replay.requests[0].content
    found = re.search(rb'name="file"[^\r\n]*\r\nContent-Type: ([^\r\n]+)', sent)
    ctype = found.group(1).decode() if found else None
    if ctype is None or ctype.lower() not in AUDIO_TYPES:
        return f"the file part went out as {ctype}"
    return "same"


def _check_corrections(exchange: Exchange) -> None:
    """Behaviour issue 13 asks of the SDK beyond the recorded outcome."""
    if _untyped_keys(exchange):
        raise KnownGap(f"untyped keys: {sorted(_untyped_keys(exchange))}")


# --- every key the server sent is in a typed field ---------------------------------------


def _typed(decoded: Any, sent: Any, path: str = "$") -> None:
    """Fail on a key of ``sent`` that the decoded value has no field for (UNTYPED aside)."""
    if isinstance(decoded, msgspec.Struct) and isinstance(sent, dict):
        info = msgspec.structs.fields(decoded)
        names = {f.encode_name: f for f in info}
        tag = type(decoded).__struct_config__.tag_field
        for key, value in sent.items():
            if key == tag:
                continue
            if key not in names:
                if key in UNTYPED:
                    continue
                pytest.fail(f"{path}.{key} has no field in {type(decoded).__name__}")
            _typed(getattr(decoded, names[key].name), value, f"{path}.{key}")
    elif isinstance(decoded, list) and isinstance(sent, list):
        for i, (d, s) in enumerate(zip(decoded, sent, strict=False)):
            _typed(d, s, f"{path}[{i}]")


# --- the corrections that are not a recorded line -----------------------------------------


def test_conversation_id_none_is_sent_as_null(sleeps: list[float]) -> None:
    exchange = load("chat")["raw JSON null conversation_id"]
    replay = Replay(exchange, check=False)
    with Client(api_key="app-replay", base_url=BASE, transport=replay) as client:
        answer = client.chat.send(**{**exchange.arguments()})  # conversation_id=None
    sent = json.loads(replay.requests[0].content)
    assert sent.get("conversation_id", None) is None and answer.answer


def test_resume_after_a_gap_asks_for_the_snapshot(sleeps: list[float]) -> None:
    workflow = load("workflow")
    # The run cut after workflow_started, and the snapshot re-attach to that same run: the
    # Replay checks the resume asks for include_state_snapshot=true.
    cut = workflow[
        "workflow slow streaming dropped right after workflow_started (gap test "
        "include_state_snapshot)"
    ]
    snapshot = workflow["workflow re-attach after a 1.5 s gap include_state_snapshot"]
    replay = Replay(cut, snapshot)
    with Client(api_key="app-replay", base_url=BASE, transport=replay) as client:
        stream = client.workflow.run(**cut.arguments(), stream=True)
        before = [next(iter(stream))]
        stream.close()
        after = list(stream.resume())
    replay.assert_done()
    assert dict(replay.requests[1].url.params)["include_state_snapshot"] == "true"
    names = [type(e).__name__ for e in before + after]
    uninterrupted = workflow["workflow slow streaming (original of re-attach)"].outcome["events"]
    assert names == uninterrupted
    # The snapshot replays workflow_started; the one already delivered is dropped.
    assert [
        e.data.id for e in before + after if isinstance(e, dify_oapi.types.WorkflowStartedEvent)
    ] == [before[0].data.id]


def test_untyped_keys_are_only_the_listed_ones() -> None:
    """The UNTYPED list is exact: each key is still sent by some recording."""
    text = "".join(e.content().decode("utf-8", "replace") for a in AREAS for e in load(a))
    assert all(f'"{key}"' in text for key in UNTYPED)
    hints = typing.get_type_hints(dify_oapi.types.Usage)
    assert {"time_to_first_token", "time_to_generate"} <= set(hints)
