"""What the suite runs: the cases (a workload with its parameters and contenders), their
metrics, the sizes of a full and a smoke run, and the targets judged on the results."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import payloads
from adapters import CONTENDERS


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    digits: int = 1


@dataclass
class Contender:
    name: str  # the row's key: a CONTENDERS key, or one with a variant suffix ("sdk+sniffio")
    key: str  # adapters.CONTENDERS key
    python: str
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None  # reason shown as n/a without running
    repeats: int | None = None  # fewer rounds than the case (informational rows)

    @property
    def label(self) -> str:
        return CONTENDERS[self.key].label + self.name[len(self.key) :]


@dataclass
class Case:
    key: str  # e.g. "W3-chat-socket"
    title: str
    module: str  # the function in workloads.py
    params: dict[str, Any]
    metrics: list[Metric]
    contenders: list[Contender]
    repeats: int
    base: str = "floor"  # the contender every ratio is to
    refs: list[str] = field(default_factory=list)  # more ratio columns (first metric)
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
US_EVENT = Metric("cpu_us_per_event", "CPU µs/event", False, 2)
US_REQUEST = Metric("us_per_call", "CPU µs/request", False, 1)
FRAMER_CPU = Metric("cpu_s_largest", "CPU s, largest", False, 3)
FRAMER_MIB = Metric("largest_mib", "largest MiB", True, 2)
EXPONENT = Metric("exponent", "exponent", False, 2)


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
    w7_calls: int
    w7_concurrency: int
    w7_concurrent_calls: int
    w7_repeats: int
    w8_chunks: list[int]
    w8_max_mib: int
    w8_budget_s: float
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
            w7_calls=2000,
            w7_concurrency=256,
            w7_concurrent_calls=5000,
            w7_repeats=3,
            w8_chunks=[16, 1024, 65536],
            w8_max_mib=8,
            w8_budget_s=6.0,
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
            w7_calls=20,
            w7_concurrency=16,
            w7_concurrent_calls=64,
            w7_repeats=1,
            w8_chunks=[1024],
            w8_max_mib=1,
            w8_budget_s=2.0,
            timeout=60.0,
        )


# Who runs where. Old rows keep their keys so results compare across versions.
EVERYONE = ["floor", "httpx_json", "sdk", "dify_oapi2", "dify_client"]
W5_ASYNC = ["floor", "sdk", "aiohttp", "sdk_aiohttp", "floor_aiohttp"]
W5_ASYNC_INFO = ["httpx_json", "sdk_defaults", "dify_oapi2"]  # one round in a full run
# W7: the raw floors, the peers, this SDK and the floor on every transport that plugs in.
W7_SYNC = [
    "requests",
    "floor",
    "floor_curl",
    "floor_urllib3",
    "sdk",
    "sdk_transport",
    "sdk_curl",
    "sdk_urllib3",
    "dify_client",
    "dify_oapi2",
]
W7_ASYNC = [
    "aiohttp",
    "floor",
    "floor_aiohttp",
    "floor_curl",
    "sdk",
    "sdk_transport",
    "sdk_aiohttp",
    "sdk_curl",
    "dify_oapi2",
]
W7_REFS_SYNC = ["requests", "floor", "dify_client", "dify_oapi2"]
W7_REFS_ASYNC = ["aiohttp", "floor", "dify_oapi2"]
W8 = ["floor", "httpx_sse", "sdk"]
# The rows --baseline repeats on an older commit: the default clients and the aiohttp backend.
SDK_ROWS = ("sdk", "sdk_aiohttp")


def build_plan(
    s: Settings, pythons: dict[str, str], peer_skip: dict[str, str], sniffio: dict[str, Any]
) -> list[Case]:
    def c(key: str, **kw: Any) -> Contender:
        venv = CONTENDERS[key].venv
        python = pythons.get(venv, sys.executable)
        return Contender(kw.pop("name", key), key, python, skip=peer_skip.get(venv), **kw)

    def rows(keys: list[str], **kw: Any) -> list[Contender]:
        return [c(k, **kw) for k in keys]

    sizes = s.sizes.to_dict()
    cases = [
        Case(
            "W1",
            "import + client construction, fresh process",
            "w1",
            {},
            [
                Metric("import_client_ms", "import+client ms", False),
                Metric("importtime_ms", "-X importtime ms", False),
                Metric("peak_rss_mb", "peak RSS MB", False),
            ],
            rows(EVERYONE),
            s.w1_repeats,
        ),
        Case(
            "W2",
            "blocking chat (~3.4 KB answer), in-process MockTransport",
            "w2",
            {"calls": s.w2_calls, "warmup": s.w2_warmup},
            [US],
            rows(EVERYONE),
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
                    "w3",
                    {"case": case, "mode": mode, "sizes": sizes, "runs": s.w3_runs},
                    [EVENTS_CPU, FIRST_CPU] if mode == "inproc" else [EVENTS, FIRST],
                    rows(EVERYONE),
                    s.w3_repeats,
                )
            )
    for case in ("documents", "messages"):
        cases.append(
            Case(
                f"W4-{case}",
                f"{case} list of {s.sizes.list_items}, in-process MockTransport",
                "w4",
                {"case": case, "sizes": sizes, "calls": s.w4_calls, "warmup": s.w4_warmup},
                [US],
                rows(EVERYONE),
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
    async_rows = rows(W5_ASYNC) + rows(W5_ASYNC_INFO, repeats=info) + rows(["dify_client"])
    for key in ("floor", "sdk"):
        row = c(key, name=key + sniffio.get("variant_name", "+sniffio"))
        row.repeats, row.env = sniffio.get("repeats"), dict(sniffio.get("env", {}))
        row.skip = sniffio.get("skip")
        async_rows.append(row)
    cases.append(
        Case(
            "W5-async",
            f"{s.w5_calls} blocking chats, async, {s.w5_concurrency} in flight, loopback",
            "w5",
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
            "w5",
            {**w5, "case": "sync"},
            [RPS, CPU],
            rows(EVERYONE),
            s.w5_repeats,
        )
    )
    mb = s.sizes.big_stream_bytes // (1024 * 1024)
    for case, what in (("sse", f"{mb} MB event stream"), ("binary", f"{mb} MB binary to a file")):
        cases.append(
            Case(
                f"W6-{case}",
                f"memory: {what}, loopback",
                "w6",
                {"case": case, "sizes": sizes},
                [RSS, SECONDS],
                rows(EVERYONE),
                s.w6_repeats,
            )
        )
    cases += w7_cases(s, rows)
    for chunk in s.w8_chunks:
        cases.append(
            Case(
                f"W8-{chunk}B",
                f"SSE framer: one event of 256 KiB doubling to {s.w8_max_mib} MiB, "
                f"in {chunk}-byte chunks, in-process",
                "w8",
                {
                    "chunk": chunk,
                    "min_kib": 256,
                    "max_mib": s.w8_max_mib,
                    "budget_s": s.w8_budget_s,
                    "repeats": 1 if s.smoke else 2,
                },
                [FRAMER_CPU, FRAMER_MIB, EXPONENT],
                rows(W8),
                1,
                base="httpx_sse",
            )
        )
    return cases


def with_baseline(cases: list[Case], tag: str, env: dict[str, str]) -> None:
    """Beside each row of this SDK, the same row run on its sources at another commit
    (``env`` puts them first on the path; ``tag`` names the commit): a before/after in one
    run."""
    for case in cases:
        for row in list(case.contenders):
            if row.key in SDK_ROWS and row.name == row.key and not row.skip:
                before = Contender(f"{row.key}@{tag}", row.key, row.python, dict(env))
                before.repeats = row.repeats
                case.contenders.insert(case.contenders.index(row) + 1, before)


def w7_cases(s: Settings, rows: Callable[[list[str]], list[Contender]]) -> list[Case]:
    """W7: CPU per event and per request over loopback, with ratios to floors and peers."""
    sizes = s.sizes.to_dict()
    stream = {"sizes": sizes, "runs": s.w3_runs}
    calls = {"calls": s.w7_calls, "warmup": 50}
    n = s.sizes.stream_events
    specs = [
        (
            "stream-sync",
            f"chat stream of {n} events, sync",
            stream,
            [US_EVENT],
            W7_SYNC,
            W7_REFS_SYNC,
        ),
        (
            "stream-async",
            f"chat stream of {n} events, async",
            stream,
            [US_EVENT],
            W7_ASYNC,
            W7_REFS_ASYNC,
        ),
        (
            "call-sync",
            "blocking chat, sync, one in flight",
            calls,
            [US_REQUEST],
            W7_SYNC,
            W7_REFS_SYNC,
        ),
        (
            "call-async",
            "blocking chat, async, one in flight",
            calls,
            [US_REQUEST],
            W7_ASYNC,
            W7_REFS_ASYNC,
        ),
        (
            "concurrent",
            f"{s.w7_concurrent_calls} blocking chats, async, {s.w7_concurrency} in flight",
            {
                "calls": s.w7_concurrent_calls,
                "warmup": s.w7_concurrency,
                "concurrency": s.w7_concurrency,
            },
            [RPS, US_REQUEST],
            W7_ASYNC,
            W7_REFS_ASYNC,
        ),
    ]
    if s.smoke:  # every adapter's stream still runs; the calls only for the targets' rows
        few = {"floor", "sdk", "aiohttp", "sdk_aiohttp", "requests"}
        specs = [
            (
                case,
                title,
                params,
                metrics,
                [k for k in keys if k in few] if "call" in case or case == "concurrent" else keys,
                refs,
            )
            for case, title, params, metrics, keys, refs in specs
        ]
    return [
        Case(
            f"W7-{case}",
            f"on the wire: {title}, loopback, client CPU",
            "w7",
            {**params, "case": case},
            metrics,
            rows(keys),
            s.w7_repeats,
            refs=refs,
        )
        for case, title, params, metrics, keys, refs in specs
    ]


# -- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    workload: str
    text: str
    check: Callable[[list[Case], str], tuple[str, float | None]]


def _figure(cases: list[Case], case_key: str, contender: str, key: str, stat: str) -> float | None:
    for case in cases:
        if case.key == case_key:
            entry = case.results.get(contender, {})
            if entry.get("status") == "ok":
                value: float | None = entry[stat].get(key)
                return value
    return None


def ratio(
    case_key: str, key: str, mine: str | list[str], base: str, op: str, limit: float
) -> Callable[[list[Case], str], tuple[str, float | None]]:
    """``mine / base`` against ``limit``; a list of contenders: the best of them."""
    candidates = [mine] if isinstance(mine, str) else mine

    def check(cases: list[Case], stat: str) -> tuple[str, float | None]:
        b = _figure(cases, case_key, base, key, stat)
        mine_values = [_figure(cases, case_key, m, key, stat) for m in candidates]
        values = [v / b for v in mine_values if v is not None and b]
        if not values:
            return "not measured", None
        value = min(values) if op == "<=" else max(values)
        met = value <= limit if op == "<=" else value >= limit
        return ("met" if met else "MISSED"), value

    return check


def below(
    case_key: str, key: str, mine: str, limit: float
) -> Callable[[list[Case], str], tuple[str, float | None]]:
    def check(cases: list[Case], stat: str) -> tuple[str, float | None]:
        value = _figure(cases, case_key, mine, key, stat)
        if value is None:
            return "not measured", None
        return ("met" if value < limit else "MISSED"), value

    return check


SDK_SYNC = ["sdk", "sdk_transport", "sdk_curl", "sdk_urllib3"]
EV, REQ, RPS_KEY = "cpu_us_per_event", "us_per_call", "rps"
IMPORT, US_CALL, EV_S = "import_client_ms", "us_per_call", "events_per_s"

# (workload, text, case, metric key, contender(s), baseline, op, limit): mine / base op limit.
RATIO_TARGETS: list[tuple[str, str, str, str, str | list[str], str, str, float]] = [
    ("W1", "import+client ≤ 1.25x floor", "W1", IMPORT, "sdk", "floor", "<=", 1.25),
    ("W1", "≥ 2.5x faster than dify-oapi2", "W1", IMPORT, "dify_oapi2", "sdk", ">=", 2.5),
    ("W2", "µs/call ≤ 1.10x floor", "W2", US_CALL, "sdk", "floor", "<=", 1.10),
    (
        "W3",
        "chat in-process events/s ≥ 0.9x floor",
        "W3-chat-inproc",
        EV_S,
        "sdk",
        "floor",
        ">=",
        0.9,
    ),
    (
        "W3",
        "workflow in-process events/s ≥ 0.9x floor",
        "W3-workflow-inproc",
        EV_S,
        "sdk",
        "floor",
        ">=",
        0.9,
    ),
    ("W3", "chat socket events/s ≥ 0.9x floor", "W3-chat-socket", EV_S, "sdk", "floor", ">=", 0.9),
    (
        "W3",
        "workflow socket events/s ≥ 0.9x floor",
        "W3-workflow-socket",
        EV_S,
        "sdk",
        "floor",
        ">=",
        0.9,
    ),
    ("W4", "documents µs/call ≤ 1.10x floor", "W4-documents", US_CALL, "sdk", "floor", "<=", 1.10),
    ("W4", "messages µs/call ≤ 1.10x floor", "W4-messages", US_CALL, "sdk", "floor", "<=", 1.10),
    (
        "W5",
        "async req/s ≥ 0.95x raw httpx (floor)",
        "W5-async",
        RPS_KEY,
        "sdk",
        "floor",
        ">=",
        0.95,
    ),
    ("W5", "sync req/s ≥ 0.95x raw httpx (floor)", "W5-sync", RPS_KEY, "sdk", "floor", ">=", 0.95),
    (
        "W5",
        "aiohttp transport req/s ≥ 0.9x raw aiohttp",
        "W5-async",
        RPS_KEY,
        "sdk_aiohttp",
        "aiohttp",
        ">=",
        0.9,
    ),
    # issue 16, item 1: on the wire, client CPU per event and per request.
    (
        "W7",
        "sync, fastest backend, per event ≤ 1.0x dify-client",
        "W7-stream-sync",
        EV,
        SDK_SYNC,
        "dify_client",
        "<=",
        1.0,
    ),
    (
        "W7",
        "sync, fastest backend, per event ≤ 1.3x raw requests",
        "W7-stream-sync",
        EV,
        SDK_SYNC,
        "requests",
        "<=",
        1.3,
    ),
    (
        "W7",
        "aiohttp backend per event ≤ 1.15x raw aiohttp",
        "W7-stream-async",
        EV,
        "sdk_aiohttp",
        "aiohttp",
        "<=",
        1.15,
    ),
    (
        "W7",
        "aiohttp backend req/s at 256 ≥ 0.8x raw aiohttp",
        "W7-concurrent",
        RPS_KEY,
        "sdk_aiohttp",
        "aiohttp",
        ">=",
        0.8,
    ),
    (
        "W7",
        "default sync per event ≤ 1.05x raw httpx",
        "W7-stream-sync",
        EV,
        "sdk",
        "floor",
        "<=",
        1.05,
    ),
    (
        "W7",
        "default sync per request ≤ 1.05x raw httpx",
        "W7-call-sync",
        REQ,
        "sdk",
        "floor",
        "<=",
        1.05,
    ),
    (
        "W7",
        "default async per event ≤ 1.05x raw httpx",
        "W7-stream-async",
        EV,
        "sdk",
        "floor",
        "<=",
        1.05,
    ),
]
# (workload, text, case, metric key, contender, limit): value < limit.
BELOW_TARGETS = [
    ("W6", "event stream RSS growth < 20 MB", "W6-sse", "rss_growth_mb", "sdk", 20.0),
    ("W6", "binary download RSS growth < 20 MB", "W6-binary", "rss_growth_mb", "sdk", 20.0),
    # issue 11, item 10: the framer's time is linear in the event's size.
    *[
        (
            "W8",
            f"framer linear, {n}-byte chunks (exponent ≤ 1.2)",
            f"W8-{n}B",
            "exponent",
            "sdk",
            1.2,
        )
        for n in (16, 1024, 65536)
    ],
]
TARGETS = [Target(w, text, ratio(*rest)) for w, text, *rest in RATIO_TARGETS] + [
    Target(w, text, below(*rest)) for w, text, *rest in BELOW_TARGETS
]
