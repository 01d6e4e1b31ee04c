"""CPU instructions per operation: a second opinion free of machine noise.

    python benchmarks/instructions.py                  # every case below
    python benchmarks/instructions.py W3 W7-stream-sync --contenders floor,sdk,requests

On a shared machine timed rows spread by 20-40% between rounds; an instruction count does
not move. Each figure is the count of a worker doing N + K operations minus that of one
doing N, divided by K, so start-up, imports and warm-up cancel out. The W7 cases run over
loopback against ``server.py`` in its own process, whose instructions are not counted: the
figure is the client's alone, all its threads included. Their streams are written in lockstep
(``server.py --lockstep``): each event once the client has read the last, so every contender
does one read per event on every run; ``--free-writes`` lets the server write them all at once,
and the count then moves with how many events each read happens to find.

The counter is ``perf stat -e instructions:u`` where the machine exposes it (not in most
VMs), else valgrind's callgrind (``apt-get install valgrind``). Valgrind swaps glibc's
``memchr`` and ``memcpy`` for plain loops, so byte scans and copies weigh more there than on
real hardware; neither counter sees cache misses, so an instruction is not a nanosecond.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import payloads as p

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from plan import W7_ASYNC, W7_SYNC  # noqa: E402

Params = Callable[[int], tuple[dict[str, Any], int]]  # n -> (worker params, operations)


def cases() -> list[tuple[str, str, str, list[str], Params, tuple[int, int]]]:
    """(key, label, worker module, contenders, params for n, (n, n + k))."""
    sizes = p.Sizes().to_dict()
    per_stream = {
        case: p.stream_event_count(
            (p.chat_stream if case == "chat" else p.workflow_stream)(p.Sizes())
        )
        for case in ("chat", "workflow")
    }
    floor_sdk = ["floor", "sdk"]

    def stream(case: str, mode: str) -> Params:
        return lambda n: (
            {"case": case, "mode": mode, "sizes": sizes, "runs": n},
            n * per_stream[case],
        )

    def w7_stream(case: str) -> Params:
        return lambda n: ({"case": case, "sizes": sizes, "runs": n}, n * per_stream["chat"])

    def calls(extra: dict[str, Any]) -> Params:
        return lambda n: ({**extra, "calls": n, "warmup": 20}, n)

    out = [
        ("W2", "W2 blocking chat, per call", "w2", floor_sdk, calls({}), (50, 550)),
        (
            "W3-chat-inproc",
            "W3 chat stream in-process, per event",
            "w3",
            floor_sdk,
            stream("chat", "inproc"),
            (1, 4),
        ),
        (
            "W3-workflow-inproc",
            "W3 workflow stream in-process, per event",
            "w3",
            floor_sdk,
            stream("workflow", "inproc"),
            (1, 4),
        ),
    ]
    for kind in ("documents", "messages"):
        params = calls({"case": kind, "sizes": sizes})
        out.append(
            (f"W4-{kind}", f"W4 {kind} list of 100, per call", "w4", floor_sdk, params, (10, 60))
        )
    out += [
        (
            "W7-stream-sync",
            "W7 loopback chat stream, sync, per event",
            "w7",
            W7_SYNC,
            w7_stream("stream-sync"),
            (1, 3),
        ),
        (
            "W7-stream-async",
            "W7 loopback chat stream, async, per event",
            "w7",
            W7_ASYNC,
            w7_stream("stream-async"),
            (1, 3),
        ),
        (
            "W7-call-sync",
            "W7 loopback blocking chat, sync, per request",
            "w7",
            W7_SYNC,
            calls({"case": "call-sync"}),
            (50, 250),
        ),
        (
            "W7-call-async",
            "W7 loopback blocking chat, async, per request",
            "w7",
            W7_ASYNC,
            calls({"case": "call-async"}),
            (50, 250),
        ),
    ]
    return out


def counter() -> str | None:
    """``perf`` when it can count instructions here, else ``valgrind``, else None."""
    if shutil.which("perf"):
        probe = subprocess.run(
            ["perf", "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True
        )
        if probe.returncode == 0 and "<not supported>" not in probe.stderr:
            return "perf"
    return "valgrind" if shutil.which("valgrind") else None


def count(tool: str, python: str, contender: str, module: str, params: dict[str, Any]) -> int:
    worker = [python, str(HERE / "worker.py"), contender, module, json.dumps(params)]
    if tool == "perf":
        cmd = ["perf", "stat", "-x,", "-e", "instructions:u", "--", *worker]
        pattern = r"^(\d+),[^,]*,instructions"
    else:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *worker]
        pattern = r"Collected : (\d+)"
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    if os.environ.get("PYTHONPATH"):  # an A/B of this SDK on other sources (a worktree's src/)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE, env=env, check=False)
    found = re.search(pattern, proc.stderr, re.MULTILINE)
    if proc.returncode or found is None or 'BENCH-RESULT {"error"' in proc.stdout:
        raise RuntimeError(f"{contender} {module} failed: {proc.stderr[-300:]}")
    if 'BENCH-RESULT {"na"' in proc.stdout:
        raise LookupError(proc.stdout.split('"na": ', 1)[1].strip().rstrip("}"))
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="workloads or case keys (default: all)")
    parser.add_argument("--contenders", default="", help="comma-separated (default: each case's)")
    parser.add_argument("--output", type=Path, default=HERE / "instructions.json")
    parser.add_argument("--counter", choices=("perf", "valgrind"), help="default: perf if it works")
    parser.add_argument(
        "--free-writes",
        action="store_true",
        help="W7 streams as fast as the server writes them, not one event per client read",
    )
    args = parser.parse_args()
    tool = args.counter or counter()
    if tool is None:
        print("no instruction counter: perf cannot count here and valgrind is not installed")
        return 2
    chosen = [
        c
        for c in cases()
        if not args.cases or c[0] in args.cases or c[0].split("-")[0] in args.cases
    ]
    keep = {k.strip() for k in args.contenders.split(",") if k.strip()}
    server = None
    if any(module == "w7" for _, _, module, *_ in chosen):
        import envs

        server = envs.Server(p.Sizes(), lockstep=not args.free_writes)
    writes = "free" if args.free_writes else "lockstep"
    results: dict[str, Any] = {"counter": tool, "w7 writes": writes}
    try:
        for _key, label, module, contenders, params_for, (lo, hi) in chosen:
            print(f"{label} (instructions per operation, {tool})", flush=True)
            per_op: dict[str, Any] = {}
            for contender in [c for c in contenders if not keep or c in keep]:
                python = peer_python(contender)
                (p_lo, ops_lo), (p_hi, ops_hi) = params_for(lo), params_for(hi)
                if server is not None:
                    p_lo["base_url"] = p_hi["base_url"] = server.base_url
                try:
                    extra = count(tool, python, contender, module, p_hi) - count(
                        tool, python, contender, module, p_lo
                    )
                except (RuntimeError, LookupError) as exc:
                    per_op[contender] = {"n/a": str(exc)[:200]}
                    print(f"  {contender:16} n/a ({str(exc)[:100]})", flush=True)
                    continue
                per_op[contender] = extra / (ops_hi - ops_lo)
            base = per_op.get("floor")
            for contender, value in per_op.items():
                if isinstance(value, float):
                    ratio = f"{value / base:6.2f}x floor" if isinstance(base, float) else ""
                    print(f"  {contender:16} {value:>12,.0f} {ratio}", flush=True)
            results[label] = per_op
    finally:
        if server is not None:
            server.stop()
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    return 0


def peer_python(contender: str) -> str:
    """A peer runs in its own venv (``run.py`` creates it); everyone else in this one."""
    from adapters import CONTENDERS

    venv = CONTENDERS[contender].venv
    if venv == "main":
        return sys.executable
    import envs

    python, _ = envs.ensure_peer(envs.PEERS[venv])
    return python or sys.executable


if __name__ == "__main__":
    raise SystemExit(main())
