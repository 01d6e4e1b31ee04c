"""What every command shares: the parsed arguments, its clients, and writing to stdout/stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import UsageError

if TYPE_CHECKING:
    from .._client import Client
    from .._options import Option
    from .._table import Endpoint

__all__ = ["Context", "cli_options", "dump_json", "err", "format_duration", "with_user"]

PROG = "dify-oapi"
DEFAULT_USER = "dify-oapi-cli"
#: The base URL the in-process emulator answers on (nothing is sent over a network).
EMULATOR_BASE_URL = "http://emulator.local/v1"
#: Keys used with ``--emulator`` (the emulator takes any ``app-`` / ``dataset-`` key).
EMULATOR_KEYS = {"app": "app-emulator", "dataset": "dataset-emulator"}
# Client options the commands resolve themselves (the emulator, the environment, a cluster).
_CONNECTION = ("api_key", "base_url")


def cli_options() -> dict[str, Option]:
    """The client options the command line takes as flags, from the one option table."""
    from .._options import OPTIONS

    return {name: option for name, option in OPTIONS.items() if option.cli}


def dump_json(value: Any, *, compact: bool) -> str:
    """Structs, lists of structs and bytes (as base64) as JSON text."""
    plain = msgspec.to_builtins(value)
    if compact:
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(plain, ensure_ascii=False, indent=2)


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def with_user(ep: Endpoint, arguments: dict[str, Any], user: str) -> dict[str, Any]:
    """Fill a missing ``user`` field, which most app operations require."""
    if "user" in ep.fields and "user" not in arguments:
        return {**arguments, "user": user}
    return arguments


class Context:
    """The parsed arguments and lazily built clients (one per key kind)."""

    def __init__(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
        self.args = args
        self.parser = parser
        self.json: bool = bool(args.json)
        self.user: str = args.user or os.environ.get("DIFY_USER") or DEFAULT_USER
        self._clients: dict[str, Client] = {}
        self._emulator: Any = None
        self._closers: list[Callable[[], Any]] = []
        self.pending_newline = False  # stdout holds a partial line (a streamed answer)

    def client_options(self) -> dict[str, Any]:
        """The client options given on the command line, but the key and the URL (a
        cluster's workers use their own; the emulator has its own)."""
        return {
            name: value
            for name in cli_options()
            if name not in _CONNECTION and (value := getattr(self.args, name, None)) is not None
        }

    def client(self, kind: str = "app") -> Client:
        """A client for an app key (``"app"``) or a knowledge key (``"dataset"``)."""
        existing = self._clients.get(kind)
        if existing is not None:
            return existing
        from .._client import Client

        args = self.args
        options = self.client_options()
        if args.emulator:
            key = args.api_key or EMULATOR_KEYS[kind]
            client = Client(
                api_key=key, base_url=EMULATOR_BASE_URL, transport=self.emulator(), **options
            )
        else:
            key = args.api_key or os.environ.get("DIFY_API_KEY")
            if not key:
                kind_hint = "a dataset- key" if kind == "dataset" else "an app- key"
                raise UsageError(
                    f"no API key: pass --api-key or set DIFY_API_KEY ({kind_hint}), "
                    "or add --emulator to try the built-in emulator"
                )
            client = Client(api_key=key, base_url=args.base_url, **options)
        self._clients[kind] = client
        return client

    def client_for(self, ep: Endpoint) -> Client:
        return self.client(key_kind(ep))

    def emulator(self) -> Any:
        if self._emulator is None:
            from ..emulator import Emulator

            self._emulator = Emulator()
        return self._emulator

    def base_url(self) -> str:
        if self.args.emulator:
            return EMULATOR_BASE_URL
        for client in self._clients.values():
            return client.base_url
        from .._options import DEFAULT_BASE_URL

        return str(self.args.base_url or os.environ.get("DIFY_BASE_URL") or DEFAULT_BASE_URL)

    def endpoint(self, name: str) -> Endpoint:
        from .._services import INDEX

        endpoint = INDEX.get(name)
        if endpoint is None:
            import difflib

            close = difflib.get_close_matches(name, INDEX, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"unknown operation {name!r}{hint} (`{PROG} call --list` lists them)")
        return endpoint

    def out(self, text: str = "", end: str = "\n") -> None:
        written = text + end
        if not written:
            return
        sys.stdout.write(written)
        sys.stdout.flush()
        self.pending_newline = not written.endswith("\n")

    def end_line(self) -> None:
        if self.pending_newline:
            self.out()

    def on_close(self, closer: Callable[[], Any]) -> None:
        """Call ``closer`` when the command ends."""
        self._closers.append(closer)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        while self._closers:
            self._closers.pop()()


def key_kind(ep: Endpoint) -> str:
    """``"dataset"`` for knowledge operations, ``"app"`` for the rest."""
    return ep.spec.key or "app"
