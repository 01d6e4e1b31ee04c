"""``dify-oapi`` exit codes, one per kind of failure, against a real server on 127.0.0.1.

A cron job or CI step decides from the code alone whether to retry: 5 and 6 are worth a
retry later, 2, 3 and 4 are not, 1 means some of the work failed (a batch's items).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dify_oapi.cli.errors import EXIT_HELP, Exit

from .faults.server import FaultServer, closed_port, garbage, reset, respond, stall
from .test_cli import ENV, TIMEOUT

KEY = "app-exit-codes-test"
INFO = "/v1/info"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer()
    try:
        yield srv
    finally:
        srv.close()
    assert srv.errors == [], srv.errors


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dify_oapi", "--base-url", url, "--api-key", KEY]
    return subprocess.run(
        [*command, "--max-retries", "0", "--timeout", "1", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=ENV,
    )


def dify_error(status: int, code: str) -> dict[str, object]:
    return {"code": code, "message": f"answered {status}", "status": status}


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "unauthorized", Exit.AUTH),
        (403, "forbidden", Exit.AUTH),
        (400, "invalid_param", Exit.REJECTED),
        (404, "not_found", Exit.REJECTED),
        (409, "conflict", Exit.REJECTED),
        (413, "file_too_large", Exit.REJECTED),
        (422, "unprocessable", Exit.REJECTED),
        (429, "too_many_requests", Exit.RATE_LIMITED),
        (429, "rate_limit_error", Exit.RATE_LIMITED),
        (500, "internal_server_error", Exit.TRANSIENT),
        (502, "bad_gateway", Exit.TRANSIENT),
        (503, "service_unavailable", Exit.TRANSIENT),
    ],
    ids=lambda v: str(v),
)
def test_each_status_class_has_its_exit_code(
    server: FaultServer, status: int, code: str, expected: Exit
) -> None:
    server.route("GET", INFO, respond(status, json=dify_error(status, code)))
    done = run(server.base_url, "call", "dify.get_info")
    assert done.returncode == expected, done.stderr
    assert done.stderr.startswith("dify-oapi: error: ") and done.stderr.count("\n") == 1
    assert len(server.requests_to(INFO)) == 1


@pytest.mark.parametrize(
    "fault",
    ["refused", "reset", "timeout", "not-json"],
)
def test_network_and_server_faults_are_transient(server: FaultServer, fault: str) -> None:
    url = server.base_url
    if fault == "refused":
        url = f"http://127.0.0.1:{closed_port()}/v1"
    elif fault == "reset":
        server.route("GET", INFO, reset())
    elif fault == "timeout":
        server.route("GET", INFO, stall(5.0))
    else:
        server.route(
            "GET", INFO, respond(200, body=b"<html>proxy</html>", content_type="text/html")
        )
    done = run(url, "call", "dify.get_info")
    assert done.returncode == Exit.TRANSIENT, done.stderr
    assert "Traceback" not in done.stderr


def test_a_protocol_error_is_transient(server: FaultServer) -> None:
    server.route("GET", INFO, garbage())
    assert run(server.base_url, "call", "dify.get_info").returncode == Exit.TRANSIENT


def test_usage_errors_exit_2(server: FaultServer) -> None:
    assert run(server.base_url, "call", "dify.get_info", "nonsense").returncode == Exit.USAGE
    assert run(server.base_url, "call", "no.such_op").returncode == Exit.USAGE
    assert run(server.base_url, "call", "chat.send", "bogus_field=1").returncode == Exit.USAGE
    assert run(server.base_url, "--no-such-option").returncode == Exit.USAGE
    assert server.requests == []  # none of them sent anything


def test_success_exits_0(server: FaultServer) -> None:
    server.route("GET", INFO, respond(200, json={"name": "app", "mode": "chat"}))
    done = run(server.base_url, "call", "dify.get_info")
    assert done.returncode == Exit.OK, done.stderr
    assert json.loads(done.stdout)["name"] == "app"


def write_lines(path: Path, count: int) -> None:
    path.write_text("".join(json.dumps({"id": i, "query": f"q{i}"}) + "\n" for i in range(count)))


def test_a_batch_with_failed_items_exits_1(server: FaultServer, tmp_path: Path) -> None:
    failed = respond(400, json=dify_error(400, "invalid_param"))
    server.route("GET", INFO, failed, respond(200, json={"name": "app"}))
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(4)))
    done = run(
        server.base_url, "batch", "dify.get_info", "-i", str(source), "-o", str(target), "-c", "1"
    )
    assert done.returncode == Exit.FAILED, done.stderr
    assert "1 of 4 items failed" in done.stderr
    assert [json.loads(line)["ok"] for line in target.read_text().splitlines()] == [
        False,
        True,
        True,
        True,
    ]


def test_a_batch_whose_key_is_wrong_stops_with_exit_3(server: FaultServer, tmp_path: Path) -> None:
    chat = "/v1/chat-messages"
    server.route("POST", chat, respond(401, json=dify_error(401, "unauthorized")))
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, 50)
    done = run(
        server.base_url, "batch", "chat.send", "-i", str(source), "-o", str(target), "-c", "4"
    )
    assert done.returncode == Exit.AUTH, done.stderr
    assert "batch stopped without sending the other items (0 of 50 results" in done.stderr
    assert len(server.requests_to(chat)) == 4
    assert target.read_text() == ""  # nothing recorded: the next run, with the right key, does all


def test_the_exit_codes_are_in_the_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dify_oapi", "--help"], capture_output=True, text=True, env=ENV
    )
    shown = " ".join(done.stdout.split())
    assert EXIT_HELP in shown
    for code in Exit:
        assert f" {code.value} " in f" {EXIT_HELP} "
    batch_help = subprocess.run(
        [sys.executable, "-m", "dify_oapi", "batch", "--help"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert EXIT_HELP in " ".join(batch_help.stdout.split())
