"""``python -m dify_oapi`` and the ``dify-oapi`` console script: the command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dify-oapi`` (see ``dify-oapi --help``); returns the exit code."""
    from .cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
