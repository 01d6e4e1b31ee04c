"""The emulator's routes, built from the SDK's endpoint tables: no second list of paths.

Every row's method and path become a route; rows that several services share (the app
operations every app has, chat and chatflow messages) fold into one route. A route is
served by the handler registered under the ``service.name`` of any of its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._table import Endpoint

__all__ = ["Route", "Router"]


@dataclass(frozen=True)
class Route:
    """One ``METHOD /path`` of the API and the rows that declare it."""

    method: str
    path: str
    rows: tuple[Endpoint, ...]
    segments: tuple[str | None, ...]  # a literal segment, or None for a placeholder
    names: tuple[str, ...]  # placeholder names, in order
    handler: Callable[..., Any]

    @property
    def row(self) -> Endpoint:
        """The row whose request struct validates the call (one with an operation id first)."""
        return next((r for r in self.rows if r.operation_id), self.rows[0])

    @property
    def knowledge(self) -> bool:
        """Knowledge routes take a dataset key; all others take an app key."""
        return any(r.service == "knowledge" for r in self.rows)

    def covers(self, qualname: str) -> bool:
        return any(
            qualname in (r.qualname, *(f"{r.service}.{a}" for a in r.aliases)) for r in self.rows
        )

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        values = []
        for part, literal in zip(parts, self.segments, strict=True):
            if literal is None:
                if not part:
                    return None
                values.append(part)
            elif part != literal:
                return None
        return dict(zip(self.names, values, strict=True))


def _split(path: str) -> tuple[tuple[str | None, ...], tuple[str, ...]]:
    segments = [s for s in path.strip("/").split("/")]
    names = tuple(s[1:-1] for s in segments if s.startswith("{"))
    return tuple(None if s.startswith("{") else s for s in segments), names


class Router:
    """Finds the route of a request path; literal segments win over placeholders."""

    def __init__(
        self, tables: Mapping[str, Iterable[Endpoint]], handlers: Mapping[str, Callable[..., Any]]
    ) -> None:
        grouped: dict[tuple[str, str], list[Endpoint]] = {}
        for endpoints in tables.values():
            for ep in endpoints:
                grouped.setdefault((ep.method, ep.path), []).append(ep)
        routes = []
        for (method, path), rows in grouped.items():
            handler = next((handlers[r.qualname] for r in rows if r.qualname in handlers), None)
            if handler is None:
                raise LookupError(f"no emulator handler for {method} {path} ({rows[0].qualname})")
            segments, names = _split(path)
            routes.append(Route(method, path, tuple(rows), segments, names, handler))
        # The most literal route first: /datasets/tags before /datasets/{dataset_id}.
        routes.sort(key=lambda r: tuple(s is None for s in r.segments))
        self.routes = routes

    def find(self, method: str, parts: list[str]) -> tuple[Route, dict[str, str]] | int:
        """The route and its path values, or 404 (no such path) or 405 (wrong method)."""
        status = 404
        for route in self.routes:
            values = route.match(parts)
            if values is None:
                continue
            if route.method == method:
                return route, values
            status = 405
        return status

    def for_operation(self, qualname: str) -> Route:
        """The route an operation name (``chat.send``, an alias too) is served by."""
        for route in self.routes:
            if route.covers(qualname):
                return route
        raise ValueError(f"unknown operation {qualname!r}")
