"""Table rows are checked when they load: a bad row names its file, row and reason."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest

import dify_oapi.types as types
from dify_oapi import Client, EndpointTableError, load_table
from dify_oapi._services import ENDPOINTS, SERVICE_NAMES
from dify_oapi.types import Model, Request, UnsetType

from .conftest import BASE, KEY


class EchoRequest(Request):
    """Used by the user table test through ``tests.test_table:EchoRequest``."""

    thing_id: str
    verbose: bool | UnsetType = msgspec.UNSET


class Echo(Model):
    id: str | None = None


ROW = """
[[endpoint]]
name = "get_thing"
method = "GET"
path = "/things/{thing_id}"
request = "tests.test_table:EchoRequest"
response = "tests.test_table:Echo"
"""


def write(tmp_path: Path, text: str, name: str = "extra.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            ROW.replace("tests.test_table:EchoRequest", "NoSuchStruct"),
            "unknown struct 'NoSuchStruct'",
        ),
        (ROW.replace("{thing_id}", "{thing}"), "path placeholder {thing} is not a field"),
        (ROW + ROW, "name 'get_thing' already used by"),
        (
            ROW.replace('method = "GET"', 'method = "GET"\nbody = true'),
            "GET row cannot have a body",
        ),
        (ROW.replace('method = "GET"', 'method = "FETCH"'), "method 'FETCH'"),
        (ROW.replace('name = "get_thing"', 'name = "get-thing"'), "not a public Python identifier"),
        (
            ROW.replace('method = "GET"', 'method = "GET"\ncolour = "red"'),
            "unknown keys ['colour']",
        ),
        (ROW.replace('path = "/things/{thing_id}"', 'path = "things"'), "must start with '/'"),
        (ROW.replace('method = "GET"', 'method = "GET"\nstream = "AppInfo"'), "not a tagged union"),
        (
            ROW.replace('request = "tests.test_table:EchoRequest"', 'request = "AppInfo"'),
            "not a dify_oapi.types.Request struct",
        ),
        (ROW.replace('tests.test_table:Echo"', 'nosuchmodule:Echo"'), "cannot import"),
        (ROW.replace('method = "GET"', 'method = "GET"\nquery = ["nope"]'), "query field 'nope'"),
        ("[[endpoint]]\nname = 'x'\n", "missing or non-string 'method'"),
        ("this is not toml = = =", "extra.toml"),
        ('include = ["missing"]\n', "missing.toml"),
        ('[aliases]\n"a.b" = "nope"\n' + ROW, "alias 'a.b' names unknown 'nope'"),
    ],
)
def test_bad_rows_fail_at_load_with_file_row_and_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(EndpointTableError) as info:
        load_table(path, vars(types))
    message = str(info.value)
    assert str(path.name) in message and reason in message
    if "row" in reason or "[[endpoint]]" in text:
        assert "row" in message or "extra.toml" in message


def test_call_option_names_cannot_be_fields(tmp_path: Path) -> None:
    class Clash(Request):
        stream: bool

    with pytest.raises(EndpointTableError, match="clash with call options"):
        from dify_oapi import Endpoint

        Endpoint("POST", "/x", Clash, name="x", service="t")


def test_circular_include(tmp_path: Path) -> None:
    write(tmp_path, 'include = ["b"]\n', "a.toml")
    write(tmp_path, 'include = ["a"]\n', "b.toml")
    with pytest.raises(EndpointTableError, match="circular"):
        load_table(tmp_path / "a.toml", vars(types))


def test_user_table_adds_endpoints(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ROW.replace('name = "get_thing"', 'name = "get_thing"\naliases = ["thing.get"]'),
        "things.toml",
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "t/1", "extra": 1})

    client = Client(
        api_key=KEY, base_url=BASE, transport=httpx.MockTransport(handler), extra_endpoints=[path]
    )
    result = client.things.get_thing(thing_id="t/1", verbose=True)  # type: ignore[attr-defined]
    again = client.call("things.thing.get", thing_id="t/1")
    assert result == Echo(id="t/1") and again == result
    assert str(seen[0].url) == f"{BASE}/things/t%2F1?verbose=true"
    assert str(seen[1].url) == f"{BASE}/things/t%2F1"
    assert client.chat.send.__name__ == "send"  # shipped services are untouched
    plain = Client(api_key=KEY)
    with pytest.raises(AttributeError):
        plain.things  # noqa: B018


def test_user_table_extends_a_shipped_service(tmp_path: Path) -> None:
    path = write(tmp_path, ROW, "chat.toml")
    client = Client(api_key=KEY, extra_endpoints=path)
    assert hasattr(client.chat, "get_thing") and hasattr(client.chat, "send")
    assert "chat.get_thing" in client.operations


def test_shipped_tables_are_complete_and_named_by_convention() -> None:
    assert tuple(ENDPOINTS) == SERVICE_NAMES
    verbs = (
        "list_",
        "get_",
        "create_",
        "update_",
        "delete_",
        "upload_",
        "download_",
        "bind_",
        "unbind_",
        "rename_",
        "submit_",
        "preview_",
        "audio_",
        "text_",
        "stream_",
        "run",
    )
    for service, endpoints in ENDPOINTS.items():
        assert endpoints, service
        for ep in endpoints:
            assert ep.name in ("send", "stop", "retrieve") or ep.name.startswith(verbs), ep
            assert ep.doc, ep
