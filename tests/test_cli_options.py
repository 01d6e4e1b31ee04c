"""The command line's client flags come from the one option table (``_options.OPTIONS``):
every option marked ``cli`` is a flag, before or after the command, checked as the client
checks it, and its value reaches the client the command builds."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import httpx
import pytest

from dify_oapi._options import OPTIONS
from dify_oapi.cli.context import Context
from dify_oapi.cli.errors import Exit
from dify_oapi.cli.parser import build_parser
from dify_oapi.emulator import Emulator

# One command-line value per CLI option, and what the client must hold for it. A new
# option marked ``cli`` fails test_every_cli_option_has_a_sample until it is added here.
SAMPLES = {
    "api_key": ("app-from-the-flag", lambda c: c.config.api_key.reveal() == "app-from-the-flag"),
    "base_url": ("http://127.0.0.1:9", lambda c: c.base_url == "http://127.0.0.1:9/v1"),
    "timeout": ("7", lambda c: c.timeout == httpx.Timeout(7.0, connect=5.0)),
    "max_retries": ("4", lambda c: c.max_retries == 4),
    "deadline": ("9.5", lambda c: c.config.deadline == 9.5),
    "idle_timeout": ("3", lambda c: c.config.idle_timeout == 3.0),
}
CLI_OPTIONS = [name for name, option in OPTIONS.items() if option.cli]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def test_every_cli_option_has_a_sample() -> None:
    # The flags at least; all of them come from the table.
    assert {"api_key", "base_url", "timeout", "max_retries"} <= set(CLI_OPTIONS)
    assert sorted(SAMPLES) == sorted(CLI_OPTIONS)


def test_the_connection_flags_are_exactly_the_cli_options() -> None:
    parser = build_parser()
    group = next(g for g in parser._action_groups if g.title and "connection" in g.title)
    flags = {s for a in group._group_actions for s in a.option_strings}
    own = {"--emulator", "--json", "--user"}  # the command line's, not the client's
    assert flags - own == {flag(n) for n in CLI_OPTIONS}
    help_text = parser.format_help()
    for name in CLI_OPTIONS:
        assert OPTIONS[name].doc.split()[0] in help_text


@pytest.mark.parametrize("where", ["before", "after"])
def test_each_flag_reaches_the_client(where: str) -> None:
    given = [part for name in CLI_OPTIONS for part in (flag(name), SAMPLES[name][0])]
    command = ["call", "dify.get_info"]
    argv = given + command if where == "before" else command + given
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Context(args, parser)
    client = ctx.client()
    try:
        for name in CLI_OPTIONS:
            assert SAMPLES[name][1](client), f"{flag(name)} did not reach the client"
        # What a cluster's workers get: the same options, never the key or the URL.
        assert set(ctx.client_options()) == set(CLI_OPTIONS) - {"api_key", "base_url"}
    finally:
        client.close()


def test_no_flag_leaves_the_client_defaults() -> None:
    parser = build_parser()
    ctx = Context(parser.parse_args(["--api-key", "app-x", "call", "dify.get_info"]), parser)
    assert ctx.client_options() == {}
    client = ctx.client()
    try:
        for name in CLI_OPTIONS:
            if name not in ("api_key", "base_url"):
                assert getattr(client.config, name) == OPTIONS[name].default
    finally:
        client.close()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("timeout", "0", "timeout must be a positive number"),
        ("max_retries", "1.5", "max_retries must be an int >= 0, got 1.5"),
        ("max_retries", "many", "max_retries must be an int >= 0, got 'many'"),
        ("deadline", "-2", "deadline must be a positive number of seconds"),
        ("base_url", "ftp://host", "base_url must be an absolute http(s) URL"),
    ],
)
def test_a_bad_value_is_refused_with_the_clients_own_words(
    name: str, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([flag(name), text, "demo"])
    assert exit_info.value.code == 2
    assert f"argument {flag(name)}: {message}" in capsys.readouterr().err


def test_a_numeric_looking_key_stays_text() -> None:
    args = build_parser().parse_args(["--api-key", "12345", "demo"])
    assert args.api_key == "12345"


def test_max_retries_flag_decides_whether_a_failure_is_retried_on_the_wire() -> None:
    emulator = Emulator()
    with emulator.serve(host="127.0.0.1", port=0) as server:

        def run(retries: str) -> subprocess.CompletedProcess[str]:
            emulator.fail_next("dify.get_info", status=503, times=1)
            argv = ["--base-url", server.url, "--api-key", "app-cli", "--max-retries", retries]
            return subprocess.run(
                [sys.executable, "-m", "dify_oapi", *argv, "call", "dify.get_info"],
                capture_output=True,
                text=True,
                timeout=30,
                env=ENV,
            )

        refused = run("0")
        assert refused.returncode == Exit.TRANSIENT, refused.stderr
        assert "503" in refused.stderr
        retried = run("1")
        assert retried.returncode == 0, retried.stderr
        assert json.loads(retried.stdout)["name"] == "Emulated app"


def test_unused_namespace_attributes_do_not_crash_client_options() -> None:
    # A handler may build a Context from a namespace without the global flags.
    ctx = Context(argparse.Namespace(json=False, user=None), build_parser())
    assert ctx.client_options() == {}


def test_the_cli_page_lists_every_flag() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text("utf-8")
    for action in build_parser()._actions:
        dest = action.dest
        if dest in OPTIONS:
            assert f"`{action.option_strings[0]} {action.metavar}`" in page, dest
