"""The generated stub is current and documents every operation (what checkers make of it:
tests/typing/test_typing.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tools import stubgen as _stubgen

ROOT = Path(__file__).resolve().parents[1]


def test_committed_stub_is_current() -> None:
    assert _stubgen.STUB_PATH.read_text("utf-8") == _stubgen.generate(), (
        "stale stub: run `python -m tools.stubgen`"
    )


def test_check_mode_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _stubgen.main(["--check"]) == 0
    stale = tmp_path / "_services.pyi"
    stale.write_text("# old\n")
    monkeypatch.setattr(_stubgen, "STUB_PATH", stale)
    assert _stubgen.main(["--check"]) == 1


def _stub_classes() -> dict[str, ast.ClassDef]:
    tree = ast.parse(_stubgen.STUB_PATH.read_text("utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def test_every_generated_method_has_a_docstring() -> None:
    from dify_oapi._services import TABLES

    protocols = [c for c in _stub_classes().values() if c.name.endswith("Op")]
    assert protocols
    for cls in protocols:
        calls = [n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        assert calls, cls.name
        for call in calls:
            assert ast.get_docstring(call), f"{cls.name}.__call__ has no docstring"
        # The first form documents the whole operation: arguments, answer, errors.
        full = ast.get_docstring(calls[0]) or ""
        for section in ("Args:", "Returns:", "Raises:"):
            assert section in full, f"{cls.name}: no {section}"
    # Each row's own summary and request fields reach its operation's text.
    texts = {
        c.name: "\n".join(ast.get_docstring(f) or "" for f in c.body if isinstance(f, ast.stmt))
        for c in protocols
    }
    for table in TABLES.values():
        for ep in table.endpoints:
            text = next((t for t in texts.values() if f"client.call({ep.qualname!r})" in t), None)
            assert text is not None, f"no documented operation for {ep.qualname}"
            assert (ep.doc or ep.name.replace("_", " ").capitalize()).rstrip(".") in text
            for name in ep.fields:
                if ep.mode_field is None or name != ep.mode_field.name:
                    assert f"    {name} (" in text, f"{ep.qualname}: field {name} undocumented"


def test_stream_flag_known_at_run_time_gives_either_answer() -> None:
    send = _stub_classes()["SendOp"]
    forms = [ast.unparse(f) for f in send.body if isinstance(f, ast.FunctionDef)]
    flagged = [f for f in forms if "stream: bool" in f]
    assert flagged and all("-> ChatResponse | Stream[ChatEvent]" in f for f in flagged), forms


def test_every_service_and_operation_attribute_has_a_docstring() -> None:
    # Hovering ``client.chat`` or ``client.chat.send`` shows the text after the attribute.
    classes = [
        c
        for c in _stub_classes().values()
        if c.name.endswith(("Service", "Namespace", "ServiceAttributes"))
        and c.name not in ("Service", "Namespace")  # the hand-written bases
    ]
    assert len(classes) > 10
    for cls in classes:
        for i, node in enumerate(cls.body):
            if isinstance(node, ast.AnnAssign):
                after = cls.body[i + 1] if i + 1 < len(cls.body) else None
                assert isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant), (
                    f"{cls.name}.{ast.unparse(node.target)} has no docstring"
                )
