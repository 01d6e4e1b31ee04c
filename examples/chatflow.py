"""Chatflow (advanced chat) app: node progress while streaming, resuming, run details.

Shows a streamed ``client.chatflow.send`` whose events mix workflow nodes and answer
chunks, re-attaching with ``stream.resume()`` after ``StreamInterruptedError``, a
follow-up with ``collect=True`` (streamed on the wire, blocking shape in your hands),
the conversation's variables and the run's details. Run it with a chatflow app's key:

    DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1 python examples/chatflow.py
"""

from __future__ import annotations

from dify_oapi import Client, StreamInterruptedError
from dify_oapi.types import (
    MessageEndEvent,
    MessageEvent,
    NodeFinishedEvent,
    NodeStartedEvent,
    WorkflowFinishedEvent,
)

USER = "example-user"


def main(client: Client) -> None:
    stream = client.chatflow.send(query="Plan a one-day trip to Kyoto.", user=USER, stream=True)
    for attempt in range(3):
        try:
            for event in stream:
                if isinstance(event, NodeStartedEvent) and event.data:
                    print(f"[{event.data.node_type}] {event.data.title} ...")
                elif isinstance(event, NodeFinishedEvent) and event.data:
                    print(f"[{event.data.status}] {event.data.title} ({event.data.elapsed_time}s)")
                elif isinstance(event, MessageEvent):
                    print(event.answer, end="", flush=True)
                elif isinstance(event, WorkflowFinishedEvent) and event.data:
                    print(f"\n[run {event.data.status}, {event.data.total_steps} steps]")
                elif isinstance(event, MessageEndEvent):
                    print("[message complete]")
            break
        except StreamInterruptedError:
            if attempt == 2:
                raise
            # The run goes on server-side: re-attach; events already seen are skipped.
            print("\n[connection lost, re-attaching]")
            stream = stream.resume()
    conversation_id, run_id = stream.conversation_id, stream.workflow_run_id
    if conversation_id is None or run_id is None:
        raise RuntimeError("the stream carried no conversation or run id")

    # collect=True: streamed on the wire (no gateway timeout), returned as a ChatResponse.
    follow_up = client.chatflow.send(
        query="Make it vegetarian.", user=USER, conversation_id=conversation_id, collect=True
    )
    print(f"Follow-up: {follow_up.answer}")

    print("Conversation variables:")
    for variable in client.chatflow.iter_conversation_variables(
        conversation_id=conversation_id, user=USER
    ):
        print(f"  {variable.name} ({variable.value_type}) = {variable.value!r}")

    run = client.chatflow.get_run(workflow_run_id=run_id)
    print(f"First run: {run.status}, {run.total_tokens} tokens, {run.elapsed_time}s")


if __name__ == "__main__":
    with Client() as client:
        main(client)
