"""Smoke suite for an installed dify-oapi2: run it from a folder with no checkout in sight.

``.ci/run`` installs the wheel built through the sdist into a fresh virtual environment, copies
this folder to a temporary directory and runs it there, so every import below resolves to the
installed package. It needs pytest and nothing else besides the package.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

import dify_oapi
from dify_oapi import AsyncClient, Client
from dify_oapi.emulator import AppDefinition, Emulator
from dify_oapi.types import MessageEndEvent, MessageEvent

PACKAGE = Path(dify_oapi.__file__).resolve().parent
BASE = "http://emulator.local/v1"
REPLY = "Installed and answering."


def package_files() -> dict[str, int]:
    """Every file of the installed package (bytecode caches aside) and its size."""
    return {
        str(path.relative_to(PACKAGE)): path.stat().st_size
        for path in sorted(PACKAGE.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module", autouse=True)
def install_folder_untouched() -> object:
    """Nothing the tests below make the package do writes into its own install folder."""
    before = package_files()
    yield
    assert package_files() == before


def test_imported_from_site_packages_not_a_checkout() -> None:
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert PACKAGE.parent == purelib, f"dify_oapi imported from {PACKAGE}, not from {purelib}"
    assert not (PACKAGE.parents[1] / "pyproject.toml").exists()
    assert dify_oapi.__version__ == importlib.metadata.version("dify-oapi2")


def test_the_wheel_carries_tables_stubs_and_no_generators() -> None:
    files = package_files()
    tables = PACKAGE / "endpoints"
    assert tables.is_dir() and not tables.is_symlink()
    for service in ("chat", "chatflow", "completion", "dify", "knowledge", "workflow"):
        assert f"endpoints/{service}.toml" in files
    assert "endpoints/shared/conversations.toml" in files
    assert {"py.typed", "_services.pyi"} <= files.keys()
    assert not [name for name in files if "stubgen" in name or "docgen" in name]
    assert not [p for p in PACKAGE.rglob("*") if p.is_symlink()]


def test_every_operation_reachable_on_both_clients() -> None:
    with Client(api_key="app-smoke") as client:
        names = client.operations
        assert len(names) > 100
        services = {name.split(".")[0] for name in names}
        assert services == {"chat", "chatflow", "completion", "dify", "knowledge", "workflow"}
        for name in names:
            target: object = client
            for part in name.split("."):
                target = getattr(target, part)
            assert callable(target), name

    async def reach_async() -> None:
        async with AsyncClient(api_key="app-smoke") as aclient:
            assert aclient.operations == names
            for name in names:
                target: object = aclient
                for part in name.split("."):
                    target = getattr(target, part)
                assert callable(target), name

    asyncio.run(reach_async())


def test_exact_request_on_the_wire() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"answer": "from the wheel", "conversation_id": "c"})

    with Client(api_key="app-k", base_url=BASE, transport=httpx.MockTransport(handler)) as client:
        result = client.chat.send(query="hi", user="u")
    assert result.answer == "from the wheel"
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/chat-messages")
    assert request.headers["authorization"] == "Bearer app-k"
    assert request.content == b'{"query":"hi","user":"u","inputs":{},"response_mode":"blocking"}'


def test_blocking_and_streaming_chat_on_the_emulator() -> None:
    emulator = Emulator(app=AppDefinition(replies=[REPLY, REPLY]))
    with Client(api_key="app-smoke", base_url=BASE, transport=emulator) as client:
        answer = client.chat.send(query="Hello", user="u1")
        assert answer.answer == REPLY and answer.conversation_id
        with client.chat.send(
            query="Again", user="u1", conversation_id=answer.conversation_id, stream=True
        ) as stream:
            events = list(stream)
        assert "".join(e.answer for e in events if isinstance(e, MessageEvent)) == REPLY
        assert isinstance(events[-1], MessageEndEvent)
        assert stream.answer == REPLY
        history = client.chat.list_messages(conversation_id=answer.conversation_id, user="u1")
        assert [m.query for m in history.data] == ["Hello", "Again"]


def test_async_blocking_and_streaming_on_the_emulator() -> None:
    async def run() -> tuple[str, str]:
        emulator = Emulator(app=AppDefinition(replies=[REPLY, REPLY]))
        async with AsyncClient(api_key="app-smoke", base_url=BASE, transport=emulator) as client:
            answer = await client.chat.send(query="Hello", user="u1")
            stream = await client.chat.send(query="Hello", user="u1", stream=True)
            parts = [e.answer async for e in stream if isinstance(e, MessageEvent)]
            return answer.answer or "", "".join(parts)

    assert asyncio.run(run()) == (REPLY, REPLY)


def test_emulator_over_loopback() -> None:
    with Emulator(app=AppDefinition(replies=[REPLY])).serve() as server:
        assert server.url.startswith("http://127.0.0.1:")
        with Client(api_key="app-smoke", base_url=server.url, timeout=10) as client:
            assert client.chat.send(query="Hello", user="u1").answer == REPLY


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIFY_API_KEY", "DIFY_BASE_URL")}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def test_python_m_dify_oapi_demo() -> None:
    done = run_command(sys.executable, "-m", "dify_oapi", "demo")
    assert done.returncode == 0, done.stderr
    assert "== Chat with 'Demo app' (streaming)" in done.stdout
    assert "indexed tides.md: completed" in done.stdout
    assert "run succeeded, outputs {'summary': 'A short note on tides.'}" in done.stdout


def test_console_script() -> None:
    script = Path(sysconfig.get_paths()["scripts"]) / (
        "dify-oapi.exe" if sys.platform == "win32" else "dify-oapi"
    )
    assert script.is_file()
    version = run_command(str(script), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.split() == ["dify-oapi", dify_oapi.__version__]
    chat = run_command(str(script), "--emulator", "--json", "chat", "Echo me")
    assert chat.returncode == 0, chat.stderr
    assert json.loads(chat.stdout)["answer"] == "Echo me"  # the default app echoes the query
