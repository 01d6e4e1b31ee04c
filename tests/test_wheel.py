"""``python -m build`` (sdist first, then the wheel from the unpacked sdist, as pip does for
anyone installing from an sdist) ships the tables and stubs, and leaves the generators out.

The installed wheel itself is exercised by ``tests/smoke`` (``.ci/run`` installs it alone
into a fresh virtual environment and runs that suite there).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted(
    str(p.relative_to(ROOT / "src")) for p in (ROOT / "src/dify_oapi/endpoints").rglob("*.toml")
)


@pytest.mark.slow
def test_build_through_the_sdist(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed (the copy of the tree below uses git ls-files)")
    # Build from a copy of what git tracks: a checkout's stray files (venvs, caches) stay out.
    tree = tmp_path / "tree"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name, follow_symlinks=False)
    dist = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(tree)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = re.findall(r'"(.+)"', (ROOT / "src/dify_oapi/_version.py").read_text())[0]
    (sdist,) = dist.glob("dify_oapi2-*.tar.gz")
    (wheel,) = dist.glob("dify_oapi2-*.whl")
    assert sdist.name == f"dify_oapi2-{version}.tar.gz"
    assert wheel.name == f"dify_oapi2-{version}-py3-none-any.whl"

    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
    assert not [name for name, m in members.items() if m.issym() or m.islnk()]
    for table in TABLES:
        assert members[f"src/{table}"].isfile(), table
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"} <= members.keys()

    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(TABLES) <= names
    assert {"dify_oapi/_services.pyi", "dify_oapi/py.typed", "dify_oapi/__main__.py"} <= names
    assert not [n for n in names if n.startswith("tools/") or "stubgen" in n or "docgen" in n]
    assert not [n for n in names if n.startswith("tests/")]
    metadata = zipfile.ZipFile(wheel).read(f"dify_oapi2-{version}.dist-info/METADATA").decode()
    assert f"Version: {version}\n" in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"dify_oapi2-{version}.dist-info/entry_points.txt")
    assert b"dify-oapi = dify_oapi.__main__:main" in entry_points
