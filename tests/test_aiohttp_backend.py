"""AsyncClient(backend="aiohttp") over a real socket on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dify_oapi import AsyncClient, ConfigurationError

from .conftest import KEY

pytest.importorskip("aiohttp")


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.seen.append((self.command, self.path, self.headers["authorization"], body))
        if json.loads(body)["response_mode"] == "streaming":
            payload = (
                b'data: {"event": "message", "answer": "hi ", "task_id": "t"}\n\n'
                b'data: {"event": "message_end", "task_id": "t"}\n\n'
            )
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
        else:
            payload = json.dumps({"answer": "blocking", "task_id": "t"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


async def test_aiohttp_backend_blocking_and_streaming(server: str) -> None:
    Handler.seen.clear()
    async with AsyncClient(api_key=KEY, base_url=server, backend="aiohttp") as client:
        answer = await client.chat.send(query="q", user="u")
        stream = await client.chat.send(query="q", user="u", stream=True)
        events = [event async for event in stream]
    assert answer.answer == "blocking"
    assert stream.answer == "hi " and len(events) == 2
    assert [(m, p, a) for m, p, a, _ in Handler.seen] == [
        ("POST", "/v1/chat-messages", f"Bearer {KEY}")
    ] * 2
    assert Handler.seen[0][3] == b'{"query":"q","user":"u","inputs":{},"response_mode":"blocking"}'


def test_backend_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="backend must be"):
        AsyncClient(api_key=KEY, backend="curl")
