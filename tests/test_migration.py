"""docs/migration.md: every 2.x block runs, in order, against the emulator on a local socket;
every 1.x block at least compiles, and each section shows both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dify_oapi.emulator import AppDefinition, Emulator

PAGE = Path(__file__).resolve().parents[1] / "docs" / "migration.md"
PUBLIC = "https://api.dify.ai/v1"


def sections() -> list[tuple[str, list[str]]]:
    """(heading, python blocks) for every ``##`` section that has code."""
    out = []
    for chunk in re.split(r"^## ", PAGE.read_text("utf-8"), flags=re.M)[1:]:
        heading = chunk.splitlines()[0]
        blocks = re.findall(r"```python\n(.*?)```", chunk, re.S)
        if blocks:
            out.append((heading, blocks))
    return out


def blocks(version: str) -> list[str]:
    return [b for _, bs in sections() for b in bs if b.startswith(f"# {version}")]


def test_each_section_shows_both_versions() -> None:
    found = sections()
    assert len(found) >= 10
    for heading, code in found:
        kinds = sorted({b.split(None, 2)[1].rstrip(":") for b in code})
        assert kinds == ["1.x", "2.x"], heading


def test_old_blocks_compile() -> None:
    for index, block in enumerate(blocks("1.x")):
        compile(block, f"{PAGE.name}: 1.x block {index}", "exec")


def test_new_blocks_run_against_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "handbook.md").write_text("Volcanoes vent magma through the crust.\n", "utf-8")
    emulator = Emulator(app=AppDefinition(replies=["Hi there!"]), indexing_seconds=0.05)
    namespace: dict[str, Any] = {}
    new = blocks("2.x")
    assert PUBLIC in new[0]  # the set-up block names the address the test swaps for its own
    with emulator.serve() as server:
        for index, block in enumerate(new):
            code = compile(block.replace(PUBLIC, server.url), f"2.x block {index}", "exec")
            exec(code, namespace)
    shown = capsys.readouterr().out

    assert namespace["answer"].answer == "Hi there!"
    assert namespace["conversation_id"] == namespace["answer"].conversation_id
    assert namespace["story"] and namespace["story"] in shown
    assert namespace["result"].answer and namespace["run"].data.status == "succeeded"
    assert namespace["run"].data.outputs == {"text": "tides"}  # the inputs arrived unnested
    assert "Greetings" in namespace["names"]
    assert [m.query for m in namespace["history"].data] == ["Hello"]
    assert namespace["uploaded"].id and namespace["uploaded"].name == "notes.txt"
    assert [s.indexing_status for s in namespace["statuses"]] == ["completed"]
    assert namespace["docs"].total == 2
    assert sorted(d.name for d in namespace["every_document"]) == ["Tides", "handbook.md"]
    assert any("sea levels" in r.segment.content for r in namespace["found"].records)
    contents = [s.content for s in namespace["segments"].data]
    assert "Spring tides come at new and full moon." in contents
    assert "409 dataset_name_duplicate" in shown  # the Errors block met its ConflictError
