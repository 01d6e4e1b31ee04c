"""What a run prints and writes: medians and ratios per case, the targets, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from plan import TARGETS, Case

REPO = Path(__file__).resolve().parent.parent
VERSIONS = (
    "dify-oapi2",
    "httpx",
    "httpcore",
    "h11",
    "msgspec",
    "httpx-sse",
    "aiohttp",
    "httpx-aiohttp",
    "requests",
    "urllib3",
    "curl-cffi",
    "httpx-curl-cffi",
    "anyio",
    "sniffio",
)


def summarize(case: Case) -> None:
    """Medians, best rounds and ratios (to the case's base and its refs) of every contender."""
    results = case.results
    base = results.get(case.base, {})
    directions = {m.key: m.higher_is_better for m in case.metrics}
    for entry in results.values():
        entry["median"] = {k: statistics.median(v) for k, v in entry["samples"].items()}
        # The best round: on a shared machine, other processes only ever slow a round down.
        entry["best"] = {
            k: (max(v) if directions.get(k) else min(v)) for k, v in entry["samples"].items()
        }
    first = case.metrics[0].key
    for entry in results.values():
        entry["ratio"] = {}
        entry["ratios"] = {}
        if entry["status"] != "ok":
            continue
        if base.get("status") == "ok":
            for metric in case.metrics:
                mine = entry["median"].get(metric.key)
                theirs = base["median"].get(metric.key)
                if mine is not None and theirs:
                    entry["ratio"][metric.key] = mine / theirs
        for ref in case.refs:
            other = results.get(ref, {})
            mine, theirs = entry["median"].get(first), other.get("median", {}).get(first)
            if other.get("status") == "ok" and mine is not None and theirs:
                entry["ratios"][ref] = mine / theirs


def fmt(value: float, digits: int) -> str:
    if value >= 100_000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(cases: list[Case]) -> str:
    out: list[str] = []
    for case in cases:
        out.append("")
        out.append(f"{case.key}  {case.title}")
        header = f"  {'contender':34}" + "".join(
            f"{m.label + (' ↑' if m.higher_is_better else ' ↓'):>24}" for m in case.metrics
        )
        header += "".join(f"{'x ' + ref:>14}" for ref in case.refs)
        out.append(header)
        for contender in case.contenders:
            entry = case.results[contender.name]
            label = contender.label
            if entry["status"] != "ok":
                out.append(f"  {label:34}  {entry['status']} ({entry.get('reason', '')})")
                continue
            cells = []
            for m in case.metrics:
                value = entry["median"].get(m.key)
                if value is None:
                    cells.append(f"{'-':>24}")
                    continue
                ratio = entry["ratio"].get(m.key)
                text = fmt(value, m.digits) + (f" ({ratio:.2f}x)" if ratio is not None else "")
                cells.append(f"{text:>24}")
            for ref in case.refs:
                ratio = entry["ratios"].get(ref)
                cells.append(f"{'-' if ratio is None else f'{ratio:.2f}':>14}")
            first = entry["samples"].get(case.metrics[0].key, [])
            spread = (max(first) - min(first)) / statistics.median(first) if first else 0.0
            out.append(f"  {label:34}" + "".join(cells) + f"   n={len(first)} ±{spread / 2:.0%}")
    return "\n".join(out)


def evaluate(cases: list[Case], smoke: bool) -> list[dict[str, Any]]:
    out = []
    for target in TARGETS:
        status, value = target.check(cases, "median")
        best_status, best = target.check(cases, "best")
        if smoke and status != "not measured":
            status = best_status = "not judged"
        out.append(
            {
                "workload": target.workload,
                "target": target.text,
                "status": status,
                "value": value,
                "best_status": best_status,
                "best_value": best,
            }
        )
    return out


def targets_text(targets: list[dict[str, Any]], smoke: bool) -> str:
    lines = ["", "Targets" + (" (smoke run: sizes too small to judge)" if smoke else "")]
    lines.append(f"  {'':4}{'':56} {'medians':>20} {'best rounds':>20}")
    for t in targets:
        cells = []
        for status, value in ((t["status"], t["value"]), (t["best_status"], t["best_value"])):
            cells.append(f"{status}" + ("" if value is None else f" {value:.2f}"))
        lines.append(f"  {t['workload']}  {t['target']:56} {cells[0]:>20} {cells[1]:>20}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    from importlib import metadata

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in VERSIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
        "commit": commit.stdout.strip() + ("+dirty" if dirty else ""),
    }


def case_json(case: Case) -> dict[str, Any]:
    return {
        "workload": case.id,
        "key": case.key,
        "title": case.title,
        "module": case.module,
        "params": case.params,
        "repeats": case.repeats,
        "seconds": case.seconds,
        "metrics": [m.__dict__ for m in case.metrics],
        "baseline": case.base,
        "refs": case.refs,
        "contenders": {
            c.name: {"label": c.label, "adapter": c.key, **case.results[c.name]}
            for c in case.contenders
        },
    }
