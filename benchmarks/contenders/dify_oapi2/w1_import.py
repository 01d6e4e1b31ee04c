"""W1: import + client + request option, and the chat request models a call needs."""

from typing import Any


def run(params: dict[str, Any]) -> Any:
    from dify_oapi.api.chat.v1.model.chat_request import ChatRequest
    from dify_oapi.api.chat.v1.model.chat_request_body import ChatRequestBody
    from dify_oapi.client import Client
    from dify_oapi.core.model.request_option import RequestOption

    client = Client.builder().domain("https://api.dify.ai").build()
    option = RequestOption.builder().api_key("app-KEY").build()
    return client, option, ChatRequest, ChatRequestBody
