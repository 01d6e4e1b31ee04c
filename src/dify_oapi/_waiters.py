"""Waiting for a batch of knowledge-base documents to finish indexing."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._exceptions import DifyError

if TYPE_CHECKING:
    from ._client import AsyncClient, Client
    from .types import DocumentIndexingStatus

__all__ = ["IndexingFailedError", "IndexingTimeoutError", "TERMINAL_STATUSES"]

#: Indexing statuses after which a document will not change without a new request.
TERMINAL_STATUSES = frozenset({"completed", "error", "paused", "stopped"})

# Tests replace this to drive time by hand.
_monotonic = time.monotonic


class IndexingFailedError(DifyError):
    """Some documents of the batch ended in ``error``; ``statuses`` holds every document."""

    def __init__(self, message: str, statuses: list[DocumentIndexingStatus]) -> None:
        super().__init__(message)
        self.statuses = statuses


class IndexingTimeoutError(DifyError, TimeoutError):
    """The batch was still indexing at the deadline; ``statuses`` holds the last poll."""

    def __init__(self, message: str, statuses: list[DocumentIndexingStatus]) -> None:
        super().__init__(message)
        self.statuses = statuses


def _settle(
    statuses: list[DocumentIndexingStatus], raise_on_failure: bool
) -> list[DocumentIndexingStatus] | None:
    """The final statuses once every document is terminal, else ``None``."""
    if not statuses or any(s.indexing_status not in TERMINAL_STATUSES for s in statuses):
        return None
    failed = [s for s in statuses if s.indexing_status == "error"]
    if failed and raise_on_failure:
        detail = "; ".join(f"{s.id}: {s.error or 'error'}" for s in failed)
        raise IndexingFailedError(f"{len(failed)} document(s) failed to index: {detail}", statuses)
    return statuses


def _timed_out(statuses: list[Any], timeout: float) -> IndexingTimeoutError:
    pending = [s.id for s in statuses if s.indexing_status not in TERMINAL_STATUSES]
    return IndexingTimeoutError(
        f"indexing not finished after {timeout:g}s; still pending: {pending or 'no status yet'}",
        statuses,
    )


def wait_for_indexing(
    client: Client,
    *,
    dataset_id: str,
    batch: str,
    timeout: float,
    poll_interval: float,
    raise_on_failure: bool,
    **options: Any,
) -> list[DocumentIndexingStatus]:
    from . import _client

    deadline = _monotonic() + timeout
    while True:
        page = client.call(
            "knowledge.get_indexing_status", dataset_id=dataset_id, batch=batch, **options
        )
        final = _settle(page.data, raise_on_failure)
        if final is not None:
            return final
        remaining = deadline - _monotonic()
        if remaining <= 0:
            raise _timed_out(page.data, timeout)
        _client._sleep(min(poll_interval, remaining))


async def async_wait_for_indexing(
    client: AsyncClient,
    *,
    dataset_id: str,
    batch: str,
    timeout: float,
    poll_interval: float,
    raise_on_failure: bool,
    **options: Any,
) -> list[DocumentIndexingStatus]:
    from . import _client

    deadline = _monotonic() + timeout
    while True:
        page = await client.call(
            "knowledge.get_indexing_status", dataset_id=dataset_id, batch=batch, **options
        )
        final = _settle(page.data, raise_on_failure)
        if final is not None:
            return final
        remaining = deadline - _monotonic()
        if remaining <= 0:
            raise _timed_out(page.data, timeout)
        await _client._async_sleep(min(poll_interval, remaining))
