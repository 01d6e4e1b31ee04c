"""The built wheel ships the tables and stubs, and works from a fresh virtual environment."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import httpx, dify_oapi, pathlib
tables = pathlib.Path(dify_oapi.__file__).parent / "endpoints"
assert (tables / "chat.toml").is_file() and not (tables).is_symlink(), tables
seen = []
def handler(request):
    seen.append(request)
    return httpx.Response(200, json={"answer": "from the wheel", "conversation_id": "c"})
client = dify_oapi.Client(api_key="app-k", base_url="https://dify.test/v1",
                          transport=httpx.MockTransport(handler))
result = client.chat.send(query="hi", user="u")
assert str(seen[0].url) == "https://dify.test/v1/chat-messages", seen[0].url
assert seen[0].content == b'{"query":"hi","user":"u","inputs":{},"response_mode":"blocking"}'
print(result.answer)
"""


@pytest.mark.slow
def test_wheel_installs_and_calls(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(dist)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("dify_oapi2-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dify_oapi/endpoints/chat.toml" in names
    assert "dify_oapi/endpoints/shared/conversations.toml" in names
    assert "dify_oapi/_services.pyi" in names and "dify_oapi/py.typed" in names
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True
    )
    done = subprocess.run([python, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "from the wheel"
