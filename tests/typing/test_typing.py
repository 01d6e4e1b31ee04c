"""Sample user code checked by mypy --strict and by pyright (basedpyright, strict mode).

``ok_*.py`` must pass both with no error; in ``bad_*.py`` each line marked
``# expect-error`` must be flagged by both, and no other line. Run as subprocesses, the way
a user's CI runs them, against the installed package and its generated stub.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SAMPLES = sorted([*HERE.glob("ok_*.py"), *HERE.glob("bad_*.py")])
MARK = re.compile(r"#\s*expect-error\b")

Found = dict[str, set[int]]  # file name -> lines with an error


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        msg = f"{module} is not installed (it comes with the lint extra: pip install -e .[lint])"
        print(f"SKIP: {msg}", file=sys.stderr)
        pytest.skip(msg)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args, *map(str, SAMPLES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _mypy() -> Found:
    done = _run(["mypy", "--strict", "--no-incremental", "--hide-error-context", "--no-pretty"])
    found: Found = {}
    for line in done.stdout.splitlines():
        match = re.match(r"(.+?\.py):(\d+): error:", line)
        if match:
            found.setdefault(Path(match[1]).name, set()).add(int(match[2]))
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2 is a crash or bad usage
    return found


def _pyright() -> Found:
    done = _run(
        [
            "basedpyright",
            "--outputjson",
            "--pythonpath",
            sys.executable,
            "-p",
            str(HERE / "pyrightconfig.json"),
        ]
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    found: Found = {}
    for diag in json.loads(done.stdout)["generalDiagnostics"]:
        if diag["severity"] == "error":
            line = diag["range"]["start"]["line"] + 1  # zero-based in the JSON
            found.setdefault(Path(diag["file"]).name, set()).add(line)
    return found


def _expected() -> Found:
    return {
        path.name: {
            n for n, text in enumerate(path.read_text().splitlines(), 1) if MARK.search(text)
        }
        for path in SAMPLES
    }


@pytest.mark.parametrize(("module", "check"), [("mypy", _mypy), ("basedpyright", _pyright)])
def test_checker_flags_exactly_the_marked_lines(module: str, check: Callable[[], Found]) -> None:
    _need(module)
    expected = _expected()
    # The samples must test something: at least one clean file and marked mistakes.
    assert any(name.startswith("ok_") for name in expected)
    assert all(expected[name] for name in expected if name.startswith("bad_"))
    assert not any(expected[name] for name in expected if name.startswith("ok_"))
    found = check()
    report = {}
    for name in expected:
        missed = sorted(expected[name] - found.get(name, set()))
        extra = sorted(found.get(name, set()) - expected[name])
        if missed or extra:
            report[name] = {"not flagged": missed, "flagged but unmarked": extra}
    assert not report, f"{module}: {report}"
