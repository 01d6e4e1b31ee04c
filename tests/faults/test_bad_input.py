"""Bad input: each gets a clear typed error before any request is sent, or is encoded so
safely that the request still goes to the operation's own path — never to another one.

Requests go to the local server, which records the raw request target as it came off the
wire, so an encoding slip shows up exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from dify_oapi import (
    Client,
    ConfigurationError,
    DifyError,
    InvalidArgumentsError,
    RequestValidationError,
)
from dify_oapi.types import ChatRequest

from .conftest import KEY, client_options
from .server import FaultServer, respond

pytestmark = pytest.mark.faults

# Path parameters that try to leave their segment: separators, dot segments, query and
# fragment starts, pre-encoded text, whitespace, control characters, absolute URLs.
IDS = [
    "plain-id",
    "a/b",
    "../../admin",
    "a/../../x",
    "./x",
    "?user=other",
    "id?x=1",
    "#fragment",
    "id#x",
    "%2F",
    "a%2Fb",
    "%2e%2e",
    "..%2F..%2F",
    "with space",
    "line\nbreak",
    "cr\rlf",
    "tab\there",
    "nul\x00byte",
    "ünïcødé-日本",
    "a\r\nX-Injected: 1",
    "http://evil.example/steal",
    "//evil.example/x",
    "\\..\\windows",
    ";param=1",
    "@evil.example",
    "~user",
]
REFUSED = ["", ".", ".."]  # nothing to send: these would name another resource

OPS = [
    ("GET", "dify.get_end_user", "/v1/end-users/{}", lambda v: {"end_user_id": v}),
    ("POST", "chat.stop", "/v1/chat-messages/{}/stop", lambda v: {"task_id": v, "user": "u"}),
    (
        "GET",
        "knowledge.get_document",
        "/v1/datasets/{}/documents/doc-1",
        lambda v: {"dataset_id": v, "document_id": "doc-1"},
    ),
]


@pytest.mark.parametrize(("method", "op", "template", "args"), OPS, ids=[o[1] for o in OPS])
@pytest.mark.parametrize("value", IDS, ids=repr)
def test_path_ids_stay_in_their_segment(
    server: FaultServer, method: str, op: str, template: str, args: Any, value: str
) -> None:
    expected_path = template.format(quote(value, safe=""))
    server.route(method, expected_path, respond(json={"result": "success", "id": "x"}))
    with Client(**client_options(server, max_retries=0)) as client:
        try:
            client.call(op, **args(value))
        except RequestValidationError as exc:  # refusing is as good as encoding
            assert str(exc).startswith(f"{op}: ")
            assert server.requests == []
            return
    (received,) = server.requests
    assert received.method == method
    assert received.target == expected_path, received.target
    assert received.query == ""


@pytest.mark.parametrize(("method", "op", "template", "args"), OPS, ids=[o[1] for o in OPS])
@pytest.mark.parametrize("value", REFUSED, ids=repr)
def test_empty_and_dot_ids_are_refused(
    client: Client, server: FaultServer, method: str, op: str, template: str, args: Any, value: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.call(op, **args(value))
    assert str(info.value).startswith(f"{op}: ") and info.value.field is not None
    assert server.requests == []


def test_query_values_are_encoded(client: Client, server: FaultServer) -> None:
    server.route("GET", "/v1/messages", respond(json={"data": [], "has_more": False, "limit": 20}))
    nasty = "u&limit=1000#x y/ü"
    client.chat.list_messages(conversation_id="5a1e0000-0000-4000-8000-000000000001", user=nasty)
    (received,) = server.requests
    assert dict(received.params) == {
        "conversation_id": "5a1e0000-0000-4000-8000-000000000001",
        "user": nasty,
    }
    assert received.path == "/v1/messages"


# -- headers ---------------------------------------------------------------------------------

SPLITTING = [
    {"X-Trace": "a\r\nX-Injected: 1"},
    {"X-Trace": "a\nb"},
    {"X-Trace": "a\rb"},
    {"X-Trace": "a\x00b"},
    {"X-Trace\r\nX-Injected": "1"},
]


@pytest.mark.parametrize("headers", SPLITTING, ids=repr)
def test_header_line_breaks_are_refused(
    client: Client, server: FaultServer, headers: dict[str, str]
) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.dify.get_info(extra_headers=headers)
    assert "dify.get_info" in str(info.value)
    with pytest.raises(DifyError) as ctor:
        Client(api_key=KEY, base_url=server.base_url, default_headers=headers)
    assert isinstance(ctor.value, ValueError)
    assert server.requests == []


ODD_HEADERS = [
    pytest.param(
        {"X-Trace": "é"},
        id="non-ascii-value",
    ),
    pytest.param({"X-Trace": 5}, id="int-value"),
    pytest.param({"X-Trace": None}, id="none-value"),
    pytest.param({5: "v"}, id="int-name"),
]


@pytest.mark.parametrize("headers", ODD_HEADERS)
def test_unsendable_header_values_are_refused_before_sending(
    client: Client, server: FaultServer, headers: dict[Any, Any]
) -> None:
    with pytest.raises(DifyError) as info:
        client.dify.get_info(extra_headers=headers)
    assert "dify.get_info" in str(info.value)
    assert server.requests == []


# -- API keys and base URLs -------------------------------------------------------------------

BAD_KEYS = ["", "   ", " app-key", "app-key ", "app key", "app-key\n", "app\tkey", "app\r\nkey"]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_api_keys_are_configuration_errors(
    client: Client, server: FaultServer, key: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Client(api_key=key, base_url=server.base_url)
    assert not key.strip() or key.strip() not in str(info.value)
    with pytest.raises(ConfigurationError):
        client.dify.get_info(api_key=key)  # the same check per call
    assert server.requests == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("app-kéy", id="non-ascii"),
        pytest.param("app-\u200bkey", id="zero-width-space"),
        pytest.param(
            "app-key\x7f",
            id="DEL",
        ),
    ],
)
def test_unsendable_api_keys_are_configuration_errors(server: FaultServer, key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Client(api_key=key, base_url=server.base_url)
    assert key not in str(info.value) and key not in repr(info.value)
    assert server.requests == []


def test_missing_api_key_fails_before_sending(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    # Without a key the client cannot be built at all: the mistake shows at start-up.
    with pytest.raises(ConfigurationError, match="DIFY_API_KEY"):
        Client(base_url=server.base_url)
    assert server.requests == []


@pytest.mark.parametrize(
    "base",
    [
        "127.0.0.1:5001/v1",
        "localhost:5001",
        "dify.example.com",
        "//dify.example.com/v1",
        "ftp://dify.example.com/v1",
        "http://",
        "https:///v1",
        "http://x/v1?key=1",
        "http://x/v1#frag",
        pytest.param(
            "http://[::1/v1",
            id="bad-ipv6-literal",
        ),
    ],
)
def test_unusable_base_urls_are_configuration_errors(base: str) -> None:
    with pytest.raises(ConfigurationError):
        Client(api_key=KEY, base_url=base)


@pytest.mark.parametrize(
    ("suffix", "path"),
    [
        ("", "/v1/info"),
        ("/", "/v1/info"),
        ("/v1", "/v1/info"),
        ("/v1/", "/v1/info"),
        ("/api/v1", "/api/v1/info"),
        ("/api/v1/", "/api/v1/info"),
    ],
)
def test_base_url_forms_reach_the_same_path(server: FaultServer, suffix: str, path: str) -> None:
    server.route("GET", path, respond(json={"name": "app"}))
    with Client(api_key=KEY, base_url=server.origin + suffix) as client:
        assert client.dify.get_info().name == "app"
    assert [r.target for r in server.requests] == [path]


# -- files -----------------------------------------------------------------------------------


def test_missing_file_path(client: Client, server: FaultServer, tmp_path: Path) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.dify.upload_file(file=tmp_path / "nope.bin", user="u")
    assert info.value.field == "$.file" and "no such file" in str(info.value)
    assert server.requests == []


def test_directory_as_file(client: Client, server: FaultServer, tmp_path: Path) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.dify.upload_file(file=str(tmp_path), user="u")
    assert info.value.field == "$.file" and "not a regular file" in str(info.value)
    assert server.requests == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(("a/b.txt", b"x"), id="slash-in-name"),
        pytest.param(("", b"x"), id="empty-name"),
        pytest.param(("a.txt",), id="short-tuple"),
        pytest.param(("a.txt", "text, not bytes"), id="str-content"),
        pytest.param(12345, id="int"),
    ],
)
def test_bad_file_values(client: Client, server: FaultServer, value: Any) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.dify.upload_file(file=value, user="u")
    assert info.value.field == "$.file"
    assert server.requests == []


def test_text_mode_file_is_refused(client: Client, server: FaultServer, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("hello")
    with open(path) as f, pytest.raises(RequestValidationError):
        client.dify.upload_file(file=f, user="u")  # type: ignore[arg-type]
    assert server.requests == []


# -- values that cannot be encoded -----------------------------------------------------------


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"inputs": {"x": object()}}, id="object"),
        pytest.param({"inputs": {1: "int key"}}, id="int-key"),
        pytest.param(
            {"inputs": _circular()},
            id="circular",
        ),
        pytest.param({"query": "lone \ud800 surrogate"}, id="lone-surrogate"),
        pytest.param({"inputs": {"x": "\udfff"}}, id="lone-surrogate-in-inputs"),
    ],
)
def test_unencodable_inputs_are_typed_errors(
    client: Client, server: FaultServer, kwargs: dict[str, Any]
) -> None:
    args = {"query": "q", "user": "u", **kwargs}
    with pytest.raises(RequestValidationError) as info:
        client.chat.send(**args)
    assert str(info.value).startswith("chat.send: ")
    assert server.requests == []


# -- a wrong type in every field kind --------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "kwargs", "field"),
    [
        ("chat.send", {"query": 5, "user": "u"}, "$.query"),  # string
        ("knowledge.list_datasets", {"limit": "ten"}, "$.limit"),  # int
        ("knowledge.list_datasets", {"limit": 2.5}, "$.limit"),  # int, given a float
        (
            "dify.submit_feedback",
            {"message_id": "5a1e0000-0000-4000-8000-000000000002", "user": "u", "rating": "meh"},
            "$.rating",
        ),
        ("chat.send", {"query": "q", "user": "u", "files": [{"type": "image"}]}, "$.files[0]"),
        (
            "chat.send",
            {
                "query": "q",
                "user": "u",
                "files": [{"type": "gif", "transfer_method": "remote_url"}],
            },
            "$.files[0].type",
        ),  # enum inside a nested struct
        ("chat.send", {"query": "q", "user": "u", "files": "not-a-list"}, "$.files"),  # list
        ("chat.send", {"query": "q", "user": "u", "inputs": [1, 2]}, "$.inputs"),  # dict
        (
            "dify.preview_file",
            {"file_id": "5a1e0000-0000-4000-8000-000000000003", "as_attachment": "yes"},
            "$.as_attachment",
        ),  # bool
        ("chat.send", {"query": None, "user": "u"}, "$.query"),  # null for a required string
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("$") else None,
)
def test_wrong_types_are_refused_with_the_field(
    client: Client, server: FaultServer, op: str, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.call(op, **kwargs)
    error = info.value
    assert error.operation == op and str(error).startswith(f"{op}: ")
    assert error.field is not None and error.field.startswith(field), error.field
    assert isinstance(error, ValueError)
    assert server.requests == []


def test_wrong_request_struct_and_unknown_arguments(client: Client, server: FaultServer) -> None:
    with pytest.raises(RequestValidationError):
        client.completion.send(ChatRequest(query="q", user="u"))  # type: ignore[call-overload]
    with pytest.raises(InvalidArgumentsError) as info:
        client.chat.send(query="q", user="u", querry="typo")  # type: ignore[call-overload]
    assert "did you mean 'query'" in str(info.value)
    with pytest.raises(InvalidArgumentsError):
        client.chat.send(query="q")  # type: ignore[call-overload]  # user is required
    assert server.requests == []
