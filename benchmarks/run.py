"""The benchmark suite: ``python benchmarks/run.py`` (``--smoke`` for CI's tiny run).

Runs workloads W1-W6 of issue 5 for every contender, each measurement in a fresh process
(``worker.py``), contenders alternating A B B A between rounds, and prints a table of medians
with every figure also as a ratio to the floor (raw httpx + hand-written msgspec Structs)
measured in the same run. Results go to ``benchmarks/results.json``. The published peers are
installed into their own virtual environments under ``benchmarks/.venvs/`` (their import names
clash with this SDK's). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENVS = HERE / ".venvs"
WORKER = HERE / "worker.py"
sys.path.insert(0, str(HERE))

import payloads  # noqa: E402

# The published peers, pinned so numbers compare across runs.
PEERS = {"dify_oapi2": "dify-oapi2==1.1.2", "dify_client": "dify-client==0.1.10"}
LABELS = {
    "floor": "floor (httpx+msgspec)",
    "httpx_json": "httpx+json.loads",
    "sdk": "this SDK",
    "sdk_defaults": "this SDK, default limits",
    "sdk_aiohttp": "this SDK, aiohttp transport",
    "floor_aiohttp": "floor, aiohttp transport",
    "aiohttp": "aiohttp+msgspec (limit)",
    "dify_oapi2": "dify-oapi2 1.1.2 (PyPI)",
    "dify_client": "dify-client 0.1.10 (PyPI)",
}


# -- plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    digits: int = 1
    ratio: bool = True  # shown as a ratio to the floor


@dataclass
class Contender:
    name: str  # the row label key, e.g. "sdk" or "sdk+sniffio"
    package: str  # contenders/<package>/
    python: str
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None  # reason shown as n/a without running
    repeats: int | None = None  # fewer rounds than the case (informational rows)


@dataclass
class Case:
    key: str  # e.g. "W3-chat-socket"
    title: str
    module: str
    params: dict[str, Any]
    metrics: list[Metric]
    contenders: list[Contender]
    repeats: int
    base: str = "floor"
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return self.key.split("-")[0]


US = Metric("us_per_call", "CPU µs/call", False)
EVENTS = Metric("events_per_s", "events/s", True, 0)
FIRST = Metric("first_event_us", "1st event µs", False, 0)
EVENTS_CPU = Metric("events_per_s", "events/CPU s", True, 0)
FIRST_CPU = Metric("first_event_us", "1st event CPU µs", False, 0)
RPS = Metric("rps", "req/s", True, 0)
CPU = Metric("cpu_per_1000", "CPU s/1k req", False, 2)
RSS = Metric("rss_growth_mb", "RSS growth MB", False, 1)
SECONDS = Metric("seconds", "seconds", False, 2)


@dataclass
class Settings:
    smoke: bool
    sizes: payloads.Sizes
    w1_repeats: int
    w2_calls: int
    w2_warmup: int
    w2_repeats: int
    w3_runs: int
    w3_repeats: int
    w4_calls: int
    w4_warmup: int
    w4_repeats: int
    w5_calls: int
    w5_warmup: int
    w5_concurrency: int
    w5_threads: int
    w5_repeats: int
    w6_repeats: int
    timeout: float

    @classmethod
    def full(cls) -> Settings:
        return cls(
            smoke=False,
            sizes=payloads.Sizes(),
            w1_repeats=7,
            w2_calls=3000,
            w2_warmup=200,
            w2_repeats=5,
            w3_runs=5,
            w3_repeats=4,
            w4_calls=300,
            w4_warmup=20,
            w4_repeats=5,
            w5_calls=5000,
            w5_warmup=256,
            w5_concurrency=64,
            w5_threads=16,
            w5_repeats=3,
            w6_repeats=2,
            timeout=300.0,
        )

    @classmethod
    def tiny(cls) -> Settings:
        return cls(
            smoke=True,
            sizes=payloads.Sizes.smoke(),
            w1_repeats=1,
            w2_calls=20,
            w2_warmup=5,
            w2_repeats=1,
            w3_runs=1,
            w3_repeats=1,
            w4_calls=10,
            w4_warmup=2,
            w4_repeats=1,
            w5_calls=64,
            w5_warmup=16,
            w5_concurrency=8,
            w5_threads=4,
            w5_repeats=1,
            w6_repeats=1,
            timeout=60.0,
        )


def build_plan(
    s: Settings, pythons: dict[str, str], peer_skip: dict[str, str], sniffio: dict[str, Any]
) -> list[Case]:
    main = sys.executable

    def c(name: str, **kw: Any) -> Contender:
        package = kw.pop("package", name)
        python = pythons.get(package, main)
        return Contender(name, package, python, skip=peer_skip.get(package), **kw)

    def everyone() -> list[Contender]:
        return [c("floor"), c("httpx_json"), c("sdk"), c("dify_oapi2"), c("dify_client")]

    sizes = s.sizes.to_dict()
    cases = [
        Case(
            "W1",
            "import + client construction, fresh process",
            "w1_import",
            {},
            [
                Metric("import_client_ms", "import+client ms", False),
                Metric("importtime_ms", "-X importtime ms", False),
                Metric("peak_rss_mb", "peak RSS MB", False),
            ],
            everyone(),
            s.w1_repeats,
        ),
        Case(
            "W2",
            "blocking chat (~3.4 KB answer), in-process MockTransport",
            "w2_chat",
            {"calls": s.w2_calls, "warmup": s.w2_warmup},
            [US],
            everyone(),
            s.w2_repeats,
        ),
    ]
    for mode in ("inproc", "socket"):
        for case in ("chat", "workflow"):
            where = "in-process" if mode == "inproc" else "loopback socket"
            cases.append(
                Case(
                    f"W3-{case}-{mode}",
                    f"{case} stream, {s.sizes.stream_events} chunks + pings, {where}",
                    "w3_stream",
                    {"case": case, "mode": mode, "sizes": sizes, "runs": s.w3_runs},
                    [EVENTS_CPU, FIRST_CPU] if mode == "inproc" else [EVENTS, FIRST],
                    everyone(),
                    s.w3_repeats,
                )
            )
    for case in ("documents", "messages"):
        cases.append(
            Case(
                f"W4-{case}",
                f"{case} list of {s.sizes.list_items}, in-process MockTransport",
                "w4_lists",
                {"case": case, "sizes": sizes, "calls": s.w4_calls, "warmup": s.w4_warmup},
                [US],
                everyone(),
                s.w4_repeats,
            )
        )
    w5 = {
        "calls": s.w5_calls,
        "warmup": s.w5_warmup,
        "concurrency": s.w5_concurrency,
        "threads": s.w5_threads,
    }
    info = 1 if not s.smoke else None  # informational rows: one round
    async_rows = [
        c("floor"),
        c("sdk"),
        c("aiohttp"),
        c("sdk_aiohttp"),
        c("floor_aiohttp"),
        c("httpx_json", repeats=info),
        c("sdk_defaults", repeats=info),
        c("dify_oapi2", repeats=info),
        c("dify_client"),
    ]
    for name in ("floor", "sdk"):
        variant = sniffio.get("variant_name", "+sniffio")
        row = c(name, repeats=sniffio.get("repeats"))
        row.name = name + variant
        row.env = dict(sniffio.get("env", {}))
        row.skip = sniffio.get("skip")
        async_rows.append(row)
    cases.append(
        Case(
            "W5-async",
            f"{s.w5_calls} blocking chats, async, {s.w5_concurrency} in flight, loopback",
            "w5_concurrency",
            {**w5, "case": "async"},
            [RPS, CPU],
            async_rows,
            s.w5_repeats,
        )
    )
    cases.append(
        Case(
            "W5-sync",
            f"{s.w5_calls} blocking chats, sync, {s.w5_threads} threads, loopback",
            "w5_concurrency",
            {**w5, "case": "sync"},
            [RPS, CPU],
            [c("floor"), c("httpx_json"), c("sdk"), c("dify_oapi2"), c("dify_client")],
            s.w5_repeats,
        )
    )
    mb = s.sizes.big_stream_bytes // (1024 * 1024)
    for case, what in (("sse", f"{mb} MB event stream"), ("binary", f"{mb} MB binary to a file")):
        cases.append(
            Case(
                f"W6-{case}",
                f"memory: {what}, loopback",
                "w6_memory",
                {"case": case, "sizes": sizes},
                [RSS, SECONDS],
                everyone(),
                s.w6_repeats,
            )
        )
    return cases


# -- environments --------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_peer(package: str, spec: str) -> tuple[str | None, str | None]:
    """The peer's own virtual environment (created once, reused); (python, or None and why)."""
    venv = VENVS / spec.split("==")[0]
    python = venv_python(venv)
    marker = venv / "bench-installed.txt"
    if python.exists() and marker.exists() and marker.read_text() == spec:
        return str(python), None
    log(f"installing {spec} into {venv.relative_to(REPO)} ...")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        tail = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        return None, f"could not install {spec}: {tail[0][:120]}"
    marker.write_text(spec)
    return str(python), None


# What the workers import from this interpreter: this SDK, the floor's and W5's libraries.
NEEDED = ("dify_oapi", "httpx", "msgspec", "httpx_sse", "aiohttp", "httpx_aiohttp")


def ensure_own_env(argv: list[str]) -> None:
    """On a machine without this repository's ``[bench]`` extra, install it into
    ``.venvs/main`` and run the suite again from there, so one command is enough."""
    import importlib.util

    if all(importlib.util.find_spec(name) for name in NEEDED):
        return
    if os.environ.get("BENCH_OWN_ENV"):
        missing = [name for name in NEEDED if not importlib.util.find_spec(name)]
        raise SystemExit(f"still missing after installing the [bench] extra: {missing}")
    venv = VENVS / "main"
    python = venv_python(venv)
    log(f"installing this repository with its [bench] extra into {venv.relative_to(REPO)} ...")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            f"{REPO}[bench]",
        ],
        check=True,
    )
    env = {**os.environ, "BENCH_OWN_ENV": "1"}
    raise SystemExit(subprocess.run([str(python), __file__, *argv], env=env).returncode)


def has_module(python: str, name: str) -> bool:
    code = f"import importlib.util,sys; sys.exit(0 if importlib.util.find_spec({name!r}) else 1)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def sniffio_setup(smoke: bool, repeats: int) -> dict[str, Any]:
    """W5 async once more with sniffio flipped: installed if absent, hidden if present."""
    if smoke:
        return {"skip": "skipped in smoke mode", "state": "not measured"}
    if has_module(sys.executable, "sniffio"):
        return {
            "variant_name": "-sniffio",
            "env": {"BENCH_HIDE_SNIFFIO": "1"},
            "state": "installed in the client venv; the -sniffio rows hide it (import fails)",
            "repeats": min(repeats, 2),
        }
    target = VENVS / "sniffio-site"
    if not (target / "sniffio").exists():
        log("installing sniffio into benchmarks/.venvs/sniffio-site for the W5 variant ...")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "sniffio"],
            capture_output=True,
        )
        if result.returncode != 0:
            return {"skip": "could not install sniffio", "state": "absent"}
    return {
        "variant_name": "+sniffio",
        "env": {"PYTHONPATH": str(target)},
        "state": "absent from the client venv; the +sniffio rows add it",
        "repeats": min(repeats, 2),
    }


class Server:
    """``server.py`` in its own process; stops when we close its stdin."""

    def __init__(self, sizes: payloads.Sizes) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), "--sizes", json.dumps(sizes.to_dict())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, float]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/__stats")
            data: dict[str, float] = json.loads(conn.getresponse().read())
            return data
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)


# -- measuring -----------------------------------------------------------------------------


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # PYTHONDONTWRITEBYTECODE would make every worker compile this repository's modules from
    # source, while installed packages load bytecode compiled at install: W1 would charge
    # this SDK ~20% of the floor that no installed user pays.
    for key in ("PYTHONPATH", "BENCH_HIDE_SNIFFIO", "PYTHONDONTWRITEBYTECODE"):
        env.pop(key, None)
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    env.update(extra)
    return env


def run_worker(
    contender: Contender,
    module: str,
    params: dict[str, Any],
    timeout: float,
    importtime: bool = False,
) -> tuple[dict[str, Any], str]:
    cmd = [contender.python]
    if importtime:
        cmd += ["-X", "importtime"]
    cmd += [str(WORKER), contender.package, module, json.dumps(params)]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=worker_env(contender.env),
            cwd=HERE,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}, ""
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            result: dict[str, Any] = json.loads(line[len("BENCH-RESULT ") :])
            return result, proc.stderr
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:300]}"}, proc.stderr


def importtime_ms(stderr: str) -> float:
    """Cumulative -X importtime of the top-level imports after the worker's start marker."""
    total_us = 0
    started = False
    for line in stderr.splitlines():
        if line.startswith("BENCH-W1-START"):
            started = True
            continue
        if not started or not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        if depth == 0:
            total_us += int(parts[1])
    return total_us / 1000.0


def measure(
    case: Case, contender: Contender, timeout: float, server: Server | None
) -> dict[str, Any]:
    params = dict(case.params)
    if server is not None:
        params["base_url"] = server.base_url
    if case.module == "w1_import":
        result, _ = run_worker(contender, case.module, params, timeout)
        if "import_client_ms" in result:
            again, stderr = run_worker(contender, case.module, params, timeout, importtime=True)
            if "error" in again:
                return again
            result["importtime_ms"] = importtime_ms(stderr)
        return result
    before = server.stats() if server is not None and case.id == "W5" else None
    result, _ = run_worker(contender, case.module, params, timeout)
    if before is not None and server is not None and "rps" in result:
        after = server.stats()
        served = after["requests"] - before["requests"]
        if served > 0:
            result["server_cpu_per_1000"] = (after["cpu"] - before["cpu"]) / served * 1000
    return result


def run_case(case: Case, settings: Settings, server: Server | None) -> None:
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
            result = measure(case, contender, settings.timeout, server)
            if "na" in result:
                entry.update(status="n/a", reason=result["na"])
            elif "error" in result:
                entry.update(status="error", reason=result["error"])
                log(f"  {case.id} {contender.name}: {result['error']}")
            else:
                for key, value in result.items():
                    if isinstance(value, (int, float)):
                        entry["samples"].setdefault(key, []).append(value)
                    else:
                        entry[key] = value
    base = results.get(case.base, {})
    directions = {m.key: m.higher_is_better for m in case.metrics}
    for entry in results.values():
        entry["median"] = {k: statistics.median(v) for k, v in entry["samples"].items()}
        # The best round: on a shared machine, other processes only ever slow a round down.
        entry["best"] = {
            k: (max(v) if directions.get(k) else min(v)) for k, v in entry["samples"].items()
        }
        entry["ratio"] = {}
        if entry["status"] == "ok" and base.get("status") == "ok":
            for metric in case.metrics:
                mine = entry["median"].get(metric.key)
                theirs = base["median"].get(metric.key)
                if mine is not None and theirs:
                    entry["ratio"][metric.key] = mine / theirs


# -- report --------------------------------------------------------------------------------


def fmt(value: float, digits: int) -> str:
    if value >= 100_000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(cases: list[Case]) -> str:
    out: list[str] = []
    for case in cases:
        out.append("")
        out.append(f"{case.key}  {case.title}")
        header = f"  {'contender':32}" + "".join(
            f"{m.label + (' ↑' if m.higher_is_better else ' ↓'):>26}" for m in case.metrics
        )
        out.append(header)
        for contender in case.contenders:
            entry = case.results[contender.name]
            label = LABELS.get(contender.package, contender.package)
            if contender.name != contender.package:
                label += contender.name[len(contender.package) :]
            if entry["status"] != "ok":
                out.append(f"  {label:32}  {entry['status']} ({entry.get('reason', '')})")
                continue
            cells = []
            for m in case.metrics:
                value = entry["median"].get(m.key)
                if value is None:
                    cells.append(f"{'-':>26}")
                    continue
                ratio = entry["ratio"].get(m.key)
                text = fmt(value, m.digits) + (f" ({ratio:.2f}x)" if ratio is not None else "")
                cells.append(f"{text:>26}")
            first = entry["samples"].get(case.metrics[0].key, [])
            spread = (max(first) - min(first)) / statistics.median(first) if first else 0.0
            out.append(f"  {label:32}" + "".join(cells) + f"   n={len(first)} ±{spread / 2:.0%}")
    return "\n".join(out)


@dataclass
class Target:
    workload: str
    text: str
    check: Callable[[list[Case], str], tuple[str, float | None]]


def _median(
    cases: list[Case], case_key: str, contender: str, key: str, stat: str = "median"
) -> float | None:
    for case in cases:
        if case.key == case_key:
            entry = case.results.get(contender, {})
            if entry.get("status") == "ok":
                value: float | None = entry[stat].get(key)
                return value
    return None


def ratio_target(
    case_key: str, key: str, mine: str, base: str, op: str, limit: float
) -> Callable[[list[Case]], tuple[str, float | None]]:
    def check(cases: list[Case], stat: str) -> tuple[str, float | None]:
        a = _median(cases, case_key, mine, key, stat)
        b = _median(cases, case_key, base, key, stat)
        if a is None or b is None or b == 0:
            return "not measured", None
        ratio = a / b
        met = ratio <= limit if op == "<=" else ratio >= limit
        return ("met" if met else "MISSED"), ratio

    return check


def absolute_target(
    case_key: str, key: str, mine: str, limit: float
) -> Callable[[list[Case]], tuple[str, float | None]]:
    def check(cases: list[Case], stat: str) -> tuple[str, float | None]:
        value = _median(cases, case_key, mine, key, stat)
        if value is None:
            return "not measured", None
        return ("met" if value < limit else "MISSED"), value

    return check


TARGETS = [
    Target(
        "W1",
        "import+client ≤ 1.25x floor",
        ratio_target("W1", "import_client_ms", "sdk", "floor", "<=", 1.25),
    ),
    Target(
        "W1",
        "≥ 2.5x faster than dify-oapi2",
        ratio_target("W1", "import_client_ms", "dify_oapi2", "sdk", ">=", 2.5),
    ),
    Target(
        "W2", "µs/call ≤ 1.10x floor", ratio_target("W2", "us_per_call", "sdk", "floor", "<=", 1.10)
    ),
    Target(
        "W3",
        "chat in-process events/s ≥ 0.9x floor",
        ratio_target("W3-chat-inproc", "events_per_s", "sdk", "floor", ">=", 0.9),
    ),
    Target(
        "W3",
        "workflow in-process events/s ≥ 0.9x floor",
        ratio_target("W3-workflow-inproc", "events_per_s", "sdk", "floor", ">=", 0.9),
    ),
    Target(
        "W3",
        "chat socket events/s ≥ 0.9x floor",
        ratio_target("W3-chat-socket", "events_per_s", "sdk", "floor", ">=", 0.9),
    ),
    Target(
        "W3",
        "workflow socket events/s ≥ 0.9x floor",
        ratio_target("W3-workflow-socket", "events_per_s", "sdk", "floor", ">=", 0.9),
    ),
    Target(
        "W4",
        "documents µs/call ≤ 1.10x floor",
        ratio_target("W4-documents", "us_per_call", "sdk", "floor", "<=", 1.10),
    ),
    Target(
        "W4",
        "messages µs/call ≤ 1.10x floor",
        ratio_target("W4-messages", "us_per_call", "sdk", "floor", "<=", 1.10),
    ),
    Target(
        "W5",
        "async req/s ≥ 0.95x raw httpx (floor)",
        ratio_target("W5-async", "rps", "sdk", "floor", ">=", 0.95),
    ),
    Target(
        "W5",
        "sync req/s ≥ 0.95x raw httpx (floor)",
        ratio_target("W5-sync", "rps", "sdk", "floor", ">=", 0.95),
    ),
    Target(
        "W5",
        "aiohttp transport req/s ≥ 0.9x raw aiohttp",
        ratio_target("W5-async", "rps", "sdk_aiohttp", "aiohttp", ">=", 0.9),
    ),
    Target(
        "W6",
        "event stream RSS growth < 20 MB",
        absolute_target("W6-sse", "rss_growth_mb", "sdk", 20.0),
    ),
    Target(
        "W6",
        "binary download RSS growth < 20 MB",
        absolute_target("W6-binary", "rss_growth_mb", "sdk", 20.0),
    ),
]


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
    for dist in (
        "dify-oapi2",
        "httpx",
        "httpcore",
        "msgspec",
        "httpx-sse",
        "aiohttp",
        "httpx-aiohttp",
        "anyio",
        "sniffio",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "endpoints"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
        "commit": commit + ("+dirty" if dirty else ""),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks against the floor and the peers.")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat, no peers")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W2,W3")
    parser.add_argument(
        "--repeats", type=int, default=0, help="rounds per case (default per workload)"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip the PyPI peers")
    parser.add_argument(
        "--contenders", default="", help="comma-separated contenders, e.g. floor,sdk (quick A/B)"
    )
    parser.add_argument("--output", default="", help="JSON path (default benchmarks/results.json)")
    args = parser.parse_args(argv)
    ensure_own_env(sys.argv[1:] if argv is None else argv)

    started = time.time()
    settings = Settings.tiny() if args.smoke else Settings.full()
    import importlib.util

    spec = importlib.util.find_spec("dify_oapi")
    origin = spec.origin if spec and spec.origin else ""
    if not origin.startswith(str(REPO / "src")):
        log(f"warning: dify_oapi imports from {origin or 'nowhere'}, not this repository's src/")

    pythons: dict[str, str] = {}
    peer_skip: dict[str, str] = {}
    only = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    for package, pin in PEERS.items():
        if args.smoke:
            peer_skip[package] = "skipped in smoke mode"
        elif args.no_peers:
            peer_skip[package] = "skipped (--no-peers)"
        else:
            python, why = ensure_peer(package, pin)
            if python:
                pythons[package] = python
            else:
                peer_skip[package] = why or "unavailable"
    sniffio = sniffio_setup(args.smoke or (bool(only) and "W5" not in only), settings.w5_repeats)
    cases = build_plan(settings, pythons, peer_skip, sniffio)
    if only:
        cases = [c for c in cases if c.id in only]
    if args.contenders:
        keep = {name.strip() for name in args.contenders.split(",")}
        for c in cases:
            c.contenders = [x for x in c.contenders if x.package in keep]
    if args.repeats:
        for c in cases:
            c.repeats = args.repeats
    server = Server(settings.sizes) if any(c.id in ("W3", "W5", "W6") for c in cases) else None
    try:
        prime = {c.python + c.package: c for case in cases for c in case.contenders if not c.skip}
        for contender in prime.values():  # compile bytecode once, untimed
            run_worker(contender, "w1_import", {}, settings.timeout)
        for case in cases:
            log(f"{case.key} {case.title} ...")
            case_start = time.time()
            run_case(case, settings, server if case.module != "w1_import" else None)
            case.seconds = time.time() - case_start
    finally:
        if server is not None:
            server.stop()
    targets = evaluate(cases, settings.smoke)
    text = table(cases)
    print(text)
    print("\nTargets" + (" (smoke run: sizes too small to judge)" if settings.smoke else ""))
    print(f"  {'':4}{'':48} {'medians':>22} {'best rounds':>22}")
    for t in targets:
        cells = []
        for status, value in ((t["status"], t["value"]), (t["best_status"], t["best_value"])):
            cells.append(f"{status}" + ("" if value is None else f" {value:.2f}"))
        print(f"  {t['workload']}  {t['target']:48} {cells[0]:>22} {cells[1]:>22}")
    print(f"\nsniffio: {sniffio.get('state')}")
    duration = time.time() - started
    print(f"{len(cases)} cases in {duration:.0f} s")

    output = (
        Path(args.output)
        if args.output
        else HERE / ("results-smoke.json" if args.smoke else "results.json")
    )
    report = {
        "command": "python benchmarks/run.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "smoke": settings.smoke,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "duration_s": duration,
        "machine": machine(),
        "settings": {k: v for k, v in settings.__dict__.items() if k != "sizes"},
        "sizes": settings.sizes.to_dict(),
        "sniffio": {k: v for k, v in sniffio.items() if k != "env"},
        "cases": [
            {
                "workload": c.id,
                "key": c.key,
                "title": c.title,
                "module": c.module,
                "params": c.params,
                "repeats": c.repeats,
                "seconds": c.seconds,
                "metrics": [m.__dict__ for m in c.metrics],
                "baseline": c.base,
                "contenders": {
                    name: {
                        "label": LABELS.get(
                            next(x.package for x in c.contenders if x.name == name), name
                        ),
                        **entry,
                    }
                    for name, entry in c.results.items()
                },
            }
            for c in cases
        ],
        "targets": targets,
        "table": text,
    }
    output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
