"""Raw httpx + httpx-sse's ``EventSource`` + msgspec: the framing rules this SDK follows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .floor import JSON, Floor, _request, check_status


class HttpxSSE(Floor):
    def stream(self, client: Any, case: str, user: str) -> Iterator[Any]:
        from httpx_sse import EventSource

        path, body, decode = _request(case, user)
        with client.stream("POST", path, content=body, headers=JSON) as response:
            check_status(response)
            for sse in EventSource(response).iter_sse():
                if sse.data:
                    yield decode(sse.data)


ADAPTER = HttpxSSE
