"""Batches: one operation over many inputs, bounded, in input order, each error a value.

``Client.iter_batch`` / ``AsyncClient.iter_batch`` run here (:mod:`.threads`,
:mod:`.tasks`), with their decisions in :mod:`.schedule`, on what :mod:`.caller` says a
client offers: this package imports no client. Every call goes through the client's normal
send path, so its retry policy applies to each item (but for a 429 ``too_many_requests``,
which the batch answers by narrowing). Resumable JSONL jobs, here or on a Dask cluster,
are :mod:`dify_oapi.jobs`.
"""

from __future__ import annotations

from .result import BatchResult, BatchResults, BatchStats
from .tasks import AsyncBatchIterator
from .threads import BatchIterator

__all__ = ["AsyncBatchIterator", "BatchIterator", "BatchResult", "BatchResults", "BatchStats"]
