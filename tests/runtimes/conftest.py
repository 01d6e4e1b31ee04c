"""The runtime tests share the fault battery's server and kits (real sockets on 127.0.0.1)."""

from __future__ import annotations

from ..faults.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    make_kit,
    server,
    sleeps,
    tls_files,
)
