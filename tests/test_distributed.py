"""The distributed batch recipe (examples/distributed_batch.py) on a local Dask cluster.

Two in-process workers (``processes=False``: real scheduler and workers, no ports) run the
partitions against the emulator served on 127.0.0.1; each task builds its own ``Client``
from ``DIFY_API_KEY`` / ``DIFY_BASE_URL``. Skipped when ``dask[distributed]`` is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip(
    "distributed",
    reason="dask[distributed] is not installed (pip install 'dify-oapi2[dask]')",
)

from dify_oapi import Client
from dify_oapi.emulator import Emulator, EmulatorServer

from .test_examples import load_example

KEY = "app-distributed-test"
USER = "dask-user"


@pytest.fixture
def recipe() -> ModuleType:
    return load_example("distributed_batch")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """The emulator on 127.0.0.1, and the environment each worker's Client reads."""
    with Emulator().serve(host="127.0.0.1", port=0) as server:
        monkeypatch.setenv("DIFY_API_KEY", KEY)
        monkeypatch.setenv("DIFY_BASE_URL", server.url)
        yield server


def write_input(path: Path, count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"id": f"p{i}", "args": {"query": f"prompt {i}", "user": USER}} for i in range(count)
    ]
    rows[3] = {"id": "p3", "args": {"user": USER}}  # no query: fails before any request
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return rows


def test_partitions_concatenate_back_to_the_input(recipe: ModuleType) -> None:
    items = [(i, f"x{i}", {"query": str(i)}) for i in range(10)]
    for parts in (1, 3, 4, 10, 25):
        slices = recipe.partition(items, parts)
        assert len(slices) == min(parts, 10)
        assert [item for chunk in slices for item in chunk] == items
        assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_the_recipe_runs_a_batch_on_a_local_cluster(
    recipe: ModuleType, served: EmulatorServer, tmp_path: Path
) -> None:
    from dask.distributed import Client as DaskClient
    from dask.distributed import LocalCluster

    source = tmp_path / "in.jsonl"
    write_input(source, 12)
    items = recipe.read_items(str(source))
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        DaskClient(cluster) as dask_client,
    ):
        records = recipe.run_on_cluster(
            dask_client,
            "chat.send",
            items,
            partitions=4,
            concurrency=2,
            options={"collect": True},
        )
        workers = dask_client.run(lambda: "ok")
    assert len(workers) == 2
    assert [(r["id"], r["index"]) for r in records] == [(f"p{i}", i) for i in range(12)]
    assert [r["ok"] for r in records] == [i != 3 for i in range(12)]
    assert [r["result"]["answer"] for r in records if r["ok"]] == [
        f"prompt {i}" for i in range(12) if i != 3
    ]
    assert records[3]["error"]["type"] == "InvalidArgumentsError"
    assert "query" in records[3]["error"]["message"]
    with Client(api_key=KEY, base_url=served.url) as client:  # each prompt ran exactly once
        sent = [c.name for c in client.chat.iter_conversations(user=USER, limit=100)]
    assert len(sent) == 11


def test_the_recipe_command_line(
    recipe: ModuleType, served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 6)
    argv = ["chat.send", str(source), str(target), "--collect", "--in-process"]
    code = recipe.main([*argv, "--workers", "2", "--partitions", "3"])
    assert code == 1  # one item failed
    records = [json.loads(line) for line in target.read_text("utf-8").splitlines()]
    assert [(r["id"], r["ok"]) for r in records] == [(f"p{i}", i != 3) for i in range(6)]
    assert capsys.readouterr().err.endswith(f"6 results, 1 failed -> {target}\n")
