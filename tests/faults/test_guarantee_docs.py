"""docs/guarantees.md names only tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_guarantees_page_names_exists() -> None:
    page = (ROOT / "docs" / "guarantees.md").read_text("utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page)
    assert len(named) >= 30
    for path, name in named:
        tree = ast.parse((ROOT / path).read_text("utf-8"))
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        assert name in defined, f"{path}::{name} is named in docs/guarantees.md but not defined"
