"""The entry point: parse, run the command, turn its failure into one line and an exit code."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence

from .context import PROG, Context, err
from .errors import Exit, describe_error, exit_code
from .parser import build_parser

__all__ = ["main"]


def _handler(spec: str) -> Callable[[Context], int]:
    """The function a command names as ``"module:function"`` in this package."""
    module, _, function = spec.partition(":")
    handler: Callable[[Context], int] = getattr(
        importlib.import_module(f"{__package__}.{module}"), function
    )
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see :class:`~.errors.Exit`)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    ctx = Context(args, parser)
    try:
        return _handler(args.handler)(ctx)
    except KeyboardInterrupt:
        ctx.end_line()
        err(f"{PROG}: interrupted")
        if threading.active_count() > 1:
            # Worker threads (a batch's calls in flight) would hold the exit until their
            # requests end; everything written so far is flushed, so leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(Exit.INTERRUPTED)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return Exit.FAILED
    except Exception as exc:
        message = describe_error(exc, ctx)
        if message is None:
            raise
        with contextlib.suppress(Exception):
            ctx.end_line()
        err(f"{PROG}: error: {message}")
        return exit_code(exc)
    finally:
        with contextlib.suppress(Exception):
            ctx.close()
