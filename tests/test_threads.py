"""First use of an operation from many threads at once (msgspec builds tables lazily)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import threading, time
from dify_oapi import Client
from dify_oapi.emulator import Emulator
client = Client(api_key="app-x", base_url="http://emulator.local/v1", transport=Emulator())
errors = []
def worker(i):
    try:
        time.sleep(i * 0.0005)
        list(client.chat.send(query=f"q{i}", user="u", stream=True))
        client.workflow.run(inputs={}, user="u", collect=True)
    except BaseException as exc:
        errors.append(exc)
threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
assert not errors, errors
print("ok")
"""


def test_concurrent_first_use_in_fresh_processes() -> None:
    for _ in range(8):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr)
