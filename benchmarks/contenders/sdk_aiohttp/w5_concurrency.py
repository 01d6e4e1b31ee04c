"""W5 async: ``AsyncClient(transport=httpx_aiohttp.AiohttpTransport(...))``.

The SDK's planned ``dify-oapi2[aiohttp]`` extra; until it lands, the transport is passed by
hand, which is all the extra will do.
"""

from __future__ import annotations

from typing import Any

import httpx
from harness import NotAvailable

from contenders.sdk import w5_concurrency


def run(params: dict[str, Any]) -> dict[str, Any]:
    if params["case"] != "async":
        raise NotAvailable("aiohttp is async only")
    try:
        import httpx_aiohttp
    except ImportError:
        raise NotAvailable("httpx-aiohttp not installed (pip install -e '.[bench]')") from None
    n = params["concurrency"]
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    return w5_concurrency.run(
        params, transport=lambda: httpx_aiohttp.AiohttpTransport(limits=limits)
    )
