"""Tags, metadata fields, models and the knowledge pipeline."""

from __future__ import annotations

from typing import Any

from ._base import Ctx, Reply, handles, invalid, max_length, not_found, words
from ._datasets import _BUILT_IN, _MODELS, dataset_of, document_of, tag_view
from ._documents import _create_document, _file_info
from ._runs import workflow_task
from ._state import Record, Upload, public


def tag_of(ctx: Ctx, tag_id: str) -> Record:
    tag = ctx.kb.tags.get(tag_id)
    if tag is None:
        raise not_found("Tag not found.")
    return tag


@handles("knowledge.create_tag")
def create_tag(ctx: Ctx) -> Any:
    max_length(ctx, "name", 50, "TagCreatePayload")
    if any(t["name"] == ctx.p["name"] for t in ctx.kb.tags.values()):
        raise invalid("Tag name already exists.")
    tag = {"id": ctx.id(), "name": ctx.p["name"], "type": "knowledge"}
    ctx.kb.tags[tag["id"]] = tag
    return tag_view(ctx, tag)


@handles("knowledge.list_tags")
def list_tags(ctx: Ctx) -> Any:
    return [tag_view(ctx, t) for t in ctx.kb.tags.values()]


@handles("knowledge.update_tag")
def update_tag(ctx: Ctx) -> Any:
    max_length(ctx, "name", 50, "TagUpdatePayload")
    tag = tag_of(ctx, ctx.p["tag_id"])
    tag["name"] = ctx.p["name"]
    return tag_view(ctx, tag)


@handles("knowledge.delete_tag")
def delete_tag(ctx: Ctx) -> Any:
    del ctx.kb.tags[tag_of(ctx, ctx.p["tag_id"])["id"]]
    for ids in ctx.kb.bindings.values():
        ids[:] = [i for i in ids if i != ctx.p["tag_id"]]
    return None


@handles("knowledge.bind_tags")
def bind_tags(ctx: Ctx) -> Any:
    ds = dataset_of(_target(ctx))
    bound = ctx.kb.bindings.setdefault(ds["id"], [])
    bound += [t for t in ctx.p["tag_ids"] if tag_of(ctx, t) and t not in bound]
    return None


def _target(ctx: Ctx) -> Ctx:
    ctx.p["dataset_id"] = ctx.p["target_id"]
    return ctx


@handles("knowledge.unbind_tags")
def unbind_tags(ctx: Ctx) -> Any:
    ds = dataset_of(_target(ctx))
    drop = set(ctx.p.get("tag_ids", ())) | ({ctx.p["tag_id"]} if "tag_id" in ctx.p else set())
    bound = ctx.kb.bindings.get(ds["id"], [])
    bound[:] = [t for t in bound if t not in drop]
    return None


@handles("knowledge.list_dataset_tags")
def list_dataset_tags(ctx: Ctx) -> Any:
    ids = ctx.kb.bindings.get(dataset_of(ctx)["id"], [])
    return {"data": [{"id": t, "name": ctx.kb.tags[t]["name"]} for t in ids], "total": len(ids)}


# --- metadata ------------------------------------------------------------------------------


def field_of(ctx: Ctx, field_id: str) -> Record:
    ds = dataset_of(ctx)
    found = ctx.kb.fields.get(field_id)
    if found is None or found["_dataset"] != ds["id"]:
        raise not_found("Metadata not found.")
    return found


@handles("knowledge.create_metadata_field")
def create_metadata_field(ctx: Ctx) -> Any:
    ds = dataset_of(ctx)
    if any(
        f["name"] == ctx.p["name"] and f["_dataset"] == ds["id"] for f in ctx.kb.fields.values()
    ):
        raise invalid("Metadata name already exists.")
    new = {"id": ctx.id(), "type": ctx.p["type"], "name": ctx.p["name"], "_dataset": ds["id"]}
    ctx.kb.fields[new["id"]] = new
    return Reply(201, public(new))


@handles("knowledge.list_metadata_fields")
def list_metadata_fields(ctx: Ctx) -> Any:
    ds = dataset_of(ctx)
    docs = [d for d in ctx.kb.documents.values() if d["_dataset"] == ds["id"]]
    fields = [f for f in ctx.kb.fields.values() if f["_dataset"] == ds["id"]]
    counted = [
        public(f) | {"count": sum(any(m["id"] == f["id"] for m in d["doc_metadata"]) for d in docs)}
        for f in fields
    ]
    return {"doc_metadata": counted, "built_in_field_enabled": ds["built_in_field_enabled"]}


@handles("knowledge.update_metadata_field")
def update_metadata_field(ctx: Ctx) -> Any:
    found = field_of(ctx, ctx.p["metadata_id"])
    found["name"] = ctx.p["name"]
    for doc in ctx.kb.documents.values():
        for entry in doc["doc_metadata"]:
            if entry["id"] == found["id"]:
                entry["name"] = found["name"]
    return public(found)


@handles("knowledge.delete_metadata_field")
def delete_metadata_field(ctx: Ctx) -> Any:
    found = field_of(ctx, ctx.p["metadata_id"])
    del ctx.kb.fields[found["id"]]
    for doc in ctx.kb.documents.values():
        doc["doc_metadata"] = [m for m in doc["doc_metadata"] if m["id"] != found["id"]]
    return None


@handles("knowledge.list_built_in_metadata_fields")
def list_built_in(ctx: Ctx) -> Any:
    dataset_of(ctx)
    return {"fields": [{"id": "built-in", "name": n, "type": t} for n, t in _BUILT_IN]}


@handles("knowledge.update_built_in_metadata_fields")
def toggle_built_in(ctx: Ctx) -> Any:
    dataset_of(ctx)["built_in_field_enabled"] = ctx.p["action"] == "enable"
    return {"result": "success"}


@handles("knowledge.update_document_metadata")
def update_document_metadata(ctx: Ctx) -> Any:
    for op in ctx.p["operation_data"]:
        doc = document_of(ctx, op["document_id"])
        entries = {m["id"]: m for m in doc["doc_metadata"]} if op.get("partial_update") else {}
        for value in op["metadata_list"]:
            found = field_of(ctx, value["id"])
            entries[found["id"]] = public(found) | {"value": value.get("value")}
        doc["doc_metadata"] = list(entries.values())
        doc["_updated"] = ctx.em.ids.mark()[0]  # Dify's built-in last_update_date follows it
    return {"result": "success"}


# --- models and the pipeline ------------------------------------------------------------


@handles("knowledge.list_models", "knowledge.list_embedding_models")
def list_models(ctx: Ctx) -> Any:
    kind = ctx.p.get("model_type", "text-embedding")
    provider, model = _MODELS[kind]
    label = {"en_US": provider.rpartition("/")[2].title(), "zh_Hans": provider.rpartition("/")[2]}
    entry = {"model": model, "label": {"en_US": model, "zh_Hans": model}, "model_type": kind}
    entry |= {"features": [], "fetch_from": "predefined-model", "model_properties": {}}
    entry |= {"status": "active", "deprecated": False, "load_balancing_enabled": False}
    entry |= {"has_invalid_load_balancing_configs": False}
    vendor = {"provider": provider, "label": label, "icon_small": label, "status": "active"}
    return {"data": [vendor | {"models": [entry], "tenant_id": ctx.em.tenant_id}]}


@handles("knowledge.upload_pipeline_file")
def upload_pipeline_file(ctx: Ctx) -> Any:
    f = ctx.em.store(ctx.files["file"], ctx.em.account_id)
    return Reply(201, _file_info(f) | {"created_at": ctx.em.ids.iso()})


@handles("knowledge.list_datasource_plugins")
def list_datasource_plugins(ctx: Ctx) -> Any:
    dataset_of(ctx)
    plugin = {"node_id": "datasource", "plugin_id": "langgenius/file", "provider_name": "file"}
    plugin |= {"datasource_type": "local_file", "title": "File upload"}
    return [plugin | {"user_input_variables": [], "credentials": []}]


@handles("knowledge.run_datasource_node")
def run_datasource_node(ctx: Ctx) -> Any:
    dataset_of(ctx)
    done = {"event": "datasource_completed", "data": [], "total": 0, "completed": 0}
    return Reply(stream=True, prefix=[done | {"time_consuming": 0.0}])


@handles("knowledge.run_pipeline")
def run_pipeline(ctx: Ctx) -> Any:
    """Each ``local_file`` item becomes a document of the knowledge base; other kinds are
    skipped. The run streams like a workflow's."""
    p = ctx.p
    created = []
    for item in p["datasource_info_list"] if p["datasource_type"] == "local_file" else ():
        f = ctx.em.files.get(item.get("reference", "")) if isinstance(item, dict) else None
        if f is None:
            raise not_found("File not found.")
        upload = Upload(f.name, f.content, f.mime_type)
        created.append(_create_document(ctx, item.get("name") or f.name, upload, {})["id"])
    outputs: Record = {"documents": created}
    text = " ".join(words(f"{len(created)} documents queued for indexing"))
    ctx.app = ctx.em.pipeline_app
    task = workflow_task(ctx, p["inputs"], ctx.em.account_id, outputs, text)
    if p.get("response_mode") == "streaming":
        return Reply(stream=True, task=task)
    task.drain()
    run = ctx.state.runs[task.run_id or ""]
    data = {k: run[k] for k in ("id", "workflow_id", "status", "outputs", "error", "created_at")}
    return {"task_id": task.id, "workflow_run_id": run["id"], "data": data}
