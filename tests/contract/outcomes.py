"""Per-exchange results of the contract suite, gathered for the end-of-run table."""

from __future__ import annotations

from collections import defaultdict

from tests.recordings import Exchange

#: (check, area) -> {exchange name: same?}; a check is "replay", "in-process", "loopback".
RESULTS: dict[tuple[str, str], dict[str, bool]] = defaultdict(dict)


def record(check: str, exchange: Exchange, same: bool) -> None:
    RESULTS[check, exchange.area][exchange.name] = same


def table() -> list[str]:
    """Lines of the same/different table, one row per area and check."""
    checks = ("replay", "in-process", "loopback")
    areas = sorted({area for _, area in RESULTS})
    lines = [f"{'area':<10} " + " ".join(f"{c:>21}" for c in checks)]
    for area in areas:
        cells = []
        for check in checks:
            results = RESULTS.get((check, area), {})
            same = sum(results.values())
            cells.append(f"{same:>4} same {len(results) - same:>3} different")
        lines.append(f"{area:<10} " + " ".join(f"{c:>21}" for c in cells))
    return lines
