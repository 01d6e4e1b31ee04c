"""The benchmark suite: ``python benchmarks/run.py`` (``--smoke`` for CI's tiny run).

Runs the workloads (``workloads.py``) for every contender (``adapters/``), each measurement
in a fresh process (``worker.py``), contenders alternating A B B A between rounds, and prints
a table of medians with every figure also as a ratio to a baseline measured in the same run.
Results go to ``benchmarks/results.json``. On a machine without the benchmark dependencies it
installs them into ``benchmarks/.venvs/main`` first; the published peers get their own
virtual environments there (their import names clash with this SDK's). See ``README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import envs  # noqa: E402
import report  # noqa: E402
from plan import Case, Settings, build_plan, with_baseline  # noqa: E402


def run_case(case: Case, settings: Settings, server: envs.Server | None) -> None:
    results = case.results
    for contender in case.contenders:
        results[contender.name] = {"samples": {}, "status": "ok"}
        if contender.skip:
            results[contender.name].update(status="n/a", reason=contender.skip)
    for round_no in range(case.repeats):
        order = case.contenders if round_no % 2 == 0 else case.contenders[::-1]
        for contender in order:
            entry = results[contender.name]
            if entry["status"] != "ok":
                continue
            if contender.repeats is not None and round_no >= contender.repeats:
                continue
            result = envs.measure(case, contender, settings.timeout, server)
            if "na" in result:
                entry.update(status="n/a", reason=result["na"])
            elif "error" in result:
                entry.update(status="error", reason=result["error"])
                envs.log(f"  {case.key} {contender.name}: {result['error']}")
            else:
                for key, value in result.items():
                    if isinstance(value, (int, float)):
                        entry["samples"].setdefault(key, []).append(value)
                    else:
                        entry[key] = value
    report.summarize(case)


def select(cases: list[Case], args: argparse.Namespace) -> list[Case]:
    """``--only`` (workloads or case keys), ``--contenders`` and ``--repeats``."""
    only = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    if only:
        cases = [c for c in cases if c.id in only or c.key.upper() in only]
    if args.contenders:
        keep = {name.strip() for name in args.contenders.split(",")}
        for c in cases:
            c.contenders = [x for x in c.contenders if x.key in keep]
    if args.repeats:
        for c in cases:
            c.repeats = args.repeats
    return [c for c in cases if c.contenders]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks against the floors and the peers.")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat, no peers")
    parser.add_argument("--only", default="", help="workloads or cases, e.g. W2,W3,W7-call-sync")
    parser.add_argument("--repeats", type=int, default=0, help="rounds per case (default per case)")
    parser.add_argument("--no-peers", action="store_true", help="skip the PyPI peers")
    parser.add_argument(
        "--contenders", default="", help="comma-separated contenders, e.g. floor,sdk (quick A/B)"
    )
    parser.add_argument("--output", default="", help="JSON path (default benchmarks/results.json)")
    parser.add_argument(
        "--baseline", default="", help="a commit: this SDK's rows once more on its sources there"
    )
    args = parser.parse_args(argv)
    raw_argv = sys.argv[1:] if argv is None else argv
    envs.ensure_own_env(__file__, raw_argv)

    started = time.time()
    settings = Settings.tiny() if args.smoke else Settings.full()
    envs.warn_if_not_this_repo()
    only = {w.strip().upper().split("-")[0] for w in args.only.split(",") if w.strip()}
    pythons: dict[str, str] = {}
    peer_skip: dict[str, str] = {}
    for venv, pin in envs.PEERS.items():
        if args.smoke:
            peer_skip[venv] = "skipped in smoke mode"
        elif args.no_peers:
            peer_skip[venv] = "skipped (--no-peers)"
        else:
            python, why = envs.ensure_peer(pin)
            if python:
                pythons[venv] = python
            else:
                peer_skip[venv] = why or "unavailable"
    sniffio = envs.sniffio_setup(
        args.smoke or (bool(only) and "W5" not in only), settings.w5_repeats
    )
    cases = select(build_plan(settings, pythons, peer_skip, sniffio), args)
    if args.baseline:
        tag, env = envs.sources_at(args.baseline)
        with_baseline(cases, tag, env)
    socket = ("W3", "W5", "W6", "W7")
    server = envs.Server(settings.sizes) if any(c.id in socket for c in cases) else None
    try:
        prime = {(c.python, c.name): c for case in cases for c in case.contenders if not c.skip}
        for contender in prime.values():  # compile bytecode once, untimed
            envs.run_worker(contender, "w1", {}, settings.timeout)
        for case in cases:
            envs.log(f"{case.key} {case.title} ...")
            case_start = time.time()
            run_case(case, settings, server if case.id in socket else None)
            case.seconds = time.time() - case_start
    finally:
        if server is not None:
            server.stop()
    targets = report.evaluate(cases, settings.smoke)
    text = report.table(cases)
    print(text)
    print(report.targets_text(targets, settings.smoke))
    print(f"\nsniffio: {sniffio.get('state')}")
    duration = time.time() - started
    print(f"{len(cases)} cases in {duration:.0f} s")

    default = "results-smoke.json" if args.smoke else "results.json"
    output = Path(args.output) if args.output else HERE / default
    results: dict[str, Any] = {
        "command": "python benchmarks/run.py " + " ".join(raw_argv),
        "smoke": settings.smoke,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "duration_s": duration,
        "machine": report.machine(),
        "settings": {k: v for k, v in settings.__dict__.items() if k != "sizes"},
        "sizes": settings.sizes.to_dict(),
        "sniffio": {k: v for k, v in sniffio.items() if k != "env"},
        "cases": [report.case_json(c) for c in cases],
        "targets": targets,
        "table": text,
    }
    output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
