"""Iterating every item of a paged list operation, as the row's paginator declares it.

A ``page`` paginator advances its page-number field by one; a ``cursor`` paginator passes the
key of the first or last item of the page just read. Iteration stops when the answer's
has-more flag is false, a page is empty, a page is shorter than the limit (lists without the
flag), or the page count is reached.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._exceptions import InvalidArgumentsError
from ._options import CALL_OPTIONS
from ._table import Endpoint

__all__ = ["Pager"]


class Pager:
    """The arguments of each page request, and when to stop."""

    __slots__ = ("done", "endpoint", "kwargs")

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

    def next_kwargs(self) -> dict[str, Any]:
        """A fresh copy: the call pops its options from the dict it gets."""
        return dict(self.kwargs)

    def advance(self, page: Any) -> list[Any]:
        """The items of ``page``; sets ``done`` when no further page exists."""
        rule = self.endpoint.paginate
        assert rule is not None
        items: list[Any] = list(getattr(page, rule.items))
        has_more = getattr(page, rule.more, None) if rule.more else None
        limit = (
            (self.kwargs.get(rule.limit) or getattr(page, rule.limit, None)) if rule.limit else None
        )
        if not items or has_more is False:
            self.done = True
        elif has_more is None and isinstance(limit, int) and len(items) < limit:
            self.done = True  # no has-more flag: a short page is the last
        elif rule.kind == "page":
            number = self.kwargs.get(rule.token) or getattr(page, rule.token, None) or 1
            pages = getattr(page, rule.pages, None) if rule.pages else None
            if has_more is None and pages is not None and number >= pages:
                self.done = True
            self.kwargs[rule.token] = number + 1
        else:
            item = items[0] if rule.from_ == "first" else items[-1]
            self.kwargs[rule.token] = getattr(item, rule.key)
        if rule.reverse:
            items.reverse()
        return items
