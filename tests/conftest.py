"""Shared fixtures: clients on a fake base URL, recorded retry sleeps, SSE bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dify_oapi._client as client_module
from dify_oapi import AsyncClient, Client

BASE = "https://dify.test/v1"
KEY = "app-SECRETKEY1234567890"
SPEC_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "dify-api" / "openapi_service.json"
)


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
