"""Correct user code with exact types through the generated stub: both checkers accept it
(tests/typing/test_typing.py runs mypy --strict and basedpyright on it)."""

from __future__ import annotations

from typing_extensions import assert_type

from dify_oapi import AsyncClient, AsyncStream, BinaryStream, Client, RawResponse, Stream
from dify_oapi.types import (
    AppInfo,
    ChatEvent,
    ChatRequest,
    ChatResponse,
    SimpleResult,
    SuggestedQuestions,
    UnknownEvent,
)


def sync_calls(client: Client) -> None:
    assert_type(client.chat.send(query="hi", user="u"), ChatResponse)
    assert_type(client.chat.send(query="hi", user="u", stream=False), ChatResponse)
    assert_type(client.chat.send(query="hi", user="u", stream=True), Stream[ChatEvent])
    assert_type(client.chat.send(ChatRequest(query="hi", user="u")), ChatResponse)
    assert_type(client.chat.send(query="hi", user="u", raw=True), RawResponse[ChatResponse])
    assert_type(client.chat.stop(task_id="t", user="u"), SimpleResult)
    assert_type(client.chat.get_suggested(message_id="m", user="u"), SuggestedQuestions)
    assert_type(client.chat.suggested(message_id="m", user="u"), SuggestedQuestions)
    assert_type(client.dify.get_info(), AppInfo)
    assert_type(client.dify.text_to_audio(text="x"), bytes)
    assert_type(client.dify.text_to_audio(text="x", stream=True), BinaryStream)
    client.chat.send(query="hi")  # type: ignore[call-overload]
    client.chat.send(query=1, user="u")  # type: ignore[call-overload]


async def async_calls(client: AsyncClient) -> None:
    assert_type(await client.chat.send(query="hi", user="u"), ChatResponse)
    stream = await client.chat.send(query="hi", user="u", stream=True)
    assert_type(stream, AsyncStream[ChatEvent])
    assert_type(await client.dify.get_info(), AppInfo)


def iterate(stream: Stream[ChatEvent]) -> None:
    for event in stream:
        assert_type(event, ChatEvent | UnknownEvent)


def helpers(client: Client) -> None:
    from collections.abc import Iterator

    from dify_oapi.types import ConversationMessage, Document, WorkflowRunResponse

    assert_type(client.knowledge.iter_documents(dataset_id="d"), Iterator[Document])
    assert_type(
        client.chat.iter_messages(conversation_id="c", user="u"), Iterator[ConversationMessage]
    )
    assert_type(client.chat.send(query="q", user="u", collect=True), ChatResponse)
    assert_type(client.workflow.run(user="u", collect=True), WorkflowRunResponse)


def async_helpers(client: AsyncClient) -> None:
    from collections.abc import AsyncIterator

    from dify_oapi.types import Document

    assert_type(client.knowledge.iter_documents(dataset_id="d"), AsyncIterator[Document])
