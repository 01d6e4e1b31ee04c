"""Conformance with the official OpenAPI spec, one test case per operationId.

Each operation needs one canonical row whose fields, wire encoding and response structs
agree with the spec. Deliberate differences sit in the allow-lists below with a reason
each; an entry no longer needed fails too, so the lists stay minimal and exact.
"""

from __future__ import annotations

import contextlib
import copy
import email.parser
import email.policy
import json
import re
import typing
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import msgspec
import pytest
from openapi_schema_validator import OAS30Validator

from dify_oapi import APIStatusError, Client
from dify_oapi._services import ENDPOINTS, INDEX
from dify_oapi._table import Endpoint

from .conftest import BASE, KEY, SPEC_PATH, spec

MODE_FIELD = "response_mode"  # the shipped tables' streaming-mode field
EXPECTED_OPERATIONS = 82
METHODS = ("get", "post", "put", "patch", "delete")

# (operationId, field) -> why the struct's required-ness deliberately differs from the spec's.
REQUIRED_DIFFERENCES = {
    ("sendChatMessage", "inputs"): "defaults to {} and is always sent",
    ("createCompletionMessage", "inputs"): "defaults to {} and is always sent",
    ("executeWorkflow", "inputs"): "defaults to {} and is always sent",
    ("runWorkflowById", "inputs"): "defaults to {} and is always sent",
    ("runPipeline", "response_mode"): "set from stream=, never passed by the caller",
}

# (operationId, SSE example) -> (row whose union decodes it, why).
SSE_EXAMPLE_ROWS = {
    ("streamWorkflowEvents", "resumedRunChatflow"): (
        "chatflow.stream_events",
        "one spec operation serves Workflow and Chatflow apps; this Chatflow example "
        "(message, message_end) is what chatflow.stream_events decodes, as ChatEvent",
    ),
}

# (operationId, status, example) -> why an error example is not a Dify {code, message} body.
ERROR_BODY_EXCEPTIONS = {
    ("createSegments", "400", "validation_error"): (
        "payload validation answers {'error': ...} with no code; the SDK reads `error` as the "
        "message"
    ),
}

# Multipart parts carrying a JSON document as text: the knowledge API's `data`, which
# "accepts the same fields as Create Document by Text ... except name and text".
JSON_PARTS = {"data": ("createDocumentFromText", frozenset({"name", "text"}))}

# (operationId, every-field) -> an SDK bug outside this test's reach; strict, so a fixed case
# fails until its entry goes.
KNOWN_WIRE_BUGS: dict[tuple[str, bool], str] = {}


# --- The spec ------------------------------------------------------------------------------


def _operation_ids() -> list[Any]:
    if not SPEC_PATH.exists():  # one placeholder case, which spec() skips with the reason
        return [pytest.param("", id="no-spec")]
    paths = json.loads(SPEC_PATH.read_text("utf-8"))["paths"]
    return sorted(op["operationId"] for i in paths.values() for m, op in i.items() if m in METHODS)


@cache
def _api() -> dict[str, Any]:
    return spec()


def _resolve(node: Any) -> Any:
    """Follow ``$ref`` pointers (all local: ``#/components/...``)."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = _api()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@cache
def _operations() -> dict[str, tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """operationId -> (METHOD, path template, operation, parameters incl. path-level ones)."""
    out = {}
    for path, item in _api()["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                params = [*item.get("parameters", ()), *op.get("parameters", ())]
                out[op["operationId"]] = (method.upper(), path, op, [_resolve(p) for p in params])
    return out


def _flatten(node: Any) -> dict[str, Any]:
    """One schema from ``$ref``, ``allOf`` and the first ``oneOf``/``anyOf`` branch."""
    node = _resolve(node)
    out = {k: v for k, v in node.items() if k not in ("allOf", "oneOf", "anyOf")}
    props, required = dict(node.get("properties", {})), set(node.get("required", ()))
    branches = [*node.get("allOf", ()), *(node[k][0] for k in ("oneOf", "anyOf") if node.get(k))]
    for branch in map(_flatten, branches):
        for name, sub in branch.get("properties", {}).items():
            props[name] = {**_resolve(props.get(name, {})), **_resolve(sub)}
        required |= set(branch.get("required", ()))
        out |= {k: v for k, v in branch.items() if k in ("type", "not", "items") and k not in out}
    return {**out, "properties": props, "required": sorted(required)} if props else out


def _body(op: dict[str, Any]) -> tuple[str | None, dict[str, Any], list[Any]]:
    """The request body's content type, flattened schema and examples (``None``: no body)."""
    for kind, media in _resolve(op.get("requestBody", {})).get("content", {}).items():
        examples = [_resolve(e)["value"] for e in media.get("examples", {}).values()]
        return kind, _flatten(media["schema"]), examples
    return None, {}, []


def _json_part_schema(name: str) -> dict[str, Any]:
    source, dropped = JSON_PARTS[name]
    schema = _body(_operations()[source][2])[1]
    props = {k: v for k, v in schema["properties"].items() if k not in dropped}
    required = [k for k in schema["required"] if k not in dropped]
    return {**schema, "properties": props, "required": required, "additionalProperties": False}


def _examples(op: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """Every response example, components' included: (status, content type, name, value)."""
    out = []
    for status, response in op.get("responses", {}).items():
        for kind, media in _resolve(response).get("content", {}).items():
            if "example" in media:
                out.append((status, kind, "example", media["example"]))
            for name, example in media.get("examples", {}).items():
                out.append((status, kind, name, _resolve(example)["value"]))
    return out


def _validate(schema: dict[str, Any], instance: Any, what: str) -> None:
    # Refs resolve against the root document, so the spec's components ride along.
    validator = OAS30Validator({**schema, "components": _api()["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, f"{what} does not match the spec: " + "; ".join(errors[:5])


def _sample(node: Any, full: bool) -> Any:
    """A value of the schema's type; objects get required properties and those with an
    example (a request example), or every property when ``full``."""
    node = _flatten(node)
    kind = node.get("type")
    if "example" in node or "enum" in node:
        return copy.deepcopy(node["example"]) if "example" in node else node["enum"][0]
    if kind == "object" or "properties" in node:
        skip = node.get("not", {}).get("required", ())  # "url or upload_file_id, not both"
        props = {n: s for n, s in node.get("properties", {}).items() if n not in skip}
        keep = [n for n, s in props.items() if full or n in node["required"] or "example" in s]
        return {n: _sample(props[n], full) for n in keep}
    if kind == "array":
        return [_sample(node.get("items", {}), full) for _ in range(node.get("minItems", 1))]
    if kind in ("integer", "number"):
        return (int if kind == "integer" else float)(node.get("minimum", 1))
    if kind == "boolean":
        return True
    return b"file bytes" if node.get("format") == "binary" else "x" * node.get("minLength", 1)


# --- The rows ------------------------------------------------------------------------------


def _definition(ep: Endpoint) -> str:
    """Where a row is written. A service's own table loads through the package's
    ``endpoints`` symlink while includes are resolved, so one file can carry two labels."""
    file, _, row = ep.source.rpartition(" row ")
    return f"{Path(file).resolve()} row {row}"


@cache
def _canonical() -> tuple[dict[str, Endpoint], tuple[str, ...]]:
    """operationId -> its row (a shared row appears once per service), and any conflicts."""
    rows: dict[str, Endpoint] = {}
    conflicts = []
    for ep in (ep for eps in ENDPOINTS.values() for ep in eps if ep.operation_id):
        first = rows.setdefault(ep.operation_id, ep)
        if _definition(first) != _definition(ep):
            conflicts.append(f"{ep.operation_id}: {first.source} and {ep.source}")
    return rows, tuple(conflicts)


def _row(oid: str) -> Endpoint:
    _api()  # skips without the spec
    ep = _canonical()[0].get(oid)
    assert ep is not None, f"no endpoint row has operation_id = {oid!r}"
    return ep


def _tags(union: Any) -> set[str]:
    return {m.__struct_config__.tag for m in typing.get_args(union)}


def _keys(value: Any, at: str = "$") -> set[str]:
    """Every key path in a JSON value (list items share one path)."""
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in {f"{at}.{k}", *_keys(v, f"{at}.{k}")}}
    return {p for v in value for p in _keys(v, f"{at}[]")} if isinstance(value, list) else set()


def _decode(value: Any, tp: Any, what: str) -> None:
    """Decode an example; no key may be dropped (Model structs ignore unknown keys)."""
    decoded = msgspec.json.decode(json.dumps(value).encode(), type=tp)
    lost = _keys(value) - _keys(msgspec.to_builtins(decoded))
    assert not lost, f"{what}: no struct field takes {sorted(lost)}"


# --- Calls on a mock transport -------------------------------------------------------------


def _arguments(oid: str, ep: Endpoint, full: bool) -> dict[str, Any]:
    """Keyword arguments: the spec's request example (unless ``full``) or generated values."""
    _, _, op, params = _operations()[oid]
    args = {p["name"]: _sample(p["schema"], full) for p in params if p.get("required") or full}
    kind, schema, examples = _body(op)
    if kind is not None:
        args.update(copy.deepcopy(examples[0]) if examples and not full else _sample(schema, full))
    for name in JSON_PARTS.keys() & args.keys() if ep.multipart else ():
        args[name] = json.loads(args[name])  # the SDK takes the document, not its JSON text
    if ep.stream is not None:
        args.pop(MODE_FIELD, None)  # follows stream=
    if ep.request is not None:
        args = _as_uuids(args, msgspec.inspect.type_info(ep.request))
    return args


#: What a spec example's placeholder id ("x", "doc-1") becomes where the SDK, as Dify,
#: takes only a UUID (the SDK refuses anything else before sending).
SAMPLE_UUID = "3f0c5a4e-8b1d-4c2a-9e7f-1a2b3c4d5e6f"


def _as_uuids(value: Any, info: Any) -> Any:
    """``value`` with every string that ``info`` constrains to a UUID made one."""
    while isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    if isinstance(info, msgspec.inspect.UnionType):
        options = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        info = options[0] if len(options) == 1 else None
    if isinstance(info, msgspec.inspect.StrType) and isinstance(value, str):
        pattern = info.pattern or ""
        if "{12}" in pattern and value and not re.search(pattern, value):
            return SAMPLE_UUID
        return value
    if isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.SetType)):
        return [_as_uuids(v, info.item_type) for v in value] if isinstance(value, list) else value
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        fields = {f.name: f.type for f in info.fields}
        return {k: _as_uuids(v, fields[k]) if k in fields else v for k, v in value.items()}
    return value


def _answer(oid: str, ep: Endpoint, streaming: bool) -> httpx.Response:
    """The spec's example answer for the operation, or a minimal valid one."""
    if streaming:  # a small stream ending in the union's first final event
        final = next(m for m in typing.get_args(ep.stream) if m.final).__struct_config__.tag
        frame = f"data: {json.dumps({'event': final, 'task_id': 't'})}\n\n".encode()
        return httpx.Response(200, content=frame, headers={"content-type": "text/event-stream"})
    op = _operations()[oid][2]
    status = min(s for s in op["responses"] if s.startswith("2"))
    content = _resolve(op["responses"][status]).get("content", {})
    if not content or ep.response is bytes:
        headers = {"content-type": next(iter(content))} if content else {}
        return httpx.Response(int(status), content=b"\x00\x01" if content else b"", headers=headers)
    examples = [v for s, kind, _, v in _examples(op) if s == status and kind == "application/json"]
    empty = [] if typing.get_origin(ep.response) is list else {}
    return httpx.Response(int(status), json=examples[0] if examples else empty)


def _exchange(ep: Endpoint, args: dict[str, Any], answer: httpx.Response, stream: bool) -> Any:
    """One call through a real client on a mock transport: (request sent, result)."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        request.read()
        return answer

    transport = httpx.MockTransport(handler)
    with Client(api_key=KEY, base_url=BASE, transport=transport, max_retries=0) as client:
        result = client.call(ep.qualname, **args, **({"stream": True} if stream else {}))
        result = list(result) if stream else result
    assert len(sent) == 1
    return sent[0], result


def _from_text(schema: dict[str, Any], text: str) -> Any:
    """A path or query value as the schema's type (the wire carries text)."""
    if schema.get("type") in ("integer", "number", "boolean"):
        with contextlib.suppress(ValueError):
            return json.loads(text)  # "true", "1", "0.5"; anything else stays text and fails
    return text


def _form(request: httpx.Request) -> dict[str, Any]:
    """The multipart parts: file parts as bytes, fields as text."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    assert message.is_multipart()
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        if part.get_filename()
        else part.get_content()
        for part in message.iter_parts()
    }


def _check_wire(oid: str, request: httpx.Request, streaming: bool) -> None:
    """The request that went out validates against the operation in the spec."""
    method, template, op, params = _operations()[oid]
    assert request.method == method
    # Path: the template, each placeholder one percent-encoded segment.
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape("/v1" + template))
    match = re.fullmatch(pattern, request.url.raw_path.decode().partition("?")[0])
    assert match, f"{request.url} does not match {template}"
    sent = {name: [unquote(text)] for name, text in match.groupdict().items()}
    for name, value in request.url.params.multi_items():
        sent.setdefault(name, []).append(value)
    # Parameters: declared ones only, each valid for its schema.
    assert sent.keys() <= {p["name"] for p in params}, f"undeclared parameters in {request.url}"
    for param in params:
        name, schema = param["name"], _flatten(param["schema"])
        values = sent.get(name, [])
        if schema.get("type") == "array":  # style=form, explode=true: one pair per item
            values = [[_from_text(_flatten(schema["items"]), v) for v in values]] if values else []
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        assert values or not param.get("required"), f"required parameter {name} missing"
        for value in values:
            _validate(schema, _from_text(schema, value) if isinstance(value, str) else value, name)
    # Body: JSON or multipart as the spec declares, valid for its schema.
    kind, schema, _ = _body(op)
    content_type = request.headers.get("content-type", "")
    if kind is None:
        assert not request.content, "the spec declares no request body"
        return
    assert content_type.startswith(kind), f"sent {content_type!r}, the spec declares {kind}"
    if kind == "application/json":
        body = json.loads(request.content)
        if MODE_FIELD in schema["properties"]:  # always sent, following stream=
            assert body.get(MODE_FIELD) == ("streaming" if streaming else "blocking")
    else:
        body = _form(request)
        for name in JSON_PARTS.keys() & body.keys():
            _validate(_json_part_schema(name), json.loads(body[name]), f"JSON part {name}")
    assert body.keys() <= schema["properties"].keys(), "undeclared body fields"
    _validate(schema, body, "request body")


# --- Tests ---------------------------------------------------------------------------------


def test_every_operation_has_one_canonical_row() -> None:
    rows, conflicts = _canonical()
    ops = _operations()
    assert not conflicts, "two definitions claim one operation_id: " + "; ".join(conflicts)
    assert rows.keys() <= ops.keys(), f"unknown operation ids {rows.keys() - ops.keys()}"
    for oid, (method, path, _, _) in ops.items():
        ep = rows.get(oid)
        assert ep is None or (ep.method, ep.path) == (method, path), f"{ep} is not {oid}"
    covered = len(ops.keys() & rows.keys())
    print(f"\nconformance: {covered} of {len(ops)} spec operations have a canonical row")
    assert len(ops) == EXPECTED_OPERATIONS
    assert covered >= EXPECTED_OPERATIONS, f"missing rows: {sorted(ops.keys() - rows.keys())}"


@pytest.mark.parametrize("oid", _operation_ids())
def test_request_fields_match_spec(oid: str) -> None:
    ep = _row(oid)
    _, _, op, params = _operations()[oid]
    _, schema, _ = _body(op)
    expected = {p["name"]: bool(p.get("required")) for p in params}
    expected |= {name: name in schema["required"] for name in schema.get("properties", {})}
    assert set(ep.fields) == expected.keys(), f"{ep.source}: struct fields differ from the spec"
    # Each parameter where the spec puts it.
    assert set(ep.path_fields) == {p["name"] for p in params if p["in"] == "path"}
    assert set(ep.query_fields) == {p["name"] for p in params if p["in"] == "query"}
    for name, required in expected.items():
        differs = (name in ep.required) != required
        assert differs == ((oid, name) in REQUIRED_DIFFERENCES), (
            f"{ep.source}: {name!r} required={not required}, the spec says {required}"
            if differs
            else f"stale REQUIRED_DIFFERENCES entry ({oid!r}, {name!r})"
        )
    # A JSON part's struct takes the fields of the document the spec describes.
    hints = typing.get_type_hints(ep.request) if ep.multipart else {}
    for name in JSON_PARTS.keys() & hints.keys():
        struct = next(a for a in typing.get_args(hints[name]) if hasattr(a, "__struct_fields__"))
        assert set(struct.__struct_fields__) == _json_part_schema(name)["properties"].keys()


@pytest.mark.parametrize("full", [False, True], ids=["spec-example", "every-field"])
@pytest.mark.parametrize("oid", _operation_ids())
def test_request_on_the_wire(oid: str, full: bool, request: pytest.FixtureRequest) -> None:
    """The spec's request example (or required fields), then every field, as sent."""
    if (oid, full) in KNOWN_WIRE_BUGS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_WIRE_BUGS[oid, full]))
    ep = _row(oid)
    args = _arguments(oid, ep, full)
    # Blocking when the row answers, streaming when it streams.
    for streaming in [False] * (not ep.stream_only) + [True] * (ep.stream is not None):
        sent, result = _exchange(ep, args, _answer(oid, ep, streaming), streaming)
        _check_wire(oid, sent, streaming)
        if streaming:
            assert result and type(result[-1]).final, "stream ended without a final event"
        elif ep.response is None:
            assert result is None
        else:  # a struct, list[struct] or bytes
            assert isinstance(result, typing.get_origin(ep.response) or ep.response)


@pytest.mark.parametrize("oid", _operation_ids())
def test_response_examples_decode(oid: str) -> None:
    ep = _row(oid)
    for status, kind, name, value in _examples(_operations()[oid][2]):
        if not status.startswith("2") or kind != "application/json":
            continue
        if ep.response is None:  # a row that answers nothing may only be sent nothing
            assert value in ({}, None), f"{ep.source} has no response struct for {name}"
        else:
            _decode(value, ep.response, f"{ep.source}: example {name}")


@pytest.mark.parametrize("oid", _operation_ids())
def test_stream_examples_decode(oid: str) -> None:
    ep = _row(oid)
    for _, kind, name, value in _examples(_operations()[oid][2]):
        if kind != "text/event-stream":
            continue
        other = SSE_EXAMPLE_ROWS.get((oid, name))
        row = INDEX[other[0]] if other else ep
        assert row.stream is not None, f"{row.source} has no stream union for example {name}"
        # The spec puts several "data: {...}" frames on one line.
        events = [json.loads(chunk) for chunk in value.split("data: ") if chunk.strip()]
        tags = {e["event"] for e in events}
        assert events and tags <= _tags(row.stream), (
            f"{name}: events {tags - _tags(row.stream)} are not in {row.qualname}'s union"
        )
        assert not other or tags - _tags(ep.stream), f"stale SSE_EXAMPLE_ROWS entry {name}"
        for event in events:
            _decode(event, row.stream, f"{row.source}: example {name}")


@pytest.mark.parametrize("oid", _operation_ids())
def test_error_examples(oid: str) -> None:
    """Error examples are Dify error bodies, and the client raises them with their code."""
    ep = _row(oid)
    args = _arguments(oid, ep, full=False)
    for status, kind, name, body in _examples(_operations()[oid][2]):
        if status[0] not in "45" or kind != "application/json":
            continue
        exempt = (oid, status, name) in ERROR_BODY_EXCEPTIONS
        is_dify = isinstance(body.get("code"), str) and isinstance(body.get("message"), str)
        assert is_dify != exempt, (
            f"stale ERROR_BODY_EXCEPTIONS entry {name}" if is_dify else f"{name}: {body}"
        )
        with pytest.raises(APIStatusError) as caught:
            _exchange(ep, args, httpx.Response(int(status), json=body), stream=False)
        error, message = caught.value, body["error"] if exempt else body["message"]
        assert (error.status_code, error.code) == (int(status), None if exempt else body["code"])
        # An empty message is replaced by the status text and the body.
        assert error.message == message or (not message and body["code"] in error.message)


def test_component_examples_are_reached() -> None:
    """Examples under components are checked through the operations that reference them."""
    used = json.dumps(_api()["paths"])
    for name in _api()["components"].get("responses", {}):
        assert f'"#/components/responses/{name}"' in used, f"no operation uses response {name}"
