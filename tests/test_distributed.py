"""A JSONL batch across a Dask cluster: one cap on the app cluster-wide, a journal that survives
the driver's SIGKILL with every item sent exactly once, the key only on the workers.

A local cluster (``LocalCluster``, workers as threads of this process, a real scheduler on
127.0.0.1) runs the tasks against :class:`FaultServer`, which counts what it is sent and
how much at once. Skipped when ``dask[distributed]`` is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "distributed",
    reason="dask[distributed] is not installed (pip install 'dify-oapi2[dask]')",
)

from dify_oapi import AuthenticationError
from dify_oapi.cli.errors import Exit
from dify_oapi.jobs import cluster

from .faults.server import Exchange, FaultServer, frame, respond
from .test_cli import ENV
from .test_examples import load_example

KEY = "app-DASKSECRET0123456789"
PATH = "/v1/chat-messages"
TIMEOUT = 60


class Chat:
    """Answers chat messages after ``delay`` (blocking JSON or a stream, as asked); counts
    them per query and the most it answered at once."""

    def __init__(self, delay: float, status: int = 200) -> None:
        self.delay = delay
        self.status = status
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.queries: Counter[str] = Counter()

    def __call__(self, ex: Exchange) -> None:
        body = ex.request.json()
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.queries[body["query"]] += 1
        try:
            time.sleep(self.delay)
        finally:
            with self.lock:
                self.active -= 1
        if self.status != 200:
            error = {"code": "unauthorized", "message": "Access token is invalid", "status": 401}
            respond(self.status, json=error)(ex)
        elif body.get("response_mode") == "streaming":
            ids = {"task_id": "t", "message_id": "m", "conversation_id": "c"}
            events = frame({"event": "message", "answer": body["query"], **ids})
            events += frame({"event": "message_end", **ids, "metadata": {}})
            respond(200, body=events, content_type="text/event-stream")(ex)
        else:
            respond(200, json={"event": "message", "answer": body["query"]})(ex)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer()
    try:
        yield srv
    finally:
        srv.close()
    assert srv.errors == [], srv.errors


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """Two workers of four threads each, a scheduler on 127.0.0.1 (a driver in another
    process can reach it)."""
    distributed = cluster.distributed()
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=4,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",
    ) as local:
        yield local


@pytest.fixture
def dask_client(dask_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DIFY_API_KEY", KEY)  # the workers' environment (threads of this one)
    with cluster.distributed().Client(dask_cluster) as client:
        yield client


def write_input(path: Path, count: int) -> None:
    lines = [
        json.dumps({"id": f"p{i}", "args": {"query": f"q{i}", "user": "u"}}) for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")


def read_output(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_the_cap_holds_across_the_cluster(
    dask_client: Any, server: FaultServer, tmp_path: Path
) -> None:
    chat = Chat(delay=0.1)
    server.route("POST", PATH, chat)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 30)
    report = cluster.run_file(
        dask_client, "chat.send", source, target, concurrency=3, base_url=server.base_url
    )
    assert (report.total, report.ran, report.failed) == (30, 30, 0)
    records = read_output(target)
    assert [(r["id"], r["index"], r["ok"]) for r in records] == [
        (f"p{i}", i, True) for i in range(30)
    ]
    assert [r["result"]["answer"] for r in records] == [f"q{i}" for i in range(30)]
    assert chat.queries == Counter(f"q{i}" for i in range(30))  # each sent once
    assert 2 <= chat.peak <= 3  # 8 worker threads, one cap of 3 on the app
    assert server.stats.max_in_flight <= 3
    sent = b"".join(r.body or b"" for r in server.requests) + target.read_bytes()
    assert KEY.encode() not in sent  # the key went in headers only, never into the journal


def test_a_worker_without_a_key_stops_before_anything_is_sent(
    dask_client: Any, server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.route("POST", PATH, Chat(delay=0))
    monkeypatch.delenv("DIFY_API_KEY")
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 3)
    with pytest.raises(cluster.ClusterError, match="no DIFY_API_KEY in the environment"):
        cluster.run_file(dask_client, "chat.send", source, target, base_url=server.base_url)
    assert server.requests == []


def test_a_wrong_key_stops_the_cluster_batch(
    dask_client: Any, server: FaultServer, tmp_path: Path
) -> None:
    chat = Chat(delay=0.05, status=401)
    server.route("POST", PATH, chat)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 40)
    with pytest.raises(AuthenticationError):
        cluster.run_file(
            dask_client, "chat.send", source, target, concurrency=2, base_url=server.base_url
        )
    assert sum(chat.queries.values()) <= 2 * 2  # the tasks already out, not the 40
    assert target.read_text() == ""


DRIVER = [sys.executable, "-m", "dify_oapi", "batch", "chat.send", "--no-progress", "-c", "3"]


def test_a_killed_driver_resumes_sending_every_item_exactly_once(
    dask_client: Any, dask_cluster: Any, server: FaultServer, tmp_path: Path
) -> None:
    chat = Chat(delay=0.3)
    server.route("POST", PATH, chat)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 24)
    address = dask_cluster.scheduler_address
    command = [*DRIVER, "-i", str(source), "-o", str(target), "--dask", address]
    command += ["--base-url", server.base_url]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and driver.poll() is None:
            if target.exists() and target.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.02)
        assert driver.poll() is None, driver.communicate()
        in_flight = chat.active
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=TIMEOUT)
    finally:
        driver.kill()
        driver.wait()
    assert in_flight > 0  # calls were running on the cluster when the driver died
    written = len(read_output(target))
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.startswith(f"batch chat.send: {written} of 24 items already in")
    records = read_output(target)
    assert [(r["id"], r["ok"]) for r in records] == [(f"p{i}", True) for i in range(24)], (
        records,
        resumed.stderr,
    )
    assert [r["result"]["answer"] for r in records] == [f"q{i}" for i in range(24)]
    assert chat.queries == Counter(f"q{i}" for i in range(24))  # none twice, none lost
    assert chat.peak <= 3


def test_the_driver_refuses_a_key_of_its_own(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_input(source, 1)
    command = [*DRIVER, "-i", str(source), "-o", str(tmp_path / "o"), "--api-key", KEY]
    done = subprocess.run(
        [*command, "--dask", "tcp://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=ENV,
    )
    assert done.returncode == Exit.USAGE
    assert "each worker calls Dify with the DIFY_API_KEY of its own environment" in done.stderr


# -- the ledger's rules, on a stand-in for the scheduler ----------------------------------------


class StandIn:
    """What the ledger reads of a scheduler: its workers."""

    workers: dict[str, Any]


def test_the_ledger_sends_each_item_once_across_epochs() -> None:
    scheduler = StandIn()
    scheduler.workers = {"tcp://w1": None}
    run = {"dask_scheduler": scheduler}
    epoch, settled, running = cluster._open("job", **run)
    assert (epoch, settled, running) == (1, {}, {})
    assert cluster._claim("job", "a", epoch, "tcp://w1", **run) == "go"
    assert cluster._claim("job", "a", epoch, "tcp://w1", **run) == ("lost", "tcp://w1")
    assert cluster._claim("job", "b", epoch, "tcp://w2", **run) == "go"
    cluster._settle("job", "b", {"ok": True}, **run)
    assert cluster._claim("job", "b", epoch, "tcp://w1", **run) == ("done", {"ok": True})
    # A new driver: a new epoch fences off the old one's tasks that had not claimed yet.
    epoch2, settled, running = cluster._open("job", **run)
    assert (epoch2, settled, running) == (2, {"b": {"ok": True}}, {"a": "tcp://w1"})
    assert cluster._claim("job", "c", epoch, "tcp://w1", **run) == "stale"
    assert cluster._poll("job", ["a"], **run) == ({}, {})  # still running on a live worker
    scheduler.workers = {}
    assert cluster._poll("job", ["a"], **run) == ({}, {"a": "tcp://w1"})  # its worker is gone
    cluster._ack("job", ["a", "b"], **run)
    assert cluster._claim("job", "b", epoch2, "tcp://w1", **run) == "journaled"
    cluster._hold("job", True, **run)
    assert cluster._claim("job", "d", epoch2, "tcp://w1", **run) == "held"
    cluster._close("job", **run)
    assert cluster._claim("job", "d", epoch2, "tcp://w1", **run) == "stale"


# -- the example ------------------------------------------------------------------------------


def test_the_example_runs_a_batch_on_a_local_cluster(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = Chat(delay=0.02)
    server.route("POST", PATH, chat)
    monkeypatch.setenv("DIFY_API_KEY", KEY)
    monkeypatch.setenv("DIFY_BASE_URL", server.base_url)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 6)
    example = load_example("distributed_batch")
    assert example.main(["chat.send", str(source), str(target), "--threads"]) == 0
    assert [r["result"]["answer"] for r in read_output(target)] == [f"q{i}" for i in range(6)]
    assert sum(chat.queries.values()) == 6
    assert os.environ["DIFY_API_KEY"] == KEY


def test_a_call_whose_worker_dies_is_not_sent_again(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dask re-runs the task of a dead worker elsewhere; the re-run finds the item claimed
    and records that its outcome is unknown instead of sending it a second time."""
    chat = Chat(delay=1.0)
    server.route("POST", PATH, chat)
    monkeypatch.setenv("DIFY_API_KEY", KEY)  # inherited by the worker processes
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 1)
    distributed = cluster.distributed()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as dask_client,
    ):

        def kill_the_sender() -> None:
            deadline = time.monotonic() + TIMEOUT
            while not chat.active and time.monotonic() < deadline:
                time.sleep(0.01)
            busy = [w for w, tasks in dask_client.processing().items() if tasks]
            with contextlib.suppress(OSError):  # the worker is gone before it can answer
                dask_client.run(os._exit, 1, workers=busy)

        killer = threading.Thread(target=kill_the_sender)
        killer.start()
        report = cluster.run_file(
            dask_client, "chat.send", source, target, base_url=server.base_url
        )
        killer.join()
    assert report.failed == 1
    record = read_output(target)[0]
    assert record["error"]["type"] == "OutcomeUnknownError"
    assert "it was not sent again" in record["error"]["message"]
    assert chat.queries == Counter({"q0": 1})
