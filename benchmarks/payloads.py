"""Payloads of the benchmark workloads, built from the Service API spec's schemas and examples.

Standard library only: every contender's process imports this module, including the peers'
virtual environments. Everything is deterministic for given sizes, so each process builds the
same bytes. Shapes follow ``openapi_service.json``: the blocking ``ChatCompletionResponse``
example (grown to ~3.4 KB with usage and retriever resources), ``ChunkChatEvent`` and
``ChunkWorkflowEvent`` streams, the ``Document`` list and ``ConversationHistoryResponse``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

API_KEY = "app-BENCHMARKKEY0123456789"
USER = "bench-user"
BIG_USER = "bench-big"  # the loopback server answers this user with the 50 MB stream
QUERY = "What are the specs of the iPhone 13 Pro Max?"
DATASET_ID = "101b4c97-fc2e-463c-90b1-5261a4cdcafb"
CONVERSATION_ID = "45701982-8118-4bc5-8e9b-64562b4555f2"
TASK_ID = "c3800678-a077-43df-a102-53f23ed20b88"
MESSAGE_ID = "9da23599-e713-473b-982c-4328d4f5c78a"
WORKFLOW_ID = "fdf4ab6d-6d1a-4b9f-a5c0-6bd1a7d2c0e2"
WORKFLOW_RUN_ID = "fd2c2fa1-ef6c-4e75-b9a0-3e2c9ac8c3a9"
CREATED_AT = 1705407629

_NS = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
_WORDS = [
    "The",
    "iPhone",
    "13",
    "Pro",
    "Max",
    "has",
    "a",
    "6.7",
    "inch",
    "Super",
    "Retina",
    "XDR",
    "display",
    "with",
    "ProMotion,",
    "an",
    "A15",
    "Bionic",
    "chip,",
    "a",
    "triple",
    "12",
    "MP",
    "camera",
    "system,",
    "up",
    "to",
    "1",
    "TB",
    "of",
    "storage",
    "and",
    "all-day",
    "battery",
    "life",
    "with",
    "MagSafe",
    "charging",
    "support",
]


@dataclass(frozen=True)
class Sizes:
    """How big each workload's payload is; ``smoke()`` shrinks everything for CI."""

    stream_events: int = 2000
    ping_every: int = 400
    list_items: int = 100
    big_stream_bytes: int = 50 * 1024 * 1024
    binary_bytes: int = 50 * 1024 * 1024

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            stream_events=60,
            ping_every=20,
            list_items=10,
            big_stream_bytes=1024 * 1024,
            binary_bytes=1024 * 1024,
        )

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sizes:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


def uid(*parts: object) -> str:
    """A stable, realistic UUID for a name."""
    return str(uuid.uuid5(_NS, "/".join(map(str, parts))))


def dumps(obj: Any) -> bytes:
    """Compact JSON as Dify sends it (non-ASCII kept)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def words(n: int, start: int = 0) -> list[str]:
    return [_WORDS[(start + i) % len(_WORDS)] for i in range(n)]


# -- blocking chat ---------------------------------------------------------------------


def usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 1033,
        "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001",
        "prompt_price": "0.0010330",
        "completion_tokens": 128,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": "0.0002560",
        "total_tokens": 1161,
        "total_price": "0.0012890",
        "currency": "USD",
        "latency": 0.7682376249867957,
    }


def retriever_resource(i: int, message_id: str = MESSAGE_ID) -> dict[str, Any]:
    return {
        "id": uid("resource", message_id, i),
        "message_id": message_id,
        "position": i + 1,
        "dataset_id": DATASET_ID,
        "dataset_name": "iPhone",
        "document_id": uid("document", i),
        "document_name": f"iPhone List {i + 1}",
        "data_source_type": "upload_file",
        "segment_id": uid("segment", i),
        "score": 0.98457545 - i * 0.01,
        "hit_count": 3 + i,
        "word_count": 148,
        "segment_position": i + 1,
        "index_node_hash": uid("hash", i).replace("-", ""),
        "content": (
            '"Model","Release Date","Display Size","Resolution","Processor","RAM","Storage" '
            f'"iPhone 13 Pro Max","September 24, 2021","6.7 inch","1284 x 2778","A15",'
            f'"6 GB","128, 256, 512 GB, 1TB" (row {i + 1})'
        ),
        "created_at": CREATED_AT,
    }


def chat_answer_obj(target_bytes: int = 3400) -> dict[str, Any]:
    """The spec's blocking chat example with usage, three cited resources and a longer answer."""
    obj: dict[str, Any] = {
        "event": "message",
        "task_id": TASK_ID,
        "id": MESSAGE_ID,
        "message_id": MESSAGE_ID,
        "conversation_id": CONVERSATION_ID,
        "mode": "chat",
        "answer": "",
        "metadata": {
            "usage": usage(),
            "retriever_resources": [retriever_resource(i) for i in range(3)],
        },
        "created_at": CREATED_AT,
    }
    room = target_bytes - len(dumps(obj))
    answer = ""
    i = 0
    while len(answer) + len(_WORDS[i % len(_WORDS)]) + 1 <= room:
        answer += ("" if not answer else " ") + _WORDS[i % len(_WORDS)]
        i += 1
    obj["answer"] = answer
    return obj


def chat_answer() -> bytes:
    return dumps(chat_answer_obj())


def chat_request_obj(streaming: bool = False, user: str = USER) -> dict[str, Any]:
    """The request every contender sends (the same JSON body, key order aside)."""
    return {
        "query": QUERY,
        "user": user,
        "inputs": {},
        "response_mode": "streaming" if streaming else "blocking",
    }


# -- streams -----------------------------------------------------------------------------

PING = b"event: ping\n\n"


def frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def _with_pings(frames: list[bytes], every: int) -> list[bytes]:
    out: list[bytes] = []
    for i, f in enumerate(frames):
        if every and i and i % every == 0:
            out.append(PING)
        out.append(f)
    return out


def _ids() -> dict[str, Any]:
    return {
        "task_id": TASK_ID,
        "message_id": MESSAGE_ID,
        "conversation_id": CONVERSATION_ID,
        "created_at": CREATED_AT,
    }


def message_end_obj() -> dict[str, Any]:
    return {
        "event": "message_end",
        **_ids(),
        "id": MESSAGE_ID,
        "metadata": {
            "usage": usage(),
            "retriever_resources": [retriever_resource(i) for i in range(3)],
        },
    }


def chat_stream(sizes: Sizes) -> list[bytes]:
    """``message`` events of one word each, then ``message_end``; a ping every N events.

    One list item per SSE frame: the transports send one chunk per event.
    """
    ids = _ids()
    frames = [
        frame({"event": "message", **ids, "id": MESSAGE_ID, "answer": " " + w})
        for w in words(sizes.stream_events)
    ]
    frames.append(frame(message_end_obj()))
    return _with_pings(frames, sizes.ping_every)


def chat_stream_answer(sizes: Sizes) -> str:
    return "".join(" " + w for w in words(sizes.stream_events))


def _node(node_id: str, node_type: str, title: str, index: int, finished: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": uid("node-run", node_id),
        "node_id": node_id,
        "node_type": node_type,
        "title": title,
        "index": index,
        "predecessor_node_id": None if index == 1 else f"node-{index - 1}",
        "inputs": {"query": QUERY} if node_type != "end" else None,
        "inputs_truncated": False,
        "created_at": CREATED_AT,
        "extras": {},
        "iteration_id": None,
        "loop_id": None,
    }
    if finished:
        data.update(
            {
                "process_data": {"model_mode": "chat"} if node_type == "llm" else None,
                "process_data_truncated": False,
                "outputs": {"text": "done"},
                "outputs_truncated": False,
                "status": "succeeded",
                "error": None,
                "elapsed_time": 0.25 * index,
                "execution_metadata": {"total_tokens": 1161, "total_price": "0.0012890"}
                if node_type == "llm"
                else {},
                "finished_at": CREATED_AT + 1,
                "files": [],
            }
        )
    return {
        "event": "node_finished" if finished else "node_started",
        "task_id": TASK_ID,
        "workflow_run_id": WORKFLOW_RUN_ID,
        "data": data,
    }


def workflow_stream(sizes: Sizes) -> list[bytes]:
    """workflow_started, start/llm/end node events, N ``text_chunk``, workflow_finished."""
    head = {"task_id": TASK_ID, "workflow_run_id": WORKFLOW_RUN_ID}
    objs: list[dict[str, Any]] = [
        {
            "event": "workflow_started",
            **head,
            "data": {
                "id": WORKFLOW_RUN_ID,
                "workflow_id": WORKFLOW_ID,
                "inputs": {"query": QUERY, "sys.user_id": USER},
                "created_at": CREATED_AT,
                "reason": "initial",
            },
        },
        _node("start", "start", "Start", 1, False),
        _node("start", "start", "Start", 1, True),
        _node("llm", "llm", "LLM", 2, False),
    ]
    objs += [
        {
            "event": "text_chunk",
            **head,
            "data": {"text": " " + w, "from_variable_selector": ["llm", "text"]},
        }
        for w in words(sizes.stream_events)
    ]
    objs += [
        _node("llm", "llm", "LLM", 2, True),
        _node("end", "end", "End", 3, False),
        _node("end", "end", "End", 3, True),
        {
            "event": "workflow_finished",
            **head,
            "data": {
                "id": WORKFLOW_RUN_ID,
                "workflow_id": WORKFLOW_ID,
                "status": "succeeded",
                "outputs": {"text": chat_stream_answer(sizes)[:64]},
                "error": None,
                "elapsed_time": 3.2,
                "total_tokens": 1161,
                "total_steps": 3,
                "created_at": CREATED_AT,
                "finished_at": CREATED_AT + 4,
                "created_by": {"id": uid("end-user"), "user": USER},
                "exceptions_count": 0,
                "files": [],
            },
        },
    ]
    return _with_pings([frame(o) for o in objs], sizes.ping_every)


def stream_event_count(frames: list[bytes]) -> int:
    """Events a client should deliver: every frame but the pings."""
    return sum(1 for f in frames if f != PING)


def big_stream(total_bytes: int) -> Iterator[bytes]:
    """~``total_bytes`` of ~1 KB ``message`` events then ``message_end``, in ~64 KB writes."""
    ids = _ids()
    text = " ".join(words(170))[:1000]
    event = frame({"event": "message", **ids, "id": MESSAGE_ID, "answer": text})
    per_write = max(1, 65536 // len(event))
    block = event * per_write
    sent = 0
    while sent < total_bytes:
        yield block
        sent += len(block)
    yield frame(message_end_obj())


def big_stream_events(total_bytes: int) -> int:
    """How many events :func:`big_stream` delivers (``message_end`` included)."""
    ids = _ids()
    text = " ".join(words(170))[:1000]
    event = frame({"event": "message", **ids, "id": MESSAGE_ID, "answer": text})
    per_write = max(1, 65536 // len(event))
    writes = -(-total_bytes // (len(event) * per_write))
    return writes * per_write + 1


def binary_blocks(total_bytes: int, block: int = 65536) -> Iterator[bytes]:
    """``total_bytes`` of MP3-looking bytes in blocks (text-to-audio answers are audio/mpeg)."""
    seed = bytes((i * 131 + 7) % 256 for i in range(block))
    sent = 0
    while sent < total_bytes:
        n = min(block, total_bytes - sent)
        yield seed[:n]
        sent += n


# -- lists -------------------------------------------------------------------------------


def document_obj(i: int) -> dict[str, Any]:
    file_id = uid("upload", i)
    author = uid("account")
    return {
        "id": uid("doc", i),
        "position": i + 1,
        "data_source_type": "upload_file",
        "data_source_info": {"upload_file_id": file_id},
        "data_source_detail_dict": {
            "upload_file": {
                "id": file_id,
                "name": f"guide-{i + 1}.txt",
                "size": 2048 + i,
                "extension": "txt",
                "mime_type": "text/plain",
                "created_by": author,
                "created_at": 1741267200 + i,
            }
        },
        "dataset_process_rule_id": uid("rule"),
        "name": f"guide-{i + 1}.txt",
        "created_from": "api",
        "created_by": author,
        "created_at": 1741267200 + i,
        "tokens": 512 + i,
        "indexing_status": "completed",
        "error": None,
        "enabled": True,
        "disabled_at": None,
        "disabled_by": None,
        "archived": False,
        "display_status": "available",
        "word_count": 350 + i,
        "hit_count": i % 7,
        "doc_form": "text_model",
        "doc_metadata": [
            {"id": uid("meta", "author"), "name": "author", "type": "string", "value": "Ada"},
            {"id": uid("meta", "category"), "name": "category", "type": "string", "value": "faq"},
        ],
        "summary_index_status": None,
        "need_summary": False,
    }


def documents_list(sizes: Sizes) -> bytes:
    n = sizes.list_items
    return dumps(
        {
            "data": [document_obj(i) for i in range(n)],
            "has_more": False,
            "limit": n,
            "total": n,
            "page": 1,
        }
    )


def message_obj(i: int) -> dict[str, Any]:
    mid = uid("message", i)
    file_id = uid("message-file", i)
    return {
        "id": mid,
        "conversation_id": CONVERSATION_ID,
        "parent_message_id": uid("message", i - 1) if i else None,
        "inputs": {"city": "San Francisco"},
        "query": f"{QUERY} ({i + 1})",
        "answer": " ".join(words(40, i)),
        "status": "normal",
        "error": None,
        "message_files": [
            {
                "id": file_id,
                "filename": f"photo-{i + 1}.png",
                "type": "image",
                "url": f"https://upload.dify.ai/files/{file_id}/file-preview?timestamp=1705407629",
                "mime_type": "image/png",
                "size": 48213 + i,
                "transfer_method": "local_file",
                "belongs_to": "user",
                "upload_file_id": file_id,
            }
        ],
        "feedback": {"rating": "like" if i % 2 else "dislike"},
        "retriever_resources": [retriever_resource(j, mid) for j in range(2)],
        "agent_thoughts": [],
        "created_at": CREATED_AT + i,
        "extra_contents": [],
        "message_tokens": 100 + i,
        "answer_tokens": 58,
        "total_tokens": 158 + i,
        "provider_response_latency": 1.234,
        "total_price": "0.0012825",
        "currency": "USD",
    }


def messages_list(sizes: Sizes) -> bytes:
    n = sizes.list_items
    return dumps({"limit": n, "has_more": False, "data": [message_obj(i) for i in range(n)]})


if __name__ == "__main__":  # a quick look at the sizes
    s = Sizes()
    print("chat answer", len(chat_answer()), "bytes")
    cs = chat_stream(s)
    print("chat stream", len(cs), "frames", sum(map(len, cs)), "bytes")
    ws = workflow_stream(s)
    print("workflow stream", len(ws), "frames", sum(map(len, ws)), "bytes")
    print("documents", len(documents_list(s)), "bytes; messages", len(messages_list(s)), "bytes")
    print("big stream events", big_stream_events(s.big_stream_bytes))
