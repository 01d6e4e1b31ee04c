"""A JSONL batch job across a Dask cluster: one cap on calls in flight per app, cluster-wide.

The driver (``dify-oapi batch --dask``, or :func:`run_file`) reads the input and keeps the
journal, as a local batch does; each item is one Dask task. The pieces:

- **The cap.** Every task holds a lease of one ``distributed.Semaphore`` while its call runs.
  Its name is a fingerprint of the app (the workers' key and base URL, hashed), so every job
  on one app, from any driver, shares one cap.
- **The key stays on the workers.** Each worker builds its client from its own environment
  (``DIFY_API_KEY``); no task, result or scheduler state holds the key.
- **Exactly once, even when the driver is killed.** A ledger on the scheduler (updated by
  ``run_on_scheduler``, so each step is atomic) records each item's call as *claimed* just
  before it is sent and its result as soon as it is known. A restarted driver opens a new
  epoch (a task of an older epoch that has not claimed yet sends nothing), journals the
  results the ledger kept, waits for the calls still running, and sends only the items
  never claimed. A call whose worker died after claiming it is not sent again: its result
  is an :class:`OutcomeUnknownError` (``--retry-failed`` sends it again, on purpose).

The scheduler and the workers need ``dify-oapi2`` installed (the ledger's functions run on
the scheduler).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from .._exceptions import AuthenticationError, DifyError
from ..batch.result import BatchResult
from ..batch.schedule import check_concurrency
from .journal import Key, _Invalid, result_record
from .local import JobReport, JsonlJob, Prepare

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["ClusterError", "OutcomeUnknownError", "run_file", "run_job"]

OnRecord = Callable[[Mapping[str, Any], int], None]


class ClusterError(DifyError):
    """The cluster cannot run the batch as asked (no key on a worker, a cap in conflict)."""


class OutcomeUnknownError(DifyError):
    """The worker that sent this item's call died before its answer came back; the call was
    not sent again (it may have run)."""


def distributed() -> Any:
    """``dask.distributed``, imported when used: it is the optional ``dask`` extra."""
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ClusterError(
            "a batch on a Dask cluster needs dask.distributed: pip install 'dify-oapi2[dask]'"
        ) from None


# -- the ledger: on the scheduler, one per job ------------------------------------------------


class _Ledger:
    __slots__ = ("acked", "claimed", "epoch", "held", "settled")

    def __init__(self) -> None:
        self.epoch = 0
        self.held = False  # a 401 came before any other answer: claim nothing for now
        self.claimed: dict[str, str] = {}  # item -> the worker that sent its call
        self.settled: dict[str, dict[str, Any]] = {}  # item -> result, not yet journaled
        self.acked: set[str] = set()  # journaled in this epoch


_LEDGERS: weakref.WeakKeyDictionary[Any, dict[str, _Ledger]] = weakref.WeakKeyDictionary()


def _ledger(scheduler: Any, job: str) -> _Ledger:
    return _LEDGERS.setdefault(scheduler, {}).setdefault(job, _Ledger())


def _open(job: str, dask_scheduler: Any = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A new epoch: returns it, the results not yet journaled and the calls still running."""
    ledger = _ledger(dask_scheduler, job)
    ledger.epoch += 1
    ledger.acked.clear()
    ledger.held = False
    return ledger.epoch, dict(ledger.settled), dict(ledger.claimed)


def _claim(job: str, item: str, epoch: int, worker: str, dask_scheduler: Any = None) -> Any:
    """``"go"`` (send it), ``"stale"`` (an older driver's task), ``"held"`` (not now: the key
    may be wrong), or what is known already: ``("done", result)``, ``("lost", worker)``
    (claimed by a worker since gone) or ``"journaled"``."""
    ledger = _LEDGERS.get(dask_scheduler, {}).get(job)
    if ledger is None or ledger.epoch != epoch:
        return "stale"
    if ledger.held:
        return "held"
    if item in ledger.settled:
        return ("done", ledger.settled[item])
    if item in ledger.claimed:
        return ("lost", ledger.claimed[item])
    if item in ledger.acked:
        return "journaled"
    ledger.claimed[item] = worker
    return "go"


def _settle(job: str, item: str, record: dict[str, Any], dask_scheduler: Any = None) -> None:
    ledger = _ledger(dask_scheduler, job)
    ledger.claimed.pop(item, None)
    ledger.settled[item] = record


def _ack(job: str, items: list[str], dask_scheduler: Any = None) -> None:
    ledger = _ledger(dask_scheduler, job)
    for item in items:
        ledger.settled.pop(item, None)
        ledger.claimed.pop(item, None)
        ledger.acked.add(item)


def _poll(
    job: str, items: list[str], dask_scheduler: Any = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The results of ``items`` known now, and the items whose worker is gone (with it)."""
    ledger = _ledger(dask_scheduler, job)
    alive = set(dask_scheduler.workers)
    done = {item: ledger.settled[item] for item in items if item in ledger.settled}
    lost = {
        item: ledger.claimed.get(item, "?")
        for item in items
        if item not in done and ledger.claimed.get(item) not in alive
    }
    return done, lost


def _hold(job: str, held: bool, dask_scheduler: Any = None) -> None:
    _ledger(dask_scheduler, job).held = held


def _close(job: str, dask_scheduler: Any = None) -> None:
    _LEDGERS.get(dask_scheduler, {}).pop(job, None)


# -- the worker side --------------------------------------------------------------------------

_CLIENTS: dict[tuple[Any, ...], Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _worker_client(base_url: str | None, options: Mapping[str, Any]) -> Client:
    """One client per worker process and settings, from the worker's environment."""
    key = (base_url, tuple(sorted(options.items())), os.environ.get("DIFY_API_KEY"))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            from .._client import Client

            client = _CLIENTS[key] = Client(base_url=base_url, **options)
        return client


_SEMAPHORES: dict[tuple[str, int], Any] = {}


def _semaphore(name: str, leases: int) -> Any:
    """The app's cap, one object per worker process (each starts a lease-refresh timer)."""
    with _CLIENTS_LOCK:
        semaphore = _SEMAPHORES.get((name, leases))
        if semaphore is None:
            semaphore = _SEMAPHORES[(name, leases)] = distributed().Semaphore(
                max_leases=leases, name=name
            )
        return semaphore


def _fingerprint(base_url: str | None) -> str | None:
    """The app this worker would call, hashed (``None`` without a key)."""
    key = os.environ.get("DIFY_API_KEY")
    if not key:
        return None
    from .._client import Client

    with Client(base_url=base_url) as client:  # the same base URL rules as the calls
        seen = f"{client.base_url}\n{key}"
    return hashlib.sha256(seen.encode()).hexdigest()[:20]


def _run_item(spec: dict[str, Any]) -> Any:
    """One Dask task: under the app's cap, claim the item, call, and record the result."""
    dist = distributed()
    worker = dist.get_worker().address
    dask_client = dist.get_client()
    with _semaphore(*spec["cap"]):
        claim = dask_client.run_on_scheduler(
            _claim, spec["job"], spec["item"], spec["epoch"], worker
        )
        if claim != "go":
            return claim
        client = _worker_client(spec["base_url"], spec["client_options"])
        arguments = spec["arguments"]
        try:
            value = client.call(spec["name"], **{**spec["options"], **arguments})
            result: BatchResult[Any] = BatchResult(spec["index"], arguments, value)
        except Exception as exc:  # one failure is that item's result
            result = BatchResult(spec["index"], arguments, None, exc)
    record = result_record(spec["id"], spec["index"], result)
    if result.ok:
        record["result"] = msgspec.to_builtins(result.value)
    dask_client.run_on_scheduler(_settle, spec["job"], spec["item"], record)
    return ("done", record)


# -- the driver -------------------------------------------------------------------------------


def _item_name(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def _job_name(job: JsonlJob, operation: str) -> str:
    where = f"{socket.gethostname()}\n{job.target.resolve()}\n{operation}"
    return hashlib.sha256(where.encode()).hexdigest()[:20]


def _lost_record(item_id: Any, index: int, worker: str) -> dict[str, Any]:
    error = OutcomeUnknownError(
        f"the worker {worker} sent this call and died before its answer came back; "
        "it was not sent again (it may have run): --retry-failed sends it again"
    )
    return result_record(item_id, index, BatchResult(index, None, None, error))


def _app(dask_client: Any, base_url: str | None) -> str:
    """The app every worker would call; each must have a key, and all the same one."""
    seen = dask_client.run(_fingerprint, base_url)
    if not seen:
        raise ClusterError("the Dask cluster has no workers")
    missing = sorted(worker for worker, print_ in seen.items() if print_ is None)
    if missing:
        raise ClusterError(
            f"no DIFY_API_KEY in the environment of worker(s) {', '.join(missing)}: each "
            "worker calls Dify with its own key, which never travels with a task"
        )
    if len(set(seen.values())) > 1:
        raise ClusterError("the workers hold different DIFY_API_KEY values (or base URLs)")
    return str(next(iter(seen.values())))


def run_file(
    dask_client: Any,
    name: str,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    concurrency: int = 8,
    retry_failed: bool = False,
    **settings: Any,
) -> JobReport:
    """Run operation ``name`` once per line of ``source`` on the cluster of ``dask_client``,
    with at most ``concurrency`` calls in flight on the app across the whole cluster,
    journaling to ``target`` as a local batch does: killed and run again, it sends no item
    twice and loses none. ``settings``: as for :func:`run_job`."""
    with JsonlJob(source, target) as job:
        job.open(retry_failed)
        run_job(dask_client, job, name, concurrency=concurrency, **settings)
        return job.finish()


def run_job(
    dask_client: Any,
    job: JsonlJob,
    name: str,
    *,
    concurrency: int = 8,
    base_url: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    prepare: Prepare | None = None,
    on_record: OnRecord | None = None,
    poll: float = 0.25,
    **options: Any,
) -> None:
    """Run the items of an opened :class:`JsonlJob` on the cluster (then ``job.finish()``
    puts the output in input order).

    The workers call with the key of their own environment (``DIFY_API_KEY``) and
    ``base_url`` (else their ``DIFY_BASE_URL``); ``client_options`` (``timeout``,
    ``max_retries``) build their clients; ``options`` go with every call; ``prepare``
    turns an input line's arguments into the call's; ``on_record(record, done)`` sees each
    result once journaled. Raises :class:`ClusterError` before anything is sent when a
    worker has no key, and :class:`~dify_oapi.AuthenticationError` when the first answers
    are all 401 (nothing is journaled then).
    """
    check_concurrency(concurrency)
    dist = distributed()
    cap = (f"dify-oapi:{_app(dask_client, base_url)}", concurrency)
    try:
        dist.Semaphore(max_leases=concurrency, name=cap[0]).register()
    except ValueError:
        raise ClusterError(
            "another batch on this app runs with a different concurrency; the cap of "
            "an app is one number across the cluster"
        ) from None
    driver = _Driver(dask_client, job, _job_name(job, name), on_record)
    spec = {
        "name": name,
        "options": dict(options),
        "base_url": base_url,
        "client_options": dict(client_options or {}),
        "cap": cap,
    }
    driver.run(spec, prepare, 2 * concurrency, poll)
    dask_client.run_on_scheduler(_close, driver.name)


class _Driver:
    """Submits the items, journals what comes back, in a bounded window of tasks."""

    def __init__(self, dask_client: Any, job: JsonlJob, name: str, on_record: Any) -> None:
        self.dask = dask_client
        self.job = job
        self.name = name
        self.on_record = on_record
        self.done = 0
        self.acks: list[str] = []
        self.key_works = False
        self.held: list[tuple[int, dict[str, Any]]] = []  # 401s held back: a wrong key?

    def journal(self, index: int, record: dict[str, Any]) -> None:
        """Write one result, unless it is a 401 before any other answer (held back)."""
        self.acks.append(_item_name(self.job.keys[index]))
        error = record.get("error") or {}
        if error.get("status") == 401 and not self.key_works:
            if not self.held:
                self.dask.run_on_scheduler(_hold, self.name, True)
            self.held.append((index, record))
            return
        if not self.key_works:
            self.key_works = True
            if self.held:
                self.dask.run_on_scheduler(_hold, self.name, False)
            held, self.held = self.held, []
            for earlier in held:
                self._write(*earlier)
        self._write(index, record)

    def _write(self, index: int, record: dict[str, Any]) -> None:
        self.job.write(index, record)
        self.done += 1
        if self.on_record is not None:
            self.on_record(record, self.done)

    def flush(self) -> None:
        if self.acks:
            self.dask.run_on_scheduler(_ack, self.name, self.acks)
            self.acks = []

    def run(self, spec: dict[str, Any], prepare: Prepare | None, window: int, poll: float) -> None:
        dist = distributed()
        job, names = self.job, [_item_name(key) for key in self.job.keys]
        index_of = {item: index for index, item in enumerate(names)}
        epoch, settled, running = self.dask.run_on_scheduler(_open, self.name)
        wanted = set(job.to_run)
        for item, record in settled.items():  # finished while no driver was there
            if index_of.get(item) in wanted:
                wanted.discard(index_of[item])
                self.journal(index_of[item], record)
        limbo = {index_of[i] for i in running if index_of.get(i) in wanted}
        wanted -= limbo
        pairs = zip(job.to_run, job.arguments(prepare), strict=True)
        todo = ((i, args) for i, args in pairs if i in wanted)
        futures: dict[Any, tuple[int, Any]] = {}
        again: list[tuple[int, Any]] = []  # items whose task was held back by a 401
        submitted = 0
        while True:
            while not self.held and len(futures) < window:
                nxt = again.pop() if again else next(todo, None)
                if nxt is None:
                    break
                index, arguments = nxt
                if isinstance(arguments, _Invalid):  # fails here, before anything is sent
                    result: BatchResult[Any] = BatchResult(index, arguments, None, None)
                    self.journal(index, result_record(job.item_id(index), index, result))
                    continue
                task = {
                    **spec,
                    "job": self.name,
                    "epoch": epoch,
                    "item": names[index],
                    "index": index,
                    "id": job.item_id(index),
                    "arguments": arguments,
                }
                submitted += 1
                key = f"dify-oapi-{self.name}-{epoch}-{index}-{submitted}"
                futures[self.dask.submit(_run_item, task, key=key, pure=False)] = nxt
            self.flush()
            if limbo:  # calls an earlier driver started: wait for them, never send again
                known, lost = self.dask.run_on_scheduler(
                    _poll, self.name, [names[i] for i in sorted(limbo)]
                )
                for item, record in known.items():
                    self.journal(index_of[item], record)
                for item, worker in lost.items():
                    index = index_of[item]
                    self.journal(index, _lost_record(job.item_id(index), index, worker))
                limbo -= {index_of[i] for i in (*known, *lost)}
            if not futures:
                if limbo:
                    time.sleep(poll)
                    continue
                self.flush()
                if self.held:  # every answer so far was a 401: the key is wrong
                    raise _refusal(self.held[0][1])
                return
            try:
                dist.wait(list(futures), timeout=poll, return_when="FIRST_COMPLETED")
            except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
                continue
            for future in [f for f in futures if f.done()]:
                index, arguments = futures.pop(future)
                outcome = future.result()
                if outcome == "held":
                    again.append((index, arguments))
                    continue
                if outcome == "journaled":  # a re-run of a task whose result is written
                    continue
                if outcome == "stale":
                    raise ClusterError(
                        "the scheduler no longer knows this batch (was it restarted?); run "
                        "the command again to go on"
                    )
                if outcome[0] == "lost":
                    outcome = ("done", _lost_record(job.item_id(index), index, outcome[1]))
                self.journal(index, outcome[1])


def _refusal(record: Mapping[str, Any]) -> AuthenticationError:
    error = record["error"]
    return AuthenticationError(
        error.get("message") or "unauthorized",
        operation="",
        status_code=401,
        code=error.get("code"),
    )
