"""Commands that need no Dify: ``emulator`` (serve the fake over HTTP) and ``demo``."""

from __future__ import annotations

import sys

from .context import Context

__all__ = ["cmd_demo", "cmd_emulator"]


def cmd_emulator(ctx: Context) -> int:
    from ..emulator import AppDefinition, Emulator, serve

    args = ctx.args
    emulator = Emulator(app=AppDefinition(mode=args.mode), seed=args.seed, latency=args.latency)
    serve(args.host, args.port, emulator=emulator, log=sys.stderr if args.verbose else None)
    return 0


def cmd_demo(ctx: Context) -> int:
    from .._demo import main as demo

    return demo()
