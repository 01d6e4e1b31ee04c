"""Chat app with the async client: concurrent questions, a streamed answer, history.

Shows ``AsyncClient`` with the same names as ``Client``: ``await client.chat.send(...)``
run concurrently with ``asyncio.gather``, ``async for`` over a stream's typed events and
over ``iter_conversations``, and error handling. Run it with a chat app's key:

    DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1 python examples/async_chat.py
"""

from __future__ import annotations

import asyncio

from dify_oapi import APIStatusError, AsyncClient, StreamInterruptedError
from dify_oapi.types import ChatResponse, MessageEndEvent, MessageEvent

USER = "example-user"
QUESTIONS = ["What is a tide pool?", "What is a kelp forest?", "What is a coral reef?"]


async def ask(client: AsyncClient, question: str) -> ChatResponse | None:
    try:
        return await client.chat.send(query=question, user=USER)
    except APIStatusError as error:
        print(f"{question!r} failed: {error.status_code} {error.code}: {error.message}")
        return None


async def main(client: AsyncClient) -> None:
    # Three blocking requests at once over the client's connection pool.
    replies = await asyncio.gather(*(ask(client, q) for q in QUESTIONS))
    for question, reply in zip(QUESTIONS, replies, strict=True):
        if reply is not None:
            print(f"Q: {question}\nA: {reply.answer}\n")

    # Streaming: `await` the call to get the stream, then `async for` over its events.
    print("Assistant: ", end="", flush=True)
    try:
        stream = await client.chat.send(
            query="Which of the three would you visit first, and why?", user=USER, stream=True
        )
        async with stream:
            async for event in stream:
                if isinstance(event, MessageEvent):
                    print(event.answer, end="", flush=True)
                elif isinstance(event, MessageEndEvent):
                    print(f"\n[conversation {event.conversation_id}]")
    except (StreamInterruptedError, APIStatusError) as error:
        answer = error.partial.answer if error.partial else ""
        print(f"\n[failed after {len(answer)} characters: {error}]")

    print("Conversations:")
    async for conversation in client.chat.iter_conversations(user=USER, limit=20):
        print(f"- {conversation.name or '(untitled)'} ({conversation.id})")


if __name__ == "__main__":

    async def run() -> None:
        async with AsyncClient() as client:  # DIFY_API_KEY and DIFY_BASE_URL from the env
            await main(client)

    asyncio.run(run())
