"""W6: the 50 MB stream as byte chunks (user framing); text-to-audio read whole, then written."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import payloads as p
from dify_oapi.api.chat.v1.model.chat_request import ChatRequest
from dify_oapi.api.chat.v1.model.chat_request_body import ChatRequestBody
from dify_oapi.api.dify.v1.model.text_to_audio_request import TextToAudioRequest
from dify_oapi.api.dify.v1.model.text_to_audio_request_body import TextToAudioRequestBody
from harness import measure_memory

from . import _common as c


def run(params: dict[str, Any]) -> dict[str, Any]:
    sizes = p.Sizes.from_dict(params["sizes"])
    client = c.client(domain=c.domain_of(params["base_url"]), timeout=60.0)
    option = c.option()
    if params["case"] == "sse":

        def consume(user: str) -> int:
            body = (
                ChatRequestBody.builder()
                .query(p.QUERY)
                .user(user)
                .inputs({})
                .response_mode("streaming")
                .build()
            )
            request = ChatRequest.builder().request_body(body).build()
            n = 0
            for _ in c.events(
                client.chat.v1.chat.chat(request=request, request_option=option, stream=True)
            ):
                n += 1
            return n

        return measure_memory(
            lambda: consume(p.USER),
            lambda: consume(p.BIG_USER),
            p.big_stream_events(sizes.big_stream_bytes),
        )

    fd, path = tempfile.mkstemp(suffix=".mp3")
    os.close(fd)

    def download(user: str) -> int:
        body = TextToAudioRequestBody.builder().text(p.QUERY).user(user).build()
        request = TextToAudioRequest.builder().request_body(body).build()
        response = client.dify.v1.audio.from_text(request, option)
        content: bytes = response.raw.content  # the whole answer, in memory
        with open(path, "wb") as f:
            f.write(content)
        return len(content)

    try:
        return measure_memory(
            lambda: download(p.USER), lambda: download(p.BIG_USER), sizes.binary_bytes
        )
    finally:
        os.unlink(path)
