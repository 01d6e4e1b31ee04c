"""The benchmark suite's smoke run: every workload once, tiny sizes, so the suite cannot rot.

Times nothing; it checks the suite completes, every case is reported, this SDK and the floor
produce figures in every case (each contender checks its own decoded results), every
transport and raw floor streams over the loopback socket, and the peers are shown as skipped
with a reason rather than left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    "W1",
    "W2",
    "W3-chat-inproc",
    "W3-workflow-inproc",
    "W3-chat-socket",
    "W3-workflow-socket",
    "W4-documents",
    "W4-messages",
    "W5-async",
    "W5-sync",
    "W6-sse",
    "W6-binary",
    "W7-stream-sync",
    "W7-stream-async",
    "W7-call-sync",
    "W7-call-async",
    "W7-concurrent",
    "W8-1024B",
]
METRICS = {
    "W1": {"import_client_ms", "importtime_ms", "peak_rss_mb"},
    "W2": {"us_per_call"},
    "W3": {"events_per_s", "first_event_us", "cpu_us_per_event"},
    "W4": {"us_per_call"},
    "W5": {"rps", "cpu_per_1000"},
    "W6": {"rss_growth_mb"},
    "W7": {"us_per_call"},
    "W8": {"cpu_s_largest", "largest_mib", "exponent"},
}
# Each transport and raw floor runs its own stream over the loopback socket: an adapter that
# rots fails here, not in the next full run.
ON_THE_WIRE = {
    "W7-stream-sync": [
        "requests",
        "floor_curl",
        "floor_urllib3",
        "sdk_transport",
        "sdk_curl",
        "sdk_urllib3",
    ],
    "W7-stream-async": ["aiohttp", "floor_aiohttp", "floor_curl", "sdk_aiohttp", "sdk_curl"],
}


def test_smoke_run_writes_every_case(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["smoke"] is True
    assert [case["key"] for case in report["cases"]] == CASES
    by_key = {case["key"]: case for case in report["cases"]}

    for case in report["cases"]:
        contenders = case["contenders"]
        for name in ("floor", "sdk"):
            entry = contenders[name]
            assert entry["status"] == "ok", (case["key"], name, entry.get("reason"))
            metrics = METRICS[case["workload"]]
            if case["key"].startswith("W7-stream"):
                metrics = {"cpu_us_per_event", "events_per_s"}
            assert metrics <= set(entry["median"]), (case["key"], name)
            assert all(value >= 0 for value in entry["median"].values())
        # Every figure is also given as a ratio to the baseline measured in the same run.
        first = case["metrics"][0]["key"]
        assert contenders[case["baseline"]]["ratio"][first] == 1.0
        assert first in contenders["sdk"]["ratio"]
        for peer in ("dify_oapi2", "dify_client"):
            if peer in contenders:
                assert contenders[peer]["status"] == "n/a"
                assert contenders[peer]["reason"] == "skipped in smoke mode"
        for ref in case["refs"]:  # W7: ratios to the raw floors and the peers
            if contenders.get(ref, {}).get("status") == "ok":
                assert contenders["sdk"]["ratios"][ref] > 0

    for key, names in ON_THE_WIRE.items():
        for name in names:
            entry = by_key[key]["contenders"][name]
            assert entry["status"] == "ok", (key, name, entry.get("reason"))
            assert entry["median"]["cpu_us_per_event"] > 0
    ratios = by_key["W7-stream-sync"]["contenders"]["sdk"]["ratios"]
    assert set(ratios) == {"requests", "floor"}  # the peers are skipped in smoke mode

    # The framer workload decoded the 1 MiB event at every size up to it, for each contender.
    for name, entry in by_key["W8-1024B"]["contenders"].items():
        assert entry["status"] == "ok", (name, entry.get("reason"))
        assert entry["median"]["largest_mib"] == 1.0
        assert {"cpu_s_256k", "cpu_s_512k", "cpu_s_1024k"} <= set(entry["median"])

    async_case = by_key["W5-async"]["contenders"]
    for name in ("aiohttp", "sdk_aiohttp"):
        assert async_case[name]["status"] == "ok", async_case[name]
    assert by_key["W5-sync"]["contenders"]["dify_client"]["status"] == "n/a"
    assert len(report["targets"]) == 24
    assert "W2" in proc.stdout and "Targets" in proc.stdout


FAKE_VALGRIND = """#!{python}
import json, subprocess, sys
cmd = [a for a in sys.argv[1:] if not a.startswith("--")]
proc = subprocess.run(cmd, capture_output=True, text=True)
sys.stdout.write(proc.stdout)
params = json.loads(cmd[-1])
ops = params.get("calls") or params["runs"]
per = {{"floor": 100, "sdk": 110}}[cmd[-3]]
sys.stderr.write(f"==1== Collected : {{5000 + per * ops}}\\n")
sys.exit(proc.returncode)
"""


def test_instruction_counts_run_every_worker_and_divide_by_the_extra_operations(
    tmp_path: Path,
) -> None:
    # valgrind is not on a fresh machine: a stand-in runs the real worker, then reports
    # 100 instructions per unit of work for the floor and 110 for this SDK.
    fake = tmp_path / "valgrind"
    fake.write_text(FAKE_VALGRIND.format(python=sys.executable))
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    saved = tmp_path / "instructions.json"
    script = ROOT / "benchmarks" / "instructions.py"
    out = subprocess.run(
        [sys.executable, str(script), "W2", "W4", "--counter", "valgrind", "--output", str(saved)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.splitlines()
    figures = [line.split() for line in out if line.startswith("  ")]
    assert figures == [["floor", "100", "1.00x", "floor"], ["sdk", "110", "1.10x", "floor"]] * 3
    counts = json.loads(saved.read_text())
    assert counts["counter"] == "valgrind"
    assert counts["W2 blocking chat, per call"] == {"floor": 100.0, "sdk": 110.0}


def test_a_lockstep_server_gives_one_read_per_event() -> None:
    # The instruction counts of W7 are stable only if every contender reads each event alone:
    # in lockstep the server writes an event once the client has read the one before, so even
    # a client slower than the server finds exactly one chunk (one event) in each read.
    if not os.path.exists("/proc/net/tcp"):
        import pytest

        pytest.skip("lockstep reads the receive queue from /proc/net/tcp (Linux)")
    import socket
    import time

    script = ROOT / "benchmarks" / "server.py"
    server = subprocess.Popen(
        [sys.executable, str(script), "--smoke", "--lockstep", "--max-seconds", "60"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        body = b'{"query":"q","user":"u","inputs":{},"response_mode":"streaming"}'
        reads: list[bytes] = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/chat-messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            while not reads or not reads[-1].endswith(b"0\r\n\r\n"):
                reads.append(sock.recv(1 << 20))
                assert reads[-1], "the server closed the stream early"
                time.sleep(0.002)  # slower than the server: free writes would pile up
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    head, *events, end = reads
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert end == b"0\r\n\r\n"
    import importlib.util

    where = ROOT / "benchmarks" / "payloads.py"
    spec = importlib.util.spec_from_file_location("benchmark_payloads", where)
    assert spec is not None and spec.loader is not None
    payloads = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(payloads)
    # each read holds one whole chunk, and each chunk one event of the stream, in order
    sent = payloads.chat_stream(payloads.Sizes.smoke())
    assert events == [b"%x\r\n%s\r\n" % (len(event), event) for event in sent]


def test_the_httpx_layer_bound_runs() -> None:
    script = ROOT / "benchmarks" / "httpx_layer.py"
    out = subprocess.run(
        [sys.executable, str(script), "--calls", "50", "--rounds", "1", "--raw-aiohttp-us", "300"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    per = float(out.split("alone: ", 1)[1].split(" µs", 1)[0])
    bound = float(out.split("at most ", 1)[1].split("x", 1)[0])
    assert per > 0 and abs(bound - 300 / (300 + per)) <= 0.01
