"""The README's first lines and its emulator example stay true."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_first_lines_are_the_two_commands() -> None:
    lines = README.read_text("utf-8").splitlines()
    assert lines[0] == "```sh" and lines[3] == "```"
    assert lines[1].endswith("python -m dify_oapi demo")
    assert lines[2].endswith("python -m pytest -q")


def test_emulator_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), re.S)
    (example,) = [b for b in blocks if "from dify_oapi.emulator import" in b]
    exec(compile(example, "README.md", "exec"), {})
