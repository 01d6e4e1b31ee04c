"""Knowledge base: create, add a document, wait for indexing, search, tag, clean up.

Shows ``create_dataset``, ``create_document_by_text``, ``client.knowledge.wait_for_indexing`` on the
returned batch, ``retrieve`` with a typed ``RetrievalModel``, ``iter_documents``, tags, and
``delete_dataset``. It needs a dataset (knowledge) key, not an app key, and a workspace
with a default embedding model (``high_quality`` indexing):

    DIFY_API_KEY=dataset-... DIFY_BASE_URL=https://api.dify.ai/v1 python examples/knowledge.py
"""

from __future__ import annotations

from dify_oapi import Client, WaiterFailedError
from dify_oapi.types import ProcessRule, RetrievalModel

TEXT = """Tide pools form where the sea leaves water behind in rocky hollows at low tide.
Sea anemones, hermit crabs and starfish live there, and must survive heat and waves."""


def main(client: Client) -> None:
    knowledge = client.knowledge
    dataset = knowledge.create_dataset(
        name="dify-oapi2 example", indexing_technique="high_quality", permission="only_me"
    )
    dataset_id = dataset.id
    if dataset_id is None:
        raise RuntimeError("no dataset id in the answer")
    print(f"Created knowledge base {dataset.name} ({dataset_id})")
    try:
        created = knowledge.create_document_by_text(
            dataset_id=dataset_id,
            name="tide-pools.txt",
            text=TEXT,
            indexing_technique="high_quality",
            process_rule=ProcessRule(mode="automatic"),
        )
        if created.batch is None:
            raise RuntimeError("no indexing batch in the answer")
        try:
            statuses = client.knowledge.wait_for_indexing(
                dataset_id=dataset_id, batch=created.batch
            )
        except WaiterFailedError as error:
            print(f"Indexing failed: {error}")
            return
        print("Indexed:", ", ".join(f"{s.id} {s.indexing_status}" for s in statuses))

        for document in knowledge.iter_documents(dataset_id=dataset_id, limit=50):
            print(f"  {document.name}: {document.word_count} words, {document.display_status}")

        model = RetrievalModel(
            search_method="semantic_search",
            reranking_enable=False,
            top_k=3,
            score_threshold_enabled=False,
        )
        found = knowledge.retrieve(
            dataset_id=dataset_id, query="Who lives in tide pools?", retrieval_model=model
        )
        for record in found.records:
            if record.segment:
                print(f"  score {record.score}: {record.segment.content}")

        tag = knowledge.create_tag(name="examples")
        if tag.id:
            knowledge.bind_tags(tag_ids=[tag.id], target_id=dataset_id)
            names = [t.name for t in knowledge.list_dataset_tags(dataset_id=dataset_id).data]
            print(f"Tags: {names}")
            knowledge.delete_tag(tag_id=tag.id)
    finally:
        knowledge.delete_dataset(dataset_id=dataset_id)
        print("Deleted the knowledge base")


if __name__ == "__main__":
    with Client() as client:  # DIFY_API_KEY must be a dataset key here
        main(client)
