"""Where this SDK spends its time in one workload: ``python benchmarks/hotspots.py W3 chat inproc``.

Runs one workload with the SDK's adapter (or ``--contender``'s) in this process under
cProfile (or, with ``--pyinstrument``, pyinstrument's call tree) and prints the functions of
``dify_oapi`` and of the libraries it drives, ranked by own time, with their share of the
total. W5, W6, W7 and the socket cases start ``server.py`` first.

    python benchmarks/hotspots.py W2
    python benchmarks/hotspots.py W3 workflow socket
    python benchmarks/hotspots.py W5 async --contender sdk_aiohttp
    python benchmarks/hotspots.py W7 stream-sync --contender sdk_curl
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import adapters  # noqa: E402
import payloads  # noqa: E402
import workloads  # noqa: E402
from envs import Server  # noqa: E402
from plan import Settings  # noqa: E402

MODULES = {"W2": "w2", "W3": "w3", "W4": "w4", "W5": "w5", "W6": "w6", "W7": "w7"}


def params_for(workload: str, case: str | None, mode: str | None, s: Settings) -> dict[str, Any]:
    sizes = s.sizes.to_dict()
    if workload == "W2":
        return {"calls": s.w2_calls, "warmup": s.w2_warmup}
    if workload == "W3":
        return {"case": case or "chat", "mode": mode or "inproc", "sizes": sizes, "runs": 20}
    if workload == "W4":
        return {"case": case or "documents", "sizes": sizes, "calls": s.w4_calls, "warmup": 20}
    if workload == "W7":
        return {
            "case": case or "stream-sync",
            "sizes": sizes,
            "runs": 20,
            "calls": s.w7_calls,
            "warmup": 50,
            "concurrency": s.w7_concurrency if case == "concurrent" else None,
        }
    if workload == "W5":
        return {
            "case": case or "async",
            "calls": s.w5_calls,
            "warmup": s.w5_warmup,
            "concurrency": s.w5_concurrency,
            "threads": s.w5_threads,
        }
    return {"case": case or "sse", "sizes": sizes}


def layer_of(label: str) -> str:
    """The package a profiled function belongs to (builtins by the type they belong to)."""
    for name in (
        "dify_oapi",
        "httpx_sse",
        "httpx_aiohttp",
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "aiohttp",
    ):
        if label.startswith(name + "/"):
            return name
    if "msgspec" in label:
        return "msgspec"
    if label.startswith(("adapters/", "harness", "workloads", "/work/")) or "benchmarks" in label:
        return "benchmark"
    return "stdlib/builtins"


def report(stats: pstats.Stats, top: int) -> str:
    """Own time per function, grouped as file:function, for dify_oapi and what it calls."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1e-9
    rows = []
    ours = 0.0
    for (filename, line, name), (_cc, _nc, own, cum, _callers) in raw.items():
        short = filename
        for marker in ("/dify_oapi/", "/site-packages/", "/lib/python3"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                if marker == "/dify_oapi/":
                    short = "dify_oapi/" + short
                    ours += own
                break
        rows.append((own, cum, f"{short}:{line}:{name}"))
    rows.sort(reverse=True)
    layers: dict[str, float] = {}
    for own, _cum, label in rows:
        layers[layer_of(label)] = layers.get(layer_of(label), 0.0) + own
    out = [f"total own time {total:.3f} s; in dify_oapi itself {ours:.3f} s ({ours / total:.0%})"]
    out.append(
        "by layer: "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(layers.items(), key=lambda x: -x[1]))
    )
    out.append(f"{'own s':>8} {'share':>6} {'cum s':>8}  function")
    for own, cum, label in rows[:top]:
        out.append(f"{own:8.3f} {own / total:6.1%} {cum:8.3f}  {label}")
    ours_rows = sorted((r for r in rows if r[2].startswith("dify_oapi/")), reverse=True)
    out.append("\ndify_oapi functions by own time:")
    for own, cum, label in ours_rows[:top]:
        out.append(f"{own:8.3f} {own / total:6.1%} {cum:8.3f}  {label}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workload", choices=sorted(MODULES))
    parser.add_argument(
        "case", nargs="?", help="chat|workflow, documents|messages, async|sync, sse|binary"
    )
    parser.add_argument("mode", nargs="?", help="W3: inproc|socket")
    parser.add_argument("--contender", default="sdk")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true", help="print pyinstrument's tree")
    parser.add_argument(
        "--lockstep", action="store_true", help="the server writes each event once the last is read"
    )
    args = parser.parse_args()

    settings = Settings.full()
    params = params_for(args.workload, args.case, args.mode, settings)
    needs_server = args.workload in ("W5", "W6", "W7") or params.get("mode") == "socket"
    server = Server(payloads.Sizes(), lockstep=args.lockstep) if needs_server else None
    if server is not None:
        params["base_url"] = server.base_url
    workload = getattr(workloads, MODULES[args.workload])
    adapter = adapters.load(args.contender)
    try:
        if args.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            with profiler:
                result = workload(adapter, params)
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        else:
            prof = cProfile.Profile()
            result = prof.runcall(workload, adapter, params)
            print(report(pstats.Stats(prof, stream=io.StringIO()), args.top))
    finally:
        if server is not None:
            server.stop()
    print(f"\nresult (under the profiler, so slower than the suite's): {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
