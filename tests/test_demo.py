"""The README's first command: the demo streams a chat answer with no network."""

from __future__ import annotations

import subprocess
import sys

from dify_oapi._demo import ANSWER


def test_demo_streams_the_answer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dify_oapi", "demo"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "App: Demo chat app"
    assert lines[2] == "Assistant: " + " ".join(w for w in ANSWER.split(" ")) + " "
    assert lines[3] == "[conversation conv-1, 42 tokens]"


def test_unknown_command_exits_2() -> None:
    done = subprocess.run([sys.executable, "-m", "dify_oapi", "nope"], capture_output=True)
    assert done.returncode == 2
