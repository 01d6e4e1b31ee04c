"""Iterating every item of a paged list operation (rows with ``paginate``).

``page`` rows advance ``page`` until ``has_more`` is false; ``cursor`` rows pass the id of the
last item (``last_id``) or of the first, oldest one (``first_id``) of the page just read.
``first_id`` lists (message history) page backwards in time while each page is oldest first,
so their items are yielded newest first throughout.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._exceptions import InvalidArgumentsError
from ._table import CALL_OPTIONS, Endpoint

__all__ = ["Pager"]


class Pager:
    """The arguments of each page request, and when to stop."""

    __slots__ = ("cursor_field", "done", "endpoint", "kwargs")

    def __init__(self, ep: Endpoint, request: Any, kwargs: dict[str, Any]) -> None:
        if request is not None:
            if kwargs.keys() - CALL_OPTIONS:
                raise InvalidArgumentsError(
                    f"{ep.qualname}() takes either a request struct or keyword arguments"
                )
            fields = {f: getattr(request, f) for f in ep.fields}
            kwargs = {**{k: v for k, v in fields.items() if v is not msgspec.UNSET}, **kwargs}
        for option in ("stream", "raw", "collect"):
            if kwargs.get(option):
                raise InvalidArgumentsError(f"iterating {ep.qualname} takes no {option}=")
        self.endpoint = ep
        self.kwargs = dict(kwargs)
        self.done = False
        self.cursor_field = ""
        if ep.paginate == "cursor":
            self.cursor_field = "last_id" if "last_id" in ep.fields else "first_id"

    def next_kwargs(self) -> dict[str, Any]:
        """A fresh copy: the call pops its options from the dict it gets."""
        return dict(self.kwargs)

    def advance(self, page: Any) -> list[Any]:
        """The items of ``page``; sets ``done`` when no further page exists."""
        items: list[Any] = list(page.data)
        has_more = getattr(page, "has_more", None)
        limit = self.kwargs.get("limit") or getattr(page, "limit", None)
        if not items or has_more is False:
            self.done = True
        elif has_more is None and isinstance(limit, int) and len(items) < limit:
            self.done = True  # no has_more (e.g. feedbacks): a short page is the last
        elif self.endpoint.paginate == "page":
            number = self.kwargs.get("page") or getattr(page, "page", None) or 1
            total_pages = getattr(page, "total_pages", None)
            if has_more is None and total_pages is not None and number >= total_pages:
                self.done = True
            self.kwargs["page"] = number + 1
        else:
            item = items[-1] if self.cursor_field == "last_id" else items[0]
            self.kwargs[self.cursor_field] = item.id
        if self.cursor_field == "first_id":
            items.reverse()
        return items
