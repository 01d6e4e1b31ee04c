"""``python -m dify_oapi.emulator --port 5001``: serve the emulator until Ctrl+C."""

from __future__ import annotations

import argparse
import sys

from ._core import AppDefinition, Emulator, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dify_oapi.emulator",
        description="Serve an in-memory emulator of the Dify Service API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=5001, help="port (5001; 0 picks a free one)")
    parser.add_argument(
        "--mode", help="app mode: chat, agent-chat, advanced-chat, completion, workflow"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated ids")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    emulator = Emulator(app=AppDefinition(mode=args.mode), seed=args.seed, latency=args.latency)
    serve(args.host, args.port, emulator=emulator, log=sys.stderr if args.verbose else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
