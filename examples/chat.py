"""Chat app: a blocking message, a streamed follow-up, then the conversation history.

Shows ``client.chat.send`` blocking and with ``stream=True`` (typed events), continuing a
conversation with ``conversation_id``, what ``error.partial`` offers when a stream fails,
and paging with ``iter_conversations`` / ``iter_messages``. Run it with a chat or agent
app's key:

    DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1 python examples/chat.py
"""

from __future__ import annotations

from itertools import islice

from dify_oapi import APIStatusError, Client, StreamInterruptedError
from dify_oapi.types import AgentMessageEvent, MessageEndEvent, MessageEvent, MessageReplaceEvent

USER = "example-user"  # your end user's id; conversations belong to it


def main(client: Client) -> None:
    # Blocking: one request, the whole answer.
    reply = client.chat.send(query="Hi! In one sentence, what can you do?", user=USER)
    print(f"Assistant: {reply.answer}")
    conversation_id = reply.conversation_id
    if conversation_id is None:
        raise RuntimeError("the app returned no conversation id")

    # Streaming, in the same conversation: typed events as they arrive.
    print("Assistant: ", end="", flush=True)
    try:
        with client.chat.send(
            query="Now tell me a two-sentence story.",
            user=USER,
            conversation_id=conversation_id,
            stream=True,
        ) as stream:
            for event in stream:
                if isinstance(event, (MessageEvent, AgentMessageEvent)):
                    print(event.answer, end="", flush=True)
                elif isinstance(event, MessageReplaceEvent):  # content moderation
                    print(f"\n[replaced] {event.answer}", end="")
                elif isinstance(event, MessageEndEvent):
                    usage = event.metadata.usage if event.metadata else None
                    print(f"\n[{usage.total_tokens if usage else '?'} tokens]")
        print(f"Whole answer: {len(stream.answer)} characters")
    except StreamInterruptedError as error:
        # The connection dropped; the task may still run on the server, so stop it.
        partial = error.partial
        print(f"\n[stream cut: {len(partial.answer) if partial else 0} characters arrived]")
        if partial and partial.task_id:
            client.chat.stop(task_id=partial.task_id, user=USER)
    except APIStatusError as error:
        # An HTTP error, or an `error` event inside the stream.
        print(f"\n[Dify error {error.status_code} {error.code}: {error.message}]")
        if error.partial:
            print(f"[answer so far: {error.partial.answer!r}]")

    # History: the iterators fetch further pages only as you consume them.
    print("Recent conversations:")
    for conversation in islice(client.chat.iter_conversations(user=USER, limit=20), 5):
        print(f"- {conversation.name or '(untitled)'} ({conversation.id})")
    print("This conversation (iter_messages yields newest first; shown oldest first):")
    history = list(client.chat.iter_messages(conversation_id=conversation_id, user=USER))
    for message in reversed(history):
        print(f"  you: {message.query}")
        print(f"  bot: {message.answer}")


if __name__ == "__main__":
    with Client() as client:  # DIFY_API_KEY and DIFY_BASE_URL from the environment
        main(client)
