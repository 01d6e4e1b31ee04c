"""App-level routes: feedback, files, audio, end users, info, parameters, meta, site."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ._base import (
    ApiError,
    Ctx,
    Reply,
    end_user,
    handles,
    invalid,
    not_found,
    page,
    require_mode,
)
from ._messages import message_of
from ._state import StoredFile


@handles("dify.submit_feedback")
def submit_feedback(ctx: Ctx) -> Any:
    p, st = ctx.p, ctx.state
    message = message_of(ctx, p["message_id"], p["user"])
    if p.get("rating") is None:
        st.feedbacks.pop(message["id"], None)
        return {"result": "success"}
    iso = ctx.em.ids.iso()
    st.feedbacks[message["id"]] = (
        st.feedbacks.get(message["id"], {"id": ctx.id(), "created_at": iso})
        | {"app_id": st.app_id, "conversation_id": message["conversation_id"]}
        | {"message_id": message["id"], "rating": p["rating"], "content": p.get("content")}
        | {"from_source": "user", "from_end_user_id": end_user(ctx, p["user"])["id"]}
        | {"from_account_id": None, "updated_at": iso}
    )
    return {"result": "success"}


@handles("dify.list_feedbacks")
def list_feedbacks(ctx: Ctx) -> Any:
    return {"data": page(list(ctx.state.feedbacks.values())[::-1], ctx.p)["data"]}


@handles("dify.upload_file")
def upload_file(ctx: Ctx) -> Any:
    f = ctx.em.store(ctx.files["file"], end_user(ctx, ctx.p.get("user"))["id"])
    return Reply(
        201,
        {"id": f.id, "name": f.name, "size": len(f.content), "extension": f.extension}
        | {"mime_type": f.mime_type, "created_by": f.created_by, "created_at": f.created_at}
        | {"preview_url": None, "source_url": ctx.file_url(f), "original_url": None}
        | {"user_id": None, "tenant_id": ctx.em.tenant_id, "conversation_id": None}
        | {"file_key": None, "reference": None},
    )


def file_reply(f: StoredFile, attachment: bool) -> Reply:
    headers = {"content-disposition": f'attachment; filename="{f.name}"'} if attachment else {}
    return Reply(content=f.content, content_type=f.mime_type, headers=headers)


@handles("dify.preview_file")
def preview_file(ctx: Ctx) -> Any:
    f = ctx.em.files.get(ctx.p["file_id"])
    # Dify looks the upload up through a message of the app that carries it, so an upload no
    # message uses yet, like an unknown id, is not found (FACTS 2). A workflow run makes no
    # message (source), so its files stay unpreviewable.
    if f is None or f.id not in ctx.state.used_files:
        raise ApiError(404, "file_not_found", "File not found in message context")
    if not ctx.p.get("as_attachment"):
        return file_reply(f, attachment=False)
    # As a download Dify sends generic bytes, the name in RFC 5987 form (recording).
    headers = {"content-disposition": f"attachment; filename*=UTF-8''{quote(f.name)}"}
    return Reply(content=f.content, content_type="application/octet-stream", headers=headers)


#: The part types Dify's speech to text takes; it reads the part's type, never the name (FACTS 6).
_AUDIO = frozenset({"audio/mp3", "audio/m4a", "audio/wav", "audio/amr", "audio/mpga"})


@handles("dify.audio_to_text")
def audio_to_text(ctx: Ctx) -> Any:
    """The "transcript" of an upload is its bytes read as UTF-8 text (empty if they are not)."""
    up = ctx.files["file"]
    if up.content_type.lower() not in _AUDIO:
        raise ApiError(415, "unsupported_audio_type", "Audio type not allowed.")
    try:
        return {"text": up.content.decode("utf-8").strip()}
    except UnicodeDecodeError:
        return {"text": ""}


@handles("dify.text_to_audio")
def text_to_audio(ctx: Ctx) -> Any:
    """An MP3 header followed by the text: deterministic bytes a test can check."""
    if ctx.p.get("message_id"):
        text = message_of(ctx, ctx.p["message_id"], None)["answer"]
    elif ctx.p.get("text"):
        text = ctx.p["text"]
    else:
        raise invalid("Either message_id or text is required.")
    return Reply(
        content=b"ID3\x04\x00\x00\x00\x00\x00\x00" + text.encode(), content_type="audio/mpeg"
    )


@handles("dify.get_end_user")
def get_end_user(ctx: Ctx) -> Any:
    for user in ctx.state.end_users.values():
        if user["id"] == ctx.p["end_user_id"]:
            return user
    raise not_found("End user not found.")


@handles("dify.get_info")
def get_info(ctx: Ctx) -> Any:
    app = ctx.app
    info = {"name": app.name, "description": app.description, "tags": list(app.tags)}
    return info | {"mode": app.mode or "chat", "author_name": app.author_name}


@handles("dify.get_parameters")
def get_parameters(ctx: Ctx) -> Any:
    """A fresh app's features, as Dify keeps them per mode (FACTS 7): everything optional off.

    Model-config apps (chat, agent-chat, completion) describe image upload and the
    moderation settings; workflow-based apps keep only the switches.
    """
    app, on, off = ctx.app, {"enabled": True}, {"enabled": False}
    graph = app.mode in ("workflow", "advanced-chat")
    limits = {"file_size_limit": 15, "image_file_size_limit": 10, "audio_file_size_limit": 50}
    limits |= {"video_file_size_limit": 100, "workflow_file_upload_limit": 10}
    if graph:
        files: dict[str, Any] = off
        moderation: dict[str, Any] = off
    else:
        methods = ["remote_url", "local_file"]
        files = {"image": off | {"number_limits": 3, "detail": "high", "transfer_methods": methods}}
        moderation = off | {"type": "", "config": {}}
    opening = app.opening_statement
    if opening is None and app.mode == "advanced-chat":
        opening = ""  # a chatflow's features start with an empty statement, not null
    return (
        {"opening_statement": opening, "suggested_questions": list(app.suggested_questions)}
        | {"suggested_questions_after_answer": {"enabled": app.suggested_questions_after_answer}}
        | {"speech_to_text": off, "text_to_speech": off | {"voice": "", "language": ""}}
        | {"retriever_resource": off if graph else on}
        | {"annotation_reply": {"enabled": ctx.state.annotation_reply}}
        | {"more_like_this": on if app.mode == "completion" else off}
        | {"sensitive_word_avoidance": moderation}
        | {"user_input_form": list(app.user_input_form), "file_upload": files}
        | {"system_parameters": limits}
        | dict(app.parameters)
    )


@handles("chat.get_suggested")
def suggested(ctx: Ctx) -> Any:
    """The app's ``follow_ups``, if ``/parameters`` says the feature is on, as Dify reads it."""
    require_mode(ctx, "chat", "agent-chat", "advanced-chat")
    message_of(ctx, ctx.p["message_id"], ctx.p["user"])
    if not get_parameters(ctx)["suggested_questions_after_answer"].get("enabled"):
        raise invalid("Suggested Questions Is Disabled.", "bad_request")  # FACTS 2
    return {"result": "success", "data": list(ctx.app.follow_ups)}


@handles("dify.get_meta")
def get_meta(ctx: Ctx) -> Any:
    return {"tool_icons": {}}


@handles("dify.get_site")
def get_site(ctx: Ctx) -> Any:
    """A fresh app's site: Dify leaves the theme, icon and texts unset (FACTS 7)."""
    return (
        {"title": ctx.app.name, "chat_color_theme": None, "chat_color_theme_inverted": False}
        | {"icon_type": "emoji", "icon": None, "icon_background": None, "icon_url": None}
        | {"description": None, "copyright": None, "privacy_policy": None}
        | {"custom_disclaimer": "", "default_language": "en-US"}
        | {"show_workflow_steps": True, "use_icon_as_answer_icon": False}
        | dict(ctx.app.site)
    )
