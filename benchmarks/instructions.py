"""CPU instructions per operation under valgrind: a second opinion free of machine noise.

    python benchmarks/instructions.py              # W2, W3 in-process, W4; floor and this SDK
    python benchmarks/instructions.py W3

On a shared machine the timed suite's in-process rows spread by 20-40% between rounds; an
instruction count does not move. Each figure is the count of a worker doing N + K operations
minus that of one doing N, divided by K, so start-up, imports and warm-up cancel out. Needs
``valgrind`` (``apt-get install valgrind``). Valgrind swaps glibc's ``memchr`` and ``memcpy``
for plain loops, so byte scans and copies weigh more here than on real hardware, and an
instruction is not a nanosecond: cache misses and branch mispredictions are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import payloads as p

HERE = Path(__file__).resolve().parent
CONTENDERS = ("floor", "sdk")


def cases() -> list[tuple[str, str, str, Any]]:
    """(label, workload, worker module, params for n operations), with ops per unit of n."""
    sizes = p.Sizes().to_dict()
    out: list[tuple[str, str, str, Any]] = [
        ("W2 blocking chat, per call", "W2", "w2", lambda n: ({"calls": n, "warmup": 20}, n))
    ]
    for case in ("chat", "workflow"):
        frames = p.chat_stream(p.Sizes()) if case == "chat" else p.workflow_stream(p.Sizes())
        events = p.stream_event_count(frames)
        out.append(
            (
                f"W3 {case} stream in-process, per event",
                "W3",
                "w3",
                lambda n, case=case, events=events: (
                    {"case": case, "mode": "inproc", "sizes": sizes, "runs": n},
                    n * events,
                ),
            )
        )
    for case in ("documents", "messages"):
        out.append(
            (
                f"W4 {case} list of 100, per call",
                "W4",
                "w4",
                lambda n, case=case: (
                    {"case": case, "sizes": sizes, "calls": n, "warmup": 5},
                    n,
                ),
            )
        )
    return out


def count(contender: str, module: str, params: dict[str, Any]) -> int:
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(HERE / "worker.py"),
        contender,
        module,
        json.dumps(params),
    ]
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE, env=env, check=False)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode or found is None or 'BENCH-RESULT {"error"' in proc.stdout:
        raise SystemExit(f"{contender} {module} failed: {proc.stderr[-500:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help="W2, W3, W4 (default: all)")
    parser.add_argument("--output", type=Path, default=HERE / "instructions.json")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    counts = {"W2": (50, 550), "W3": (1, 4), "W4": (10, 60)}
    results = {}
    head = "instructions per operation (lower is better)"
    print(f"{head:44} {'floor':>14} {'this SDK':>14} {'SDK/floor':>10}")
    for label, workload, module, params_for in cases():
        if args.workloads and workload not in args.workloads:
            continue
        lo, hi = counts[workload]
        per_op = {}
        for contender in CONTENDERS:
            (p_lo, ops_lo), (p_hi, ops_hi) = params_for(lo), params_for(hi)
            extra = count(contender, module, p_hi) - count(contender, module, p_lo)
            per_op[contender] = extra / (ops_hi - ops_lo)
        results[label] = per_op
        ratio = per_op["sdk"] / per_op["floor"]
        print(f"{label:44} {per_op['floor']:>14,.0f} {per_op['sdk']:>14,.0f} {ratio:>9.2f}x")
    args.output.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
