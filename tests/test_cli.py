"""The ``dify-oapi`` command line, run as a person runs it: a subprocess against the emulator.

Each test either uses ``--emulator`` (in-process, fresh state per run) or serves an
:class:`Emulator` on 127.0.0.1 from the test, so it can check what reached the server
through the emulator's state, and inject latency and failures.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dify_oapi import Client
from dify_oapi.cli.errors import Exit
from dify_oapi.cli.parser import build_parser
from dify_oapi.emulator import AppDefinition, Emulator, EmulatorServer
from dify_oapi.types import NodeStartedEvent

APP_KEY = "app-cli-test"
DATASET_KEY = "dataset-cli-test"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
ENV["PYTHONIOENCODING"] = "utf-8"
TIMEOUT = 60


def cli(
    *args: str,
    server: EmulatorServer | None = None,
    key: str = APP_KEY,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dify_oapi ARGS`` (against ``server`` with ``key`` when given)."""
    prefix = ["--base-url", server.url, "--api-key", key] if server is not None else []
    return subprocess.run(
        [sys.executable, "-m", "dify_oapi", *prefix, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env or ENV,
    )


def popen(*args: str, server: EmulatorServer, key: str = APP_KEY) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dify_oapi", "--base-url", server.url, "--api-key", key, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )


def one_error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with exit ``code`` and exactly one line on stderr, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dify-oapi: error: ")
    return lines[0]


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with emulator.serve(host="127.0.0.1", port=0) as served:
        yield served


def sdk(server: EmulatorServer, key: str = APP_KEY) -> Client:
    """The SDK against the same server: reads back what the command line did."""
    return Client(api_key=key, base_url=server.url, max_retries=0)


# -- --help and usage -----------------------------------------------------------------------

COMMANDS = [
    [],
    ["chat"],
    ["complete"],
    ["run-workflow"],
    ["kb"],
    ["kb", "create"],
    ["kb", "upload"],
    ["kb", "list"],
    ["kb", "retrieve"],
    ["call"],
    ["batch"],
    ["emulator"],
    ["demo"],
]


def _subcommands(parser: Any, path: list[str]) -> Iterator[list[str]]:
    yield path
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            for name, sub in choices.items():
                yield from _subcommands(sub, [*path, name])


def test_the_help_tests_cover_every_command() -> None:
    assert sorted(_subcommands(build_parser(), [])) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "dify-oapi")
def test_help_of_every_command(command: list[str]) -> None:
    done = cli(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    usage = " ".join(["usage: dify-oapi", *command])
    assert done.stdout.startswith(usage), done.stdout[:200]
    # Every command documents the connection options, before or after its name.
    assert "--api-key KEY" in done.stdout and "--emulator" in done.stdout


def test_usage_errors_exit_2_with_argparse_usage() -> None:
    unknown = cli("nope")
    assert unknown.returncode == 2
    assert "invalid choice: 'nope'" in unknown.stderr and unknown.stderr.startswith("usage:")
    missing = cli("batch", "chat.send", "--output", "out.jsonl")
    assert missing.returncode == 2
    assert "the following arguments are required: -i/--input" in missing.stderr
    no_name = cli("call")
    assert no_name.returncode == 2
    assert "dify-oapi call: error: an operation NAME is needed" in no_name.stderr
    bad_number = cli("batch", "chat.send", "-i", "a", "-o", "b", "--concurrency", "0")
    assert bad_number.returncode == 2
    assert "must be at least 1" in bad_number.stderr


# -- errors a person understands --------------------------------------------------------------


def test_a_wrong_key_says_the_api_key_is_wrong() -> None:
    emulator = Emulator(api_keys=[APP_KEY])
    with emulator.serve(port=0) as server:
        done = cli("chat", "Hello", server=server, key="app-not-the-right-one")
    line = one_error_line(done, Exit.AUTH)
    assert "API key was rejected (HTTP 401 unauthorized: Access token is invalid)" in line
    assert "--api-key or DIFY_API_KEY" in line
    assert done.stdout == ""


def test_an_app_key_on_a_knowledge_command_is_rejected_the_same_way(
    server: EmulatorServer,
) -> None:
    line = one_error_line(cli("kb", "list", server=server, key=APP_KEY), Exit.AUTH)
    assert "API key was rejected (HTTP 401" in line and "dataset- key" in line


def test_a_missing_key_says_where_to_put_one(server: EmulatorServer) -> None:
    done = cli("--base-url", server.url, "chat", "Hello")
    line = one_error_line(done, Exit.USAGE)
    assert line == (
        "dify-oapi: error: no API key: pass --api-key or set DIFY_API_KEY (an app- key), "
        "or add --emulator to try the built-in emulator"
    )
    # The key also comes from the environment.
    with_env = cli("--base-url", server.url, "chat", "Hello", env={**ENV, "DIFY_API_KEY": APP_KEY})
    assert with_env.returncode == 0 and with_env.stdout == "Hello\n"


def test_not_found_says_what_was_not_found(server: EmulatorServer) -> None:
    done = cli(
        "call", "knowledge.get_dataset", f"dataset_id={MISSING}", server=server, key=DATASET_KEY
    )
    assert one_error_line(done, Exit.REJECTED) == (
        "dify-oapi: error: not found: Dataset not found. "
        f"(HTTP 404 not_found, GET /v1/datasets/{MISSING})"
    )


# A well-formed id nobody created (Dify's knowledge routes take only UUIDs).
MISSING = "00000000-0000-4000-8000-000000000000"


def test_an_unreachable_base_url_says_so() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    done = cli("--base-url", url, "--api-key", APP_KEY, "--max-retries", "0", "chat", "Hi")
    line = one_error_line(done, Exit.TRANSIENT)
    assert line.startswith(f"dify-oapi: error: cannot reach {url} (ConnectError: ")
    assert line.endswith("): check --base-url or DIFY_BASE_URL")


def test_an_api_error_is_one_line_with_status_code_and_message(
    emulator: Emulator, server: EmulatorServer
) -> None:
    emulator.fail_next("chat.send", status=400, code="provider_quota_exceeded", message="Quota.")
    done = cli("chat", "Hi", server=server)
    assert one_error_line(done, Exit.REJECTED) == (
        "dify-oapi: error: chat.send: HTTP 400 provider_quota_exceeded: Quota."
    )


def test_a_bad_key_value_argument_is_a_one_line_error() -> None:
    done = cli("--emulator", "call", "chat.send", "query")
    assert one_error_line(done, Exit.USAGE) == (
        "dify-oapi: error: expected key=value (or key:=JSON), got 'query'"
    )
    unknown = cli("--emulator", "call", "chat.sendd", "query=hi")
    assert "unknown operation 'chat.sendd'; did you mean chat.send" in one_error_line(
        unknown, Exit.USAGE
    )


# -- chat and complete ------------------------------------------------------------------------


def test_chat_streams_the_answer_as_it_arrives() -> None:
    emulator = Emulator(stream_delay=0.25)
    with emulator.serve(port=0) as server:
        proc = popen("chat", "one two three four five", server=server)
        try:
            assert proc.stdout is not None and proc.stderr is not None
            first = proc.stdout.read(4)  # the first word, before the rest has been sent
            assert first == b"one "
            assert proc.poll() is None  # four more words are still on their way
            rest = proc.stdout.read()
            proc.wait(timeout=TIMEOUT)
            stderr = proc.stderr.read().decode()
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert first + rest == b"one two three four five\n"
    assert re.fullmatch(r"conversation: [0-9a-f-]{36}\n", stderr), stderr


def test_chat_continues_a_conversation(server: EmulatorServer) -> None:
    first = cli("chat", "First message", "--user", "alice", server=server)
    assert first.returncode == 0 and first.stdout == "First message\n"
    conversation = first.stderr.removeprefix("conversation: ").strip()
    second = cli("chat", "--conversation", conversation, "Second", "--user", "alice", server=server)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "Second\n"
    assert second.stderr == f"conversation: {conversation}\n"
    with sdk(server) as client:
        history = client.chat.list_messages(conversation_id=conversation, user="alice")
        assert sorted(m.query for m in history.data) == ["First message", "Second"]
        assert len(client.chat.list_conversations(user="alice").data) == 1


def test_chat_reads_the_query_from_stdin_and_sends_inputs(server: EmulatorServer) -> None:
    done = cli("chat", "-i", "city=Paris", "-i", "days:=3", server=server, stdin="Plan a trip\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Plan a trip\n"
    conversation = done.stderr.removeprefix("conversation: ").strip()
    with sdk(server) as client:
        [message] = client.chat.list_messages(
            conversation_id=conversation, user="dify-oapi-cli"
        ).data
        assert message.query == "Plan a trip"
        assert message.inputs == {"city": "Paris", "days": 3}


def test_chat_on_a_terminal_asks_turn_by_turn_in_one_conversation(server: EmulatorServer) -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dify_oapi", "--base-url", server.url, "--api-key", APP_KEY, "chat"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=ENV,
    )
    os.close(terminal)

    def read_until(marker: bytes) -> bytes:
        shown = b""
        while marker not in shown:
            ready, _, _ = select.select([controller], [], [], TIMEOUT)
            assert ready, shown
            shown += os.read(controller, 4096)
        return shown

    try:
        assert read_until(b"you> ") == b"you> "
        os.write(controller, b"first turn\n")
        first = read_until(b"you> ").decode()
        os.write(controller, b"second turn\n")
        second = read_until(b"you> ").decode()
        os.write(controller, b"\x04")  # end of input
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        os.close(controller)
        proc.kill()
        proc.wait()
    conversation = re.search(r"conversation: (\S+)", first)
    assert conversation, first
    # The terminal echoes what was typed, then the answer streams, then the conversation id.
    assert first == f"first turn\r\nfirst turn\r\nconversation: {conversation[1]}\r\nyou> "
    assert second == f"second turn\r\nsecond turn\r\nconversation: {conversation[1]}\r\nyou> "
    with sdk(server) as client:
        history = client.chat.list_messages(conversation_id=conversation[1], user="dify-oapi-cli")
        assert sorted(m.query for m in history.data) == ["first turn", "second turn"]


def test_chat_json_prints_the_whole_answer_as_one_object() -> None:
    done = cli("--emulator", "chat", "Hello there", "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert answer["answer"] == "Hello there"
    assert answer["event"] == "message"
    assert answer["metadata"]["usage"]["total_tokens"] == 4
    assert done.stderr == f"conversation: {answer['conversation_id']}\n"


def test_complete_streams_text_put_in_the_query_input(server: EmulatorServer) -> None:
    done = cli("complete", "Write a haiku", "-i", "tone=calm", server=server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Write a haiku\n"
    json_done = cli("complete", "--var", "topic", "Tides", "--json", server=server)
    assert json.loads(json_done.stdout)["answer"] == "Tides"


# -- call -------------------------------------------------------------------------------------


def test_call_json_prints_the_decoded_answer() -> None:
    done = cli("--emulator", "call", "dify.get_info", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "name": "Emulated app",
        "description": "An app served by the dify-oapi emulator.",
        "tags": [],
        "mode": "chat",
        "author_name": "dify-oapi",
    }
    assert done.stdout.count("\n") == 1  # --json: one line


def test_call_parses_values_by_field(server: EmulatorServer, tmp_path: Path) -> None:
    # A text field keeps "42" as text; a dict field parses as JSON; --json is one line.
    done = cli(
        "call", "chat.send", "query=42", 'inputs={"n": 1}', "user=bob", "--json", server=server
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["answer"] == "42"
    with sdk(server) as client:
        [message] = client.chat.list_messages(
            conversation_id=answer["conversation_id"], user="bob"
        ).data
        assert (message.query, message.inputs) == ("42", {"n": 1})
    # A file field takes @path; data:= is JSON; the default user fills in.
    note = tmp_path / "note.txt"
    note.write_text("Sea otters hold hands while they sleep.", "utf-8")
    dataset = cli(
        "call", "knowledge.create_dataset", "name=Notes", "--json", server=server, key=DATASET_KEY
    )
    dataset_id = json.loads(dataset.stdout)["id"]
    created = cli(
        "call",
        "knowledge.create_document_by_file",
        f"dataset_id={dataset_id}",
        f"file=@{note}",
        'data:={"indexing_technique": "economy", "process_rule": {"mode": "automatic"}}',
        server=server,
        key=DATASET_KEY,
    )
    assert created.returncode == 0, created.stderr
    document = json.loads(created.stdout)["document"]
    assert document["name"] == "note.txt"
    with sdk(server, DATASET_KEY) as client:
        [listed] = client.knowledge.list_documents(dataset_id=dataset_id).data
        assert (listed.id, listed.name) == (document["id"], "note.txt")


def test_call_list_names_every_operation() -> None:
    done = cli("call", "--list", "--json")
    assert done.returncode == 0
    names = [row["name"] for row in json.loads(done.stdout)]
    with Client(api_key=APP_KEY) as client:
        canonical = {n for n in client.operations if n.count(".") == 1}
    assert set(names) <= canonical and "knowledge.create_document_by_file" in names
    assert len(names) == len(set(names))


def test_call_stream_prints_events_as_json_lines() -> None:
    done = cli("--emulator", "call", "chat.send", "query=a b", "--stream")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line)["event"] for line in done.stdout.splitlines()]
    assert events == ["message", "message", "message_end"]


# -- run-workflow ----------------------------------------------------------------------------


def test_run_workflow_streams_progress_and_prints_the_outputs(server: EmulatorServer) -> None:
    done = cli("run-workflow", "topic=sea", "count:=3", server=server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sea 3\n"
    lines = done.stderr.splitlines()
    run_id = lines[0].split()[2]
    assert lines[0] == f"workflow run {run_id} started"
    with sdk(server) as client:
        run = client.workflow.get_run(workflow_run_id=run_id)
        # The same workflow through the SDK: the nodes the command line should show.
        stream = client.workflow.run(user="u", inputs={"topic": "sea"}, stream=True)
        nodes = [
            f"{e.data.title} ({e.data.node_type})"
            for e in stream
            if isinstance(e, NodeStartedEvent) and e.data
        ]
    assert len(nodes) >= 2
    expected = [
        line
        for node in nodes
        for line in (f"  node started:  {node}", f"  node finished: {node} succeeded")
    ]
    assert [re.sub(r" in \d+\.\d\ds$", "", line) for line in lines[1:-1]] == expected
    assert lines[-1].startswith(f"workflow run {run_id} succeeded")
    assert run.status == "succeeded"
    sent = json.loads(str(run.inputs))  # Dify adds the sys.* variables
    assert {k: v for k, v in sent.items() if not k.startswith("sys.")} == {
        "topic": "sea",
        "count": 3,
    }


def test_run_workflow_json_and_inputs_object(server: EmulatorServer) -> None:
    done = cli("run-workflow", "--inputs", '{"topic": "moon"}', "--json", "-q", server=server)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["data"]["status"] == "succeeded"
    assert result["data"]["outputs"] == {"text": "moon"}


def test_a_workflow_run_on_a_chat_app_is_rejected() -> None:
    emulator = Emulator(app=AppDefinition(mode="chat"))
    with emulator.serve(port=0) as server:
        done = cli("run-workflow", "topic=sea", server=server)
    assert "not_workflow_app" in one_error_line(done, Exit.REJECTED)


# -- kb ---------------------------------------------------------------------------------------


def test_kb_upload_a_folder_then_retrieve(server: EmulatorServer, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tides.txt").write_text(
        "Tide pools hold sea anemones and hermit crabs at low tide.", "utf-8"
    )
    (folder / "volcanoes.md").write_text(
        "Volcanoes erupt lava and ash from magma chambers deep below.", "utf-8"
    )
    (folder / ".hidden").write_text("skipped", "utf-8")

    created = cli("kb", "create", "Nature", server=server, key=DATASET_KEY)
    assert created.returncode == 0, created.stderr
    dataset_id, name = created.stdout.rstrip("\n").split("\t")
    assert name == "Nature"

    upload = cli(
        "kb", "upload", dataset_id, str(folder), "--poll-interval", "0.05",
        server=server, key=DATASET_KEY,
    )  # fmt: skip
    assert upload.returncode == 0, upload.stderr
    rows = [line.split("\t") for line in upload.stdout.splitlines()]
    assert [(r[1], r[2]) for r in rows] == [
        ("tides.txt", "completed"),
        ("volcanoes.md", "completed"),
    ]
    assert upload.stderr.splitlines() == [
        f"uploaded tides.txt -> document {rows[0][0]}",
        f"uploaded volcanoes.md -> document {rows[1][0]}",
    ]
    with sdk(server, DATASET_KEY) as client:
        documents = client.knowledge.list_documents(dataset_id=dataset_id).data
        assert sorted((d.id, d.name, d.indexing_status) for d in documents) == sorted(
            (r[0], r[1], "completed") for r in rows
        )

    listed = cli("kb", "list", dataset_id, server=server, key=DATASET_KEY)
    assert sorted(line.split("\t")[1] for line in listed.stdout.splitlines()) == [
        "tides.txt",
        "volcanoes.md",
    ]
    datasets = cli("kb", "list", server=server, key=DATASET_KEY)
    assert datasets.stdout == f"{dataset_id}\tNature\t2 documents\n"

    found = cli("kb", "retrieve", dataset_id, "hermit crabs", server=server, key=DATASET_KEY)
    assert found.returncode == 0, found.stderr
    score, document, content = found.stdout.splitlines()[0].split("\t")
    assert float(score) > 0
    assert (document, content) == (
        "tides.txt",
        "Tide pools hold sea anemones and hermit crabs at low tide.",
    )
    as_json = cli("kb", "retrieve", dataset_id, "lava", "--json", server=server, key=DATASET_KEY)
    records = json.loads(as_json.stdout)["records"]
    assert records[0]["segment"]["document"]["name"] == "volcanoes.md"


def test_kb_upload_of_a_missing_folder_is_a_one_line_error(server: EmulatorServer) -> None:
    done = cli("kb", "upload", "some-id", "/no/such/folder", server=server, key=DATASET_KEY)
    assert one_error_line(done, Exit.USAGE) == "dify-oapi: error: not a folder: /no/such/folder"


# -- emulator, demo and Ctrl-C ---------------------------------------------------------------


def test_emulator_command_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dify_oapi", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.fullmatch(r"Dify emulator serving (http://127\.0\.0\.1:\d+/v1)\n", first)
        assert match, first
        with Client(api_key=APP_KEY, base_url=match.group(1), max_retries=0) as client:
            assert client.chat.send(query="ping", user="u").answer == "ping"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_exits_130_without_a_traceback() -> None:
    emulator = Emulator(stream_delay=0.5)
    with emulator.serve(port=0) as server:
        proc = popen("chat", "a b c d e f g h", server=server)
        try:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.read(2) == b"a "
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=TIMEOUT) == 130
            stderr = proc.stderr.read().decode()
        finally:
            proc.kill()
            proc.wait()
    assert stderr == "dify-oapi: interrupted\n"


def test_demo_subcommand_runs_the_demo() -> None:
    done = cli("demo")  # what it shows is tests/test_demo.py's business
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and "Traceback" not in done.stderr


def test_console_script_entry_point_is_the_cli() -> None:
    from dify_oapi.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0


def test_a_slow_answer_respects_timeout() -> None:
    emulator = Emulator(latency=2.0)
    with emulator.serve(port=0) as server:
        done = cli("--timeout", "0.3", "--max-retries", "0", "call", "dify.get_info", server=server)
    line = one_error_line(done, Exit.TRANSIENT)
    assert line.startswith(f"dify-oapi: error: timed out waiting for {server.url}")
