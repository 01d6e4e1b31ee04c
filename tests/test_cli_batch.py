"""``dify-oapi batch``: JSONL in and out, input order, resuming, retrying failures, progress.

The killed-and-resumed test serves a slow emulator, kills the batch after a few results
are written, resumes it, and checks that every input is in the output exactly once, in
input order, and that finished items were not sent again.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dify_oapi import Client
from dify_oapi.cli.errors import Exit
from dify_oapi.emulator import Emulator, EmulatorServer

from .test_cli import APP_KEY, ENV, TIMEOUT, cli, one_error_line, popen

USER = "dify-oapi-cli"  # the default --user
CLI = [sys.executable, "-m", "dify_oapi"]


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with emulator.serve(host="127.0.0.1", port=0) as served:
        yield served


def write_jsonl(path: Path, rows: list[Any]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def conversations(server: EmulatorServer, user: str = USER) -> int:
    """How many chat messages reached the server (each batch item starts a conversation)."""
    with Client(api_key=APP_KEY, base_url=server.url, max_retries=0) as client:
        return sum(1 for _ in client.chat.iter_conversations(user=user, limit=100))


def test_a_killed_batch_resumes_with_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    total = 30
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"id": f"item-{i:02d}", "query": f"question {i}"} for i in range(total)])
    emulator = Emulator(latency=0.2)
    with emulator.serve(port=0) as server:
        args = ["batch", "chat.send", "-i", str(source), "-o", str(target), "-c", "2"]
        proc = popen(*args, "--no-progress", server=server)
        try:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                if target.exists() and target.read_bytes().count(b"\n") >= 3:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the batch ended before it could be killed"
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        finally:
            proc.kill()
            proc.wait()
        before = target.read_bytes()
        written = before.splitlines(keepends=True)
        if written and not written[-1].endswith(b"\n"):
            written = written[:-1]  # a line the kill cut short: the resume drops it
        kept = len(written)
        assert 3 <= kept < total
        assert [json.loads(line)["id"] for line in written] == [
            f"item-{i:02d}" for i in range(kept)
        ]

        emulator.latency = 0.0
        resumed = cli(*args, server=server)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stderr.splitlines()[0] == (
            f"batch chat.send: {kept} of {total} items already in {target}; running {total - kept}"
        )
        sent = conversations(server)

    records = read_jsonl(target)
    assert [r["id"] for r in records] == [f"item-{i:02d}" for i in range(total)]
    assert [r["index"] for r in records] == list(range(total))
    assert all(r["ok"] for r in records)
    assert [r["result"]["answer"] for r in records] == [f"question {i}" for i in range(total)]
    # What the killed run had written is kept as it was, and those items were not sent again
    # (only the calls in flight when it was killed, at most --concurrency, ran twice).
    assert target.read_bytes().startswith(b"".join(written))
    assert total <= sent <= total + 2


def test_a_second_batch_on_the_same_output_is_refused(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"query": f"q{i}"} for i in range(50)])
    emulator = Emulator(latency=0.5)
    with emulator.serve(port=0) as server:
        args = ["batch", "chat.send", "-i", str(source), "-o", str(target), "-c", "1"]
        first = popen(*args, "--no-progress", server=server)
        try:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and not target.exists():
                time.sleep(0.02)
            second = cli(*args, server=server)
        finally:
            first.kill()
            first.wait()
    assert (
        one_error_line(second, Exit.USAGE)
        == f"dify-oapi: error: another batch is writing to {target}"
    )


def test_failed_items_are_recorded_then_retried_on_request(
    emulator: Emulator, server: EmulatorServer, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"id": f"q{i}", "args": {"query": f"question {i}"}} for i in range(5)])
    emulator.fail_next("chat.send", status=400, code="invalid_param", message="Bad.", times=2)
    args = ["batch", "chat.send", "-i", str(source), "-o", str(target), "-c", "1", "--no-progress"]

    first = cli(*args, server=server)
    assert one_error_line(first, Exit.FAILED) == (
        f"dify-oapi: error: 2 of 5 items failed (their errors are in {target}); "
        "add --retry-failed to run them again"
    )
    records = read_jsonl(target)
    assert [r["ok"] for r in records] == [False, False, True, True, True]
    assert records[0] == {
        "id": "q0",
        "index": 0,
        "ok": False,
        "error": {
            "type": "BadRequestError",
            "status": 400,
            "code": "invalid_param",
            "message": "Bad.",
        },
    }
    assert conversations(server) == 3

    # Without --retry-failed nothing runs again.
    again = cli(*args, server=server)
    assert again.returncode == 1
    assert again.stderr.splitlines()[0] == (
        f"batch chat.send: 5 of 5 items already in {target}; running 0"
    )
    assert conversations(server) == 3

    retried = cli(*args, "--retry-failed", server=server)
    assert retried.returncode == 0, retried.stderr
    records = read_jsonl(target)
    assert [(r["id"], r["index"], r["ok"]) for r in records] == [
        (f"q{i}", i, True) for i in range(5)
    ]
    assert [r["result"]["answer"] for r in records] == [f"question {i}" for i in range(5)]
    assert conversations(server) == 5
    assert not list(tmp_path.glob("*.tmp"))


def test_an_interrupted_journal_is_put_back_in_order(tmp_path: Path) -> None:
    """A file a killed --retry-failed run left: out of order, a replaced line, a cut line."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"id": name, "query": name} for name in ["a", "b", "c", "d"]])
    old_c = {"id": "c", "index": 2, "ok": True, "result": {"answer": "kept c"}}
    failed_a = {"id": "a", "index": 0, "ok": False, "error": {"type": "X", "message": "m"}}
    retried_a = {"id": "a", "index": 0, "ok": True, "result": {"answer": "kept a"}}
    stranger = {"id": "zzz", "index": 9, "ok": True, "result": {}}
    lines = [json.dumps(r) + "\n" for r in (old_c, failed_a, stranger, retried_a)]
    target.write_text("".join(lines) + '{"id": "b", "ind', "utf-8")

    done = cli("--emulator", "batch", "chat.send", "-i", str(source), "-o", str(target))
    assert done.returncode == 0, done.stderr
    records = read_jsonl(target)
    assert [r["id"] for r in records] == ["a", "b", "c", "d", "zzz"]
    assert records[0] == retried_a and records[2] == old_c and records[4] == stranger
    assert [records[1]["result"]["answer"], records[3]["result"]["answer"]] == ["b", "d"]
    assert done.stderr.splitlines()[0] == (
        f"batch chat.send: 2 of 4 items already in {target}; running 2"
    )
    assert f"kept 1 line(s) of {target} that match no input line at the end" in done.stderr


def test_input_forms_ids_and_invalid_lines(server: EmulatorServer, tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        '{"id": 1, "args": {"query": "one"}}\n'
        "\n"
        '{"query": "no id"}\n'
        '{"id": "z", "query": "zed", "user": "carol"}\n'
        "[1, 2]\n"
        '{"id": "w", "args": 5}\n'
        "not json\n",
        "utf-8",
    )
    done = cli("batch", "chat.send", "-i", str(source), "-o", str(target), server=server)
    assert "3 of 6 items failed" in one_error_line_of(done)
    records = read_jsonl(target)
    assert [(r["id"], r["index"], r["ok"]) for r in records] == [
        (1, 0, True),
        (None, 1, True),
        ("z", 2, True),
        (None, 3, False),
        ("w", 4, False),
        (None, 5, False),
    ]
    assert [r["result"]["answer"] for r in records[:3]] == ["one", "no id", "zed"]
    assert [r["error"] for r in records[3:]] == [
        {"type": "InvalidInputError", "status": None, "code": None, "message": message}
        for message in (
            "line 5 is not a JSON object",
            "line 6: 'args' is not a JSON object",
            "line 7 is not JSON: Expecting value",
        )
    ]
    assert (conversations(server), conversations(server, "carol")) == (2, 1)


def one_error_line_of(done: subprocess.CompletedProcess[str]) -> str:
    """The batch's last stderr line: its error (progress lines come before it)."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_duplicate_ids_are_refused_before_anything_runs(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"id": "x", "query": "1"}, {"id": "y", "query": "2"}, {"id": "x"}])
    done = cli("--emulator", "batch", "chat.send", "-i", str(source), "-o", str(target))
    assert one_error_line(done, Exit.USAGE) == (
        f"dify-oapi: error: {source}: line 3 repeats the id 'x' of line 1; "
        "ids must be unique so a resumed batch can tell items apart"
    )
    assert not target.exists()


def test_a_non_streaming_operation_with_the_dataset_key(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"id": n, "name": n} for n in ["Alpha", "Beta", "Gamma"]])
    done = cli(
        "--emulator",
        "--json",
        "batch",
        "knowledge.create_dataset",
        "-i",
        str(source),
        "-o",
        str(target),
    )
    assert done.returncode == 0, done.stderr
    records = read_jsonl(target)
    assert [(r["id"], r["result"]["name"]) for r in records] == [
        ("Alpha", "Alpha"),
        ("Beta", "Beta"),
        ("Gamma", "Gamma"),
    ]
    summary = json.loads(done.stdout)
    assert {k: v for k, v in summary.items() if k != "seconds"} == {
        "operation": "knowledge.create_dataset",
        "total": 3,
        "skipped": 0,
        "ran": 3,
        "ok": 3,
        "failed": 0,
        "failed_total": 0,
        "output": str(target),
        "width": 8,
        "throttled": 0,
    }


PROGRESS_LINE = re.compile(r"batch chat\.send: (\d+)/6 done, \d+\.\d/s, ETA \d+s")


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"query": f"q{i}"} for i in range(6)])
    args = ["--emulator", "batch", "chat.send", "-i", str(source), "-o", str(target), "-c", "1"]
    done = cli(*args, "--progress-interval", "0.000001")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    counts = [int(m.group(1)) for m in map(PROGRESS_LINE.fullmatch, lines[:-1]) if m]
    assert len(counts) == len(lines) - 1 and counts == sorted(counts) and counts[-1] == 6
    assert re.fullmatch(
        rf"batch chat\.send: 6 run \(0 failed\), 0 skipped, \d+\.\d/s, \d+s -> {re.escape(str(target))}",
        lines[-1],
    )
    target.unlink()
    quiet = cli(*args, "--no-progress")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert len(read_jsonl(target)) == 6


def run_on_a_terminal(command: list[str], columns: int) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal of ``columns`` x 30 (0: one reporting no size)."""
    controller, terminal = pty.openpty()
    if columns:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal, env=ENV)
    os.close(terminal)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            shown += chunk
        code = proc.wait(timeout=TIMEOUT)
    finally:
        os.close(controller)
        proc.kill()
        proc.wait()
    return code, shown.decode("utf-8", "replace")


@pytest.mark.parametrize("columns", [100, 0], ids=["sized", "unsized"])
def test_a_live_tqdm_bar_on_a_terminal(tmp_path: Path, columns: int) -> None:
    pytest.importorskip("tqdm", reason="the progress extra (tqdm) is not installed")
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"query": f"q{i}"} for i in range(6)])
    command = [*CLI, "--emulator", "batch", "chat.send", "-i", str(source), "-o", str(target)]
    code, shown = run_on_a_terminal(command, columns)
    assert code == 0, shown
    assert re.search(r"batch chat\.send: 100%\|[^|]+\| 6/6 \[[\d:]+<[\d:]+, +[\d.]+item/s\]", shown)
    assert len(read_jsonl(target)) == 6


def test_a_live_rich_bar_when_tqdm_is_missing(tmp_path: Path) -> None:
    pytest.importorskip("rich", reason="rich is not installed")
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"query": f"q{i}"} for i in range(6)])
    hide_tqdm = (
        "import sys; sys.modules['tqdm'] = None; from dify_oapi.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", hide_tqdm, "--emulator", "batch", "chat.send"]
    code, shown = run_on_a_terminal([*command, "-i", str(source), "-o", str(target)], 100)
    assert code == 0, shown
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)  # without colours and cursor moves
    assert re.search(r"batch chat\.send ━+ 6/6 [\d.]+/s +[\d:]+ ETA 0:00:00", plain), plain
    assert len(read_jsonl(target)) == 6


HIDE_BARS = (
    "import sys; sys.modules['tqdm'] = None; sys.modules['rich'] = None; "
    "from dify_oapi.cli import main; sys.exit(main(sys.argv[1:]))"
)
WAITING_LINE = re.compile(r"batch chat\.send: 0/2 done, 0\.0/s, ETA \?")


@pytest.mark.parametrize("on_terminal", [True, False], ids=["terminal", "pipe"])
def test_without_tqdm_a_line_comes_every_interval_while_no_item_finishes(
    tmp_path: Path, on_terminal: bool
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"query": f"q{i}"} for i in range(2)])
    with Emulator(latency=1.5).serve(port=0) as server:
        command = [sys.executable, "-c", HIDE_BARS, "--base-url", server.url, "--api-key", APP_KEY]
        command += ["batch", "chat.send", "-i", str(source), "-o", str(target), "-c", "1"]
        command += ["--progress-interval", "0.4"]
        if on_terminal:
            code, shown = run_on_a_terminal(command, 100)
        else:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=ENV)
            code, shown = done.returncode, done.stderr
    assert code == 0, shown
    lines = shown.replace("\r", "").splitlines()
    # The first answer takes 1.5 s: the lines before it say the batch is alive, and waiting.
    assert len([line for line in lines if WAITING_LINE.fullmatch(line)]) >= 2, shown
    assert len(read_jsonl(target)) == 2
