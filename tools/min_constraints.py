"""Print a pip constraints file pinning every direct dependency to its declared lower bound.

``python tools/min_constraints.py [EXTRA ...]`` reads ``pyproject.toml``: the run-time
dependencies and those of the named extras. ``name>=X`` becomes ``name==X`` (an exact ``==``
pin stays); markers are kept. ``.ci/run`` installs with the result as ``PIP_CONSTRAINT`` and
runs the suite, so a lower bound the suite does not pass on fails CI. A dependency without a
lower bound is an error: nothing would prove it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, no-redef]

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def constraints(extras: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]
    requirements = list(project["dependencies"])
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"no extra named {extra!r} in {PYPROJECT}")
        requirements += optional[extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        name, _extras, specifier, marker = match.groups()
        bound = re.search(r"(?:>=|==)\s*([^,\s]+)", specifier)
        if bound is None:
            raise SystemExit(f"{requirement!r} declares no lower bound")
        line = f"{name}=={bound.group(1)}" + (f" {marker}" if marker else "")
        key = re.sub(r"[-_.]+", "-", name).lower() + (marker or "")
        if pins.setdefault(key, line) != line:
            raise SystemExit(f"two lower bounds for {name}: {pins[key]!r} and {line!r}")
    return list(pins.values())


if __name__ == "__main__":
    print("\n".join(constraints(sys.argv[1:])))
