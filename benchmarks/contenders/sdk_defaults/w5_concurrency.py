"""W5 with ``AsyncClient()`` / ``Client()`` as constructed by default (no ``limits=``)."""

from __future__ import annotations

from typing import Any

from harness import NotAvailable

from contenders.sdk import w5_concurrency


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "async":
        raise NotAvailable("16 threads fit the default pool: same as sdk")
    return w5_concurrency.run(params, default_limits=True)
