"""The emulator on the wire as Dify 1.14.2 is (FACTS.md section 1 and the recordings):
headers on every answer, HTML 404s, Dify's validation answers, a fault's headers."""

from __future__ import annotations

import httpx
import pytest

from dify_oapi.emulator import AppDefinition, Emulator

BASE = "http://emulator.test/v1"


def raw(emulator: Emulator, key: str = "app-x") -> httpx.Client:
    return httpx.Client(
        transport=emulator, base_url=BASE, headers={"Authorization": f"Bearer {key}"}
    )


def test_every_answer_says_the_version_and_a_401_the_scheme() -> None:
    with raw(Emulator()) as http:
        ok = http.get("/info")
        missing = http.get("/no/such/route")
        wrong = http.get("/info", headers={"Authorization": "Bearer dataset-x"})
    assert [r.headers["x-version"] for r in (ok, missing, wrong)] == ["1.14.2"] * 3
    assert (wrong.status_code, wrong.headers["www-authenticate"]) == (401, 'Bearer realm="api"')
    assert "www-authenticate" not in ok.headers
    assert wrong.json() == {
        "code": "unauthorized",
        "message": "Access token is invalid",
        "status": 401,
    }


def test_a_non_uuid_knowledge_id_is_no_route() -> None:
    with raw(Emulator(), key="dataset-x") as http:
        answer = http.get("/datasets/not-a-uuid")
        unknown = http.get("/datasets/00000000-0000-4000-8000-000000000000")
    assert (answer.status_code, answer.headers["content-type"]) == (404, "text/html; charset=utf-8")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


def test_a_document_s_upload_file_is_no_route() -> None:
    # Dify 1.14.2 has no GET .../documents/{id}/upload-file (recorded: its HTML 404).
    with raw(Emulator(), key="dataset-x") as http:
        created = http.post("/datasets", json={"name": "kb"}).json()
        path = f"/datasets/{created['id']}/documents/00000000-0000-4000-8000-000000000000"
        answer = http.get(f"{path}/upload-file")
    assert (answer.status_code, answer.headers["content-type"]) == (404, "text/html; charset=utf-8")


@pytest.mark.parametrize(
    ("body", "status", "code", "start"),
    [
        ({"user": ""}, 400, "invalid_param", "Arg user must be provided."),
        (
            {"conversation_id": "nope"},
            400,
            "invalid_param",
            "1 validation error for ChatRequestPayload\nconversation_id\n  Value error, "
            "conversation_id must be a valid UUID [type=value_error, input_value='nope'",
        ),
        ({"conversation_id": None, "response_mode": None, "files": None}, 200, None, None),
        (
            {"auto_generate_name": None},
            400,
            "invalid_param",
            "Expected `bool`",
        ),
    ],
)
def test_chat_send_validates_as_dify(
    body: dict[str, object], status: int, code: str | None, start: str | None
) -> None:
    with raw(Emulator()) as http:
        answer = http.post("/chat-messages", json={"query": "q", "user": "u", "inputs": {}} | body)
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["code"] == code
        assert start is not None and start in answer.json()["message"]
    else:
        assert answer.json()["answer"] == "q"


def test_workflow_ids_and_user_validated_as_dify() -> None:
    with raw(Emulator(app=AppDefinition(mode="workflow"))) as http:
        empty = http.post("/workflows/run", json={"inputs": {}, "user": ""})
        bad_id = http.post("/workflows/not-a-uuid/run", json={"inputs": {}, "user": "u"})
        bad_run = http.get("/workflows/run/not-a-uuid")
    assert (empty.status_code, empty.json()["message"]) == (400, "Arg user must be provided.")
    assert bad_id.json() == {
        "code": "bad_request",
        "message": "Invalid workflow_id format: 'not-a-uuid'. ",
        "status": 400,
    }
    assert bad_run.json() == {"code": "unknown", "message": "Internal Server Error", "status": 500}


def test_knowledge_name_limits() -> None:
    with raw(Emulator(), key="dataset-x") as http:
        dataset = http.post("/datasets", json={"name": "x" * 41})
        tag = http.post("/datasets/tags", json={"name": "t" * 51})
        fine = http.post("/datasets", json={"name": "x" * 40})
    assert (dataset.status_code, tag.status_code, fine.status_code) == (400, 400, 200)
    assert "String should have at most 40 characters" in dataset.json()["message"]
    assert "String should have at most 50 characters" in tag.json()["message"]


def test_a_faults_content_type_replaces_the_default() -> None:
    emulator = Emulator()
    emulator.fail_next("dify.get_info", status=502, headers={"Content-Type": "text/plain"})
    with raw(emulator) as http:
        answer = http.get("/info")
    assert answer.headers.get_list("content-type") == ["text/plain"]
    with emulator.serve() as server:
        emulator.fail_next("dify.get_info", status=502, headers={"Content-Type": "text/plain"})
        over = httpx.get(f"{server.url}/info", headers={"Authorization": "Bearer app-x"})
    assert over.status_code == 502
    assert over.headers.get_list("content-type") == ["text/plain"]
    assert over.headers["x-version"] == "1.14.2"


def test_an_app_past_its_concurrency_cap_answers_429() -> None:
    capped = AppDefinition(mode="chat", max_concurrent_requests=2)
    emulator = Emulator(api_keys={"app-capped": capped, "app-free": None})
    body = {"query": "one two", "user": "u", "inputs": {}, "response_mode": "streaming"}
    with raw(emulator, key="app-capped") as http:
        first = http.send(http.build_request("POST", "/chat-messages", json=body), stream=True)
        second = http.send(http.build_request("POST", "/chat-messages", json=body), stream=True)
        refused = http.post("/chat-messages", json=body | {"response_mode": "blocking"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_requests"
        assert refused.json()["status"] == 429
        assert "maximum concurrent requests" in refused.json()["message"]
        # Another app has its own slots; non-generating routes are not counted.
        with raw(emulator, key="app-free") as other:
            assert other.post("/chat-messages", json=body).status_code == 200
        assert http.get("/info").status_code == 200
        first.read()  # a stream read to its end frees its slot
        second.close()  # so does one closed early
        again = http.post("/chat-messages", json=body | {"response_mode": "blocking"})
        assert again.status_code == 200 and again.json()["answer"] == "one two"


def test_the_cap_holds_over_loopback() -> None:
    emulator = Emulator(app=AppDefinition(mode="chat"), max_concurrent_requests=1)
    emulator.stream_delay = 0.05
    body = {"query": "a b c d", "user": "u", "inputs": {}, "response_mode": "streaming"}
    headers = {"Authorization": "Bearer app-x"}
    with emulator.serve() as server, httpx.Client(base_url=server.url, headers=headers) as http:
        with http.stream("POST", "/chat-messages", json=body) as open_stream:
            refused = http.post("/chat-messages", json=body)
            assert (refused.status_code, refused.json()["code"]) == (429, "too_many_requests")
            open_stream.read()
        assert http.post("/chat-messages", json=body).status_code == 200


async def test_256_concurrent_connections_over_loopback() -> None:
    import asyncio

    emulator = Emulator()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=0)
    with emulator.serve() as server:
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": "Bearer app-x"},
            limits=limits,
            timeout=httpx.Timeout(5.0),
        ) as http:
            answers = await asyncio.gather(*(http.get("/info") for _ in range(256)))
    assert [a.status_code for a in answers] == [200] * 256


def _events(answer: httpx.Response) -> list[dict[str, object]]:
    import json

    frames = [f for f in answer.text.split("\n\n") if f.startswith("data: ")]
    return [json.loads(f[6:]) for f in frames]


def test_a_declared_model_failure_is_dify_s_error_event() -> None:
    app = AppDefinition(mode="chat", fail_after=2, failure="model went away")
    body = {"query": "a b c d", "user": "u", "inputs": {}}
    with raw(Emulator(app=app)) as http:
        stream = http.post("/chat-messages", json=body | {"response_mode": "streaming"})
        blocking = http.post("/chat-messages", json=body)
    events = _events(stream)
    assert [e["event"] for e in events] == ["message", "message", "error"]
    assert "task_id" not in events[-1]
    assert {k: events[-1][k] for k in ("code", "status", "message")} == {
        "code": "completion_request_error",
        "status": 400,
        "message": "model went away",
    }
    assert (blocking.status_code, blocking.json()["code"]) == (400, "completion_request_error")


def test_a_failing_node_fails_the_run_as_dify_does() -> None:
    flow = AppDefinition(
        mode="workflow", nodes=("start", "http-request"), failing_node="http-request"
    )
    with raw(Emulator(app=flow)) as http:
        stream = http.post(
            "/workflows/run", json={"inputs": {"q": "x"}, "user": "u", "response_mode": "streaming"}
        )
        blocking = http.post("/workflows/run", json={"inputs": {"q": "x"}, "user": "u"})
        run = http.get(f"/workflows/run/{blocking.json()['workflow_run_id']}")
    events = _events(stream)
    assert [e["event"] for e in events][-2:] == ["node_finished", "workflow_finished"]
    assert "error" not in [e["event"] for e in events]
    last = events[-1]["data"]
    assert isinstance(last, dict)
    assert (last["status"], last["error"], last["exceptions_count"]) == (
        "failed",
        "Emulated failure",
        1,
    )
    assert blocking.status_code == 200 and blocking.json()["data"]["status"] == "failed"
    assert run.json()["status"] == "failed"


def test_a_failing_chatflow_llm_has_no_message_end_and_blocking_says_run_failed() -> None:
    app = AppDefinition(mode="advanced-chat", fail_after=1, failure="boom")
    body = {"query": "a b c", "user": "u", "inputs": {}}
    with raw(Emulator(app=app)) as http:
        stream = http.post("/chat-messages", json=body | {"response_mode": "streaming"})
        blocking = http.post("/chat-messages", json=body)
    names = [e["event"] for e in _events(stream)]
    assert "message_end" not in names and names[-1] == "workflow_finished"
    assert blocking.json() == {
        "code": "invalid_param",
        "message": "Run failed: boom",
        "status": 400,
    }


def test_a_raising_callback_fails_the_run_or_answers_dify_s_500() -> None:
    def broken(inputs: dict[str, object]) -> dict[str, object]:
        raise ValueError("no such key")

    def no_reply(query: str, inputs: dict[str, object]) -> str:
        raise KeyError(query)

    with raw(Emulator(app=AppDefinition(mode="workflow", outputs=broken))) as http:
        run = http.post("/workflows/run", json={"inputs": {}, "user": "u"})
    assert (run.status_code, run.json()["data"]["status"]) == (200, "failed")
    assert run.json()["data"]["error"] == "no such key"
    with raw(Emulator(app=AppDefinition(mode="chat", replies=no_reply))) as http:
        chat = http.post("/chat-messages", json={"query": "q", "user": "u", "inputs": {}})
    assert chat.json() == {"code": "unknown", "message": "Internal Server Error", "status": 500}
