"""Completion (text generator) app: blocking, streamed, and stopped early.

Shows ``client.completion.send`` with the app's ``inputs``, a streamed answer with typed
events, and stopping a generation half-way with ``client.completion.stop``. Run it with a
text generator app's key:

    DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1 python examples/completion.py

``INPUTS`` must use your app's variable names: ``client.completion.get_parameters()``
lists them in ``user_input_form``.
"""

from __future__ import annotations

from dify_oapi import BadRequestError, Client
from dify_oapi.types import MessageEndEvent, MessageEvent

USER = "example-user"
INPUTS = {"query": "Write a haiku about the sea."}


def main(client: Client) -> None:
    # Blocking.
    try:
        result = client.completion.send(inputs=INPUTS, user=USER)
    except BadRequestError as error:  # e.g. a required input variable is missing
        print(f"Rejected: {error.code}: {error.message}")
        return
    usage = result.metadata.usage if result.metadata else None
    print(result.answer)
    print(f"[{usage.total_tokens if usage else '?'} tokens, {usage.latency if usage else '?'}s]")

    # Streaming.
    with client.completion.send(inputs=INPUTS, user=USER, stream=True) as stream:
        for event in stream:
            if isinstance(event, MessageEvent):
                print(event.answer, end="", flush=True)
            elif isinstance(event, MessageEndEvent):
                print(f"\n[message {event.message_id} done]")

    # Stop early: ask Dify to stop generating, then leave the loop (closing the stream).
    long_inputs = {"query": "Write a long essay about the history of the sea."}
    with client.completion.send(inputs=long_inputs, user=USER, stream=True) as stream:
        for event in stream:
            if isinstance(event, MessageEvent):
                print(event.answer, end="", flush=True)
            if len(stream.answer) >= 200 and stream.task_id:
                client.completion.stop(task_id=stream.task_id, user=USER)
                print("\n[stopped after 200 characters]")
                break


if __name__ == "__main__":
    with Client() as client:
        main(client)
