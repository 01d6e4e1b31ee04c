"""Command line: ``python -m dify_oapi demo`` (more subcommands come with the CLI)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["demo"]:
        from ._demo import main as demo

        return demo()
    print("usage: python -m dify_oapi demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
