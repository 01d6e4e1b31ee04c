"""dify-oapi2 (PyPI) as its README shows it: builder-made client, requests and options.

Its clients come from a process-wide pool keyed by domain and accept no transport, so the
in-process workloads hand that pool an ``httpx.Client`` on ``httpx.MockTransport``. Its streams
yield raw byte chunks: :func:`events` is the SSE framing and JSON parsing its user writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import payloads as p
from dify_oapi.client import Client
from dify_oapi.core.http.transport.connection_pool import connection_pool
from dify_oapi.core.model.request_option import RequestOption

IN_PROCESS = "http://dify.bench"


def client(
    transport: httpx.BaseTransport | None = None,
    domain: str = IN_PROCESS,
    connections: int | None = None,
    timeout: float | None = None,
) -> Client:
    builder = Client.builder().domain(domain).max_retry_count(2)
    if timeout is not None:
        builder = builder.timeout(timeout)
    if connections is not None:
        builder = builder.max_connections(connections).max_keepalive_connections(connections)
    if transport is not None:
        injected = httpx.Client(transport=transport)
        connection_pool.get_sync_client = lambda *args, **kwargs: injected  # type: ignore[method-assign]
    return builder.build()


def option() -> RequestOption:
    return RequestOption.builder().api_key(p.API_KEY).build()


def domain_of(base_url: str) -> str:
    """dify-oapi2 takes the host and puts ``/v1`` in every path itself."""
    return base_url.removesuffix("/v1")


def events(chunks: Iterable[bytes]) -> Iterator[Any]:
    """What a dify-oapi2 user writes: split the byte chunks into frames, parse ``data:`` lines."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while True:
            end = buf.find(b"\n\n")
            if end < 0:
                break
            frame, buf = buf[:end], buf[end + 2 :]
            for line in frame.split(b"\n"):
                if line.startswith(b"data:"):
                    yield json.loads(line[5:])
