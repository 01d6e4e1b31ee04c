"""The ``dify-oapi`` command line: chat, complete, run-workflow, kb, call, batch, emulator.

Every command goes through the same :class:`~dify_oapi.Client` a program would use, so
retries, streaming and errors behave the same. A failure ends the command with one line on
stderr and an exit code that tells its kind (:class:`~.errors.Exit`: usage, key, rejected,
rate limited, transient); a traceback means a bug. ``--emulator`` runs against the
in-process emulator: no account, no network.

Modules: :mod:`.parser` (the grammar), :mod:`.main` (the entry point), :mod:`.errors`
(messages and exit codes), :mod:`.context` (clients and output), :mod:`.values`
(``key=value`` arguments), the commands (:mod:`.apps`, :mod:`.kb`, :mod:`.call`,
:mod:`.batch`, :mod:`.local`) and :mod:`.progress`.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
