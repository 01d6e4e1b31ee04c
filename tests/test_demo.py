"""The README's first command: the demo runs against the embedded emulator, no network."""

from __future__ import annotations

import subprocess
import sys

from dify_oapi._demo import ANSWER


def test_demo_runs_chat_knowledge_and_workflow() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dify_oapi", "demo"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "== Chat with 'Demo app' (streaming)" in out
    assert ANSWER in out
    assert "indexed tides.md: completed" in out and "indexed volcanoes.md: completed" in out
    knowledge = out.split("== Knowledge base from two files")[1].split("== Workflow")[0]
    hits = [line for line in knowledge.splitlines() if line[:1].isdigit()]
    assert "Spring tides" in hits[0]  # the best-ranked chunk answers the question
    assert "run succeeded, outputs {'summary': 'A short note on tides.'}" in out
