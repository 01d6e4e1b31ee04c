"""App-level operations every app has (``client.dify``): info, files, audio, feedback.

Shows ``get_info`` and ``get_parameters``, ``upload_file(file=path, user=...)``,
``text_to_audio(..., stream=True)`` saved with ``write_to``, ``audio_to_text``, and
feedback. Works with any app's key; pass a message id to rate that message:

    DIFY_API_KEY=app-... DIFY_BASE_URL=https://api.dify.ai/v1 python examples/app.py [MESSAGE_ID]
"""

from __future__ import annotations

import sys
import tempfile
from itertools import islice
from pathlib import Path

from dify_oapi import APIStatusError, Client

USER = "example-user"


def main(client: Client, message_id: str | None = None) -> None:
    info = client.dify.get_info()
    print(f"App {info.name!r}: mode={info.mode}, tags={info.tags}")

    params = client.dify.get_parameters()
    print(f"Opening statement: {params.opening_statement!r}")
    for item in params.user_input_form:  # one-key dicts: {"text-input": {...}}
        for kind, field in item.items():
            print(f"  input {field.get('variable')} ({kind}), required={field.get('required')}")

    # Files: a path, bytes, an open binary file or a (name, content[, type]) tuple.
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "note.txt"
        note.write_text("Remember to water the plants.\n")
        try:
            uploaded = client.dify.upload_file(file=note, user=USER)
            print(f"Uploaded {uploaded.name} as {uploaded.id} ({uploaded.size} bytes)")
        except APIStatusError as error:  # e.g. 415 when the app does not take documents
            print(f"Upload refused: {error.status_code} {error.code}")

    # Audio, when the app has these features switched on.
    speech = Path("speech.mp3")
    if (params.text_to_speech or {}).get("enabled"):
        with client.dify.text_to_audio(
            text="Hello from dify-oapi2.", user=USER, stream=True
        ) as audio:
            size = audio.write_to(speech)  # written chunk by chunk, never whole in memory
        print(f"Saved {size} bytes of {audio.content_type} to {speech}")
        if (params.speech_to_text or {}).get("enabled"):
            heard = client.dify.audio_to_text(file=speech, user=USER)
            print(f"Transcribed back: {heard.text!r}")

    if message_id:
        client.dify.submit_feedback(
            message_id=message_id, user=USER, rating="like", content="Helpful answer"
        )
        print(f"Rated {message_id}")
    print("Latest feedback:")
    for feedback in islice(client.dify.iter_feedbacks(limit=20), 5):
        print(f"  {feedback.rating} on {feedback.message_id}: {feedback.content or ''}")


if __name__ == "__main__":
    with Client() as client:
        main(client, sys.argv[1] if len(sys.argv) > 1 else None)
