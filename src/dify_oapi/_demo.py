"""The README's first command: the SDK against the embedded emulator, no account, no network.

``python -m dify_oapi demo`` streams a chat answer, builds a knowledge base from two small
files and queries it, and runs a workflow, all through the public API.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ._client import Client
from .emulator import AppDefinition, Emulator
from .types import (
    MessageEndEvent,
    MessageEvent,
    NodeFinishedEvent,
    TextChunkEvent,
    WorkflowFinishedEvent,
)

BASE_URL = "http://emulator.local/v1"
ANSWER = "dify-oapi2 turns every Dify Service API operation into one table row, typed end to end."
FILES = {
    "tides.md": "Tides are the rise and fall of sea levels caused by the Moon's gravity.\n\n"
    "Spring tides happen at new and full moon, when the Sun and Moon align.",
    "volcanoes.md": "A volcano is an opening in the crust where magma escapes.\n\n"
    "Most volcanoes sit along the edges of tectonic plates.",
}


def main() -> int:
    emulator = Emulator(
        app=AppDefinition(
            name="Demo app",
            replies=[ANSWER],
            outputs=lambda inputs: {"summary": f"A short note on {inputs.get('topic')}."},
        ),
        stream_delay=0.02,
        indexing_seconds=0.1,
    )
    app = Client(api_key="app-demo", base_url=BASE_URL, transport=emulator)
    kb = app.with_options(api_key="dataset-demo")  # knowledge bases take a dataset key

    print(f"== Chat with {app.dify.get_info().name!r} (streaming)")
    with app.chat.send(query="What is dify-oapi2?", user="demo", stream=True) as stream:
        for event in stream:
            if isinstance(event, MessageEvent):
                print(event.answer, end="", flush=True)
            elif isinstance(event, MessageEndEvent) and event.metadata and event.metadata.usage:
                print(f"\n[{event.metadata.usage.total_tokens} tokens]")

    print("\n== Knowledge base from two files")
    dataset = kb.knowledge.create_dataset(name="Demo notes")
    assert dataset.id is not None
    with tempfile.TemporaryDirectory() as folder:
        for name, text in FILES.items():
            path = Path(folder) / name
            path.write_text(text, "utf-8")
            created = kb.knowledge.create_document_by_file(dataset_id=dataset.id, file=path)
            assert created.batch is not None
            statuses = kb.knowledge.wait_for_indexing(
                dataset_id=dataset.id, batch=created.batch, poll_interval=0.05
            )
            print(f"indexed {name}: {statuses[0].indexing_status}")
    found = kb.knowledge.retrieve(dataset_id=dataset.id, query="Why are there spring tides?")
    for record in found.records[:2]:
        segment = record.segment
        if segment is not None:
            # A short file is one chunk of its paragraphs, as Dify's automatic rule makes it.
            print(f"{record.score or 0:.2f}  {' '.join((segment.content or '').split())}")

    print("\n== Workflow run (streaming)")
    run = app.workflow.run(inputs={"topic": "tides"}, user="demo", stream=True)
    for event in run:
        if isinstance(event, NodeFinishedEvent) and event.data is not None:
            print(f"node {event.data.title or event.data.node_id}: {event.data.status}")
        elif isinstance(event, TextChunkEvent) and event.data is not None:
            print(f"text: {event.data.text!r}")
        elif isinstance(event, WorkflowFinishedEvent) and event.data is not None:
            print(f"run {event.data.status}, outputs {event.data.outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
