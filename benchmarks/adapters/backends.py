"""The httpx transports a contender can be put on, by name (``--contenders sdk_curl``...).

``httpx``: the client's own default (no ``transport=``); ``httpx-transport``: httpx's
default transport passed explicitly; ``aiohttp``: httpx-aiohttp (async only); ``curl``:
httpx-curl-cffi (libcurl); ``urllib3``: the SDK's own
``dify_oapi._transport._urllib3.Urllib3Transport`` (sync only; ``Client(backend="urllib3")``).
"""

from __future__ import annotations

from typing import Any

from .base import unavailable


def _need(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        hint = "pip install -r benchmarks/requirements.txt"
        raise unavailable(f"{package} not installed ({hint})") from None


def _urllib3(limits: Any) -> Any:
    _need("urllib3", "urllib3")
    from dify_oapi._transport._urllib3 import Urllib3Transport

    return Urllib3Transport(limits=limits)


def transport(name: str, limits: Any, *, is_async: bool) -> Any:
    """The transport called ``name`` (None: the client's default), sized by ``limits``."""
    if name == "httpx":
        return None
    import httpx

    # A transport needs limits; without the workload's, httpx's own defaults.
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    curl = "httpx_curl_cffi", "httpx-curl-cffi"
    makers = {
        "httpx-transport": (
            lambda: httpx.HTTPTransport(limits=limits),
            lambda: httpx.AsyncHTTPTransport(limits=limits),
        ),
        "aiohttp": (
            None,
            lambda: _need("httpx_aiohttp", "httpx-aiohttp").AiohttpTransport(limits=limits),
        ),
        "curl": (
            lambda: _need(*curl).CurlTransport(),
            lambda: _need(*curl).AsyncCurlTransport(max_connections=limits.max_connections),
        ),
        "urllib3": (lambda: _urllib3(limits), None),
    }
    make = makers[name][is_async]
    if make is None:
        raise unavailable(f"{name} has no {'async' if is_async else 'sync'} transport")
    return make()
