"""A streaming chat against a built-in fake Dify (no account, no network).

``python -m dify_oapi demo`` runs it. The fake answers from memory through an httpx
transport, with the same event sequence a Dify chat app streams.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import httpx

from ._client import Client
from .types import MessageEndEvent, MessageEvent

ANSWER = (
    "dify-oapi2 turns every Dify Service API operation into one table row, "
    "and this answer arrived as a stream of typed events."
)


def _fake_dify(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/chat-messages"):
        body = json.loads(request.content)
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=_chat_events(body["query"], delay=0.02),
        )
    if request.url.path.endswith("/info"):
        return httpx.Response(200, json={"name": "Demo chat app", "mode": "chat"})
    return httpx.Response(404, json={"code": "not_found", "message": "no such route"})


def _chat_events(query: str, delay: float) -> Iterator[bytes]:
    ids = {"task_id": "task-1", "message_id": "msg-1", "conversation_id": "conv-1"}
    yield b"event: ping\n\n"
    for word in ANSWER.split(" "):
        time.sleep(delay)
        event = {"event": "message", **ids, "answer": word + " "}
        yield f"data: {json.dumps(event)}\n\n".encode()
    end = {"event": "message_end", **ids, "metadata": {"usage": {"total_tokens": 42}}}
    yield f"data: {json.dumps(end)}\n\n".encode()


def main() -> int:
    """Print the app's name, then stream an answer word by word."""
    client = Client(
        api_key="app-demo",
        base_url="http://demo.invalid/v1",
        transport=httpx.MockTransport(_fake_dify),
    )
    with client:
        print(f"App: {client.dify.get_info().name}")
        print("You: What is dify-oapi2?")
        print("Assistant: ", end="", flush=True)
        with client.chat.send(query="What is dify-oapi2?", user="demo-user", stream=True) as stream:
            for event in stream:
                if isinstance(event, MessageEvent):
                    print(event.answer, end="", flush=True)
                elif isinstance(event, MessageEndEvent) and event.metadata and event.metadata.usage:
                    print(
                        f"\n[conversation {stream.conversation_id}, "
                        f"{event.metadata.usage.total_tokens} tokens]"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
