"""The generated stubs are current, and type checkers see exact types through them."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


@pytest.mark.skipif(shutil.which("mypy") is None and sys.platform != "linux", reason="no mypy")
def test_types_seen_through_stubs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "tests/typing/check_stubs.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
