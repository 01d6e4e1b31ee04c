"""One adapter per contender; a contender is an adapter with options (see ``README.md``).

``CONTENDERS`` maps a contender's key to (adapter module, options, label, venv). The venv is
``main`` (this repository's environment) or a peer's own (its import name clashes with this
SDK's). Standard library only: W1 imports this before it times anything.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Spec(NamedTuple):
    module: str
    options: dict[str, Any]
    label: str
    venv: str = "main"


CONTENDERS: dict[str, Spec] = {
    "floor": Spec("floor", {}, "floor: httpx+msgspec"),
    "floor_aiohttp": Spec("floor", {"transport": "aiohttp"}, "floor on httpx-aiohttp"),
    "floor_curl": Spec("floor", {"transport": "curl"}, "floor on httpx-curl-cffi"),
    "floor_urllib3": Spec("floor", {"transport": "urllib3"}, "floor on urllib3 transport"),
    "requests": Spec("raw_requests", {}, "floor: requests+msgspec"),
    "aiohttp": Spec("raw_aiohttp", {}, "floor: aiohttp+msgspec"),
    "httpx_json": Spec("httpx_json", {}, "httpx+json.loads"),
    "httpx_sse": Spec("httpx_sse", {}, "httpx+httpx-sse+msgspec"),
    "sdk": Spec("sdk", {}, "this SDK"),
    "sdk_defaults": Spec("sdk", {"default_limits": True}, "this SDK, default limits"),
    "sdk_transport": Spec("sdk", {"backend": "httpx-transport"}, "this SDK, transport=httpx's"),
    "sdk_aiohttp": Spec("sdk", {"backend": "aiohttp"}, "this SDK, backend=aiohttp"),
    "sdk_curl": Spec("sdk", {"backend": "curl"}, "this SDK on httpx-curl-cffi"),
    "sdk_urllib3": Spec("sdk", {"backend": "urllib3"}, "this SDK, backend=urllib3"),
    "dify_oapi2": Spec("dify_oapi2", {}, "dify-oapi2 1.1.2 (PyPI)", "dify_oapi2"),
    "dify_client": Spec("dify_client", {}, "dify-client 0.1.10 (PyPI)", "dify_client"),
}


def load(key: str) -> Any:
    """The adapter object of contender ``key``."""
    spec = CONTENDERS[key]
    module = __import__(f"adapters.{spec.module}", fromlist=["ADAPTER"])
    return module.ADAPTER(**spec.options)
