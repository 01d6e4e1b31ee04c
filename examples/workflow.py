"""Workflow app: a streamed run with node events, resuming, collected runs and logs.

Shows ``client.workflow.run(..., stream=True)`` with typed node events and ``text_chunk``
output, re-attaching with ``stream.resume()`` after ``StreamInterruptedError``, a run with
``collect=True`` (streamed on the wire, returned like a blocking run), ``get_run`` and
``iter_logs``. Run it with a workflow app's key:

    DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1 python examples/workflow.py

``INPUTS`` must use your workflow's start-node variable names.
"""

from __future__ import annotations

from itertools import islice

from dify_oapi import Client, StreamInterruptedError
from dify_oapi.types import (
    NodeFinishedEvent,
    NodeStartedEvent,
    TextChunkEvent,
    WorkflowFinishedEvent,
)

USER = "example-user"
INPUTS = {"topic": "tide pools"}


def main(client: Client) -> None:
    stream = client.workflow.run(inputs=INPUTS, user=USER, stream=True)
    for attempt in range(3):
        try:
            for event in stream:
                if isinstance(event, NodeStartedEvent) and event.data:
                    print(f"-> {event.data.title} ({event.data.node_type})")
                elif isinstance(event, NodeFinishedEvent) and event.data:
                    print(f"<- {event.data.title}: {event.data.status}")
                elif isinstance(event, TextChunkEvent) and event.data:
                    print(event.data.text, end="", flush=True)
                elif isinstance(event, WorkflowFinishedEvent) and event.data:
                    if event.data.status == "succeeded":
                        print(f"\nOutputs: {event.data.outputs}")
                    else:
                        print(f"\nRun {event.data.status}: {event.data.error}")
            break
        except StreamInterruptedError:
            if attempt == 2:
                raise
            print("\n[connection lost, re-attaching to the run]")
            stream = stream.resume()  # already-seen node events are not repeated
    run_id = stream.workflow_run_id
    if run_id is None:
        raise RuntimeError("the stream carried no workflow run id")

    # collect=True: the blocking shape without holding an HTTP request open in blocking mode.
    result = client.workflow.run(inputs=INPUTS, user=USER, collect=True)
    if result.data is not None:
        print(f"Collected run {result.workflow_run_id}: {result.data.status}")
        print(f"  outputs={result.data.outputs} elapsed={result.data.elapsed_time}s")

    detail = client.workflow.get_run(workflow_run_id=run_id)
    print(f"First run: {detail.status} in {detail.total_steps} steps, {detail.total_tokens} tokens")

    print("Recent failed runs:")
    for log in islice(client.workflow.iter_logs(status="failed", limit=20), 5):
        if log.workflow_run:
            print(f"  {log.workflow_run.id}: {log.workflow_run.error}")


if __name__ == "__main__":
    with Client() as client:
        main(client)
