"""Shared fixtures: clients on a fake base URL, recorded retry sleeps, SSE bodies; a closing
report of every skipped group and why."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import dify_oapi._client as client_module
from dify_oapi import AsyncClient, Client

from .httpx_mock import HTTPXMock

# tests/smoke runs against an installed wheel from a folder of its own (see .ci/run), never from
# the checkout, where its first test would fail by design.
collect_ignore = ["smoke"]

BASE = "https://dify.test/v1"
KEY = "app-SECRETKEY1234567890"
# The official spec and the founding list live beside the checkout (CI lays them there), not in
# the repository; DIFY_OAPI_SHARED points elsewhere.
SHARED = Path(os.environ.get("DIFY_OAPI_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SPEC_PATH = SHARED / "dify-api" / "openapi_service.json"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits, recorded instead of slept (sync and async)."""
    recorded: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", recorded.append)
    monkeypatch.setattr(client_module, "_async_sleep", fake_async_sleep)
    return recorded


@pytest.fixture
def httpx_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPXMock]:
    """Every httpx transport in the test answers from registered responses (see httpx_mock.py)."""
    mock = HTTPXMock()

    def handle(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        return mock.transport.handle_request(request)

    async def handle_async(
        transport: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        return await mock.transport.handle_async_request(request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle_async)
    yield mock
    mock.verify()


@pytest.fixture
def client(sleeps: list[float]) -> Iterator[Client]:
    with Client(api_key=KEY, base_url=BASE) as c:
        yield c


@pytest.fixture
async def aclient(sleeps: list[float]) -> Any:
    async with AsyncClient(api_key=KEY, base_url=BASE) as c:
        yield c


def sse(events: Iterable[dict[str, Any] | str], newline: str = "\n") -> bytes:
    """An SSE body: dicts become ``data:`` frames, strings are sent as raw frames."""
    out = []
    for event in events:
        frame = event if isinstance(event, str) else "data: " + json.dumps(event)
        out.append(frame.replace("\n", newline) + newline + newline)
    return "".join(out).encode()


SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"the official spec is not at {SPEC_PATH} (CI has it beside the checkout)")
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text("utf-8"))
    return data


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per skipped group (test file and reason), so a run that tested less says so."""
    groups: dict[tuple[str, str], int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        if isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        else:
            reason = "no reason given"
        where = report.nodeid.split("::")[0]
        groups[where, reason] = groups.get((where, reason), 0) + 1
    if not groups:
        return
    terminalreporter.section("what was skipped, and why")
    for (where, reason), count in sorted(groups.items()):
        terminalreporter.write_line(f"SKIPPED {count} in {where}: {reason}")
