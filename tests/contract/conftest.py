"""The contract suite's end-of-run table: same / different per area (recording file)."""

from __future__ import annotations

from typing import Any

from .outcomes import RESULTS, table


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    terminalreporter.section("contract: shape on Dify 1.14.2 vs the SDK and the emulator")
    for line in table():
        terminalreporter.write_line(line)
