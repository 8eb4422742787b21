"""Running the tasks of a cohort run on a Dask scheduler (injected, never started here).

``scheduler`` is a Dask local scheduler name (``"synchronous"``, ``"threads"``,
``"processes"``), a :class:`distributed.Client`, or the address (``tcp://host:port``) or
scheduler file (``scheduler.json``) of a running ``distributed`` scheduler, to which a client is
connected for the run and closed afterwards. Library code never starts a cluster.

Each finished task is handed to ``on_done`` as soon as it finishes (local schedulers: a Dask
callback in the client thread; distributed: ``as_completed``), so results are committed one
task at a time and a killed run loses at most the tasks in flight.

Failures of the machinery (a worker process that dies, a lost connection) are retried: on a
``distributed`` cluster a task whose worker died is rescheduled by the scheduler (up to
``distributed.scheduler.allowed-failures`` times) and a task that raised is resubmitted
``retries`` times; with the local ``processes`` scheduler a broken process pool is replaced and
the unfinished tasks are resubmitted, up to ``retries`` times. Tasks that still fail are handed
to ``on_failed`` with the exception, and the run goes on.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Runner", "resolve_scheduler", "LOCAL_SCHEDULERS", "SchedulerError"]

logger = logging.getLogger("ncsproc.pipeline")

LOCAL_SCHEDULERS = {
    "synchronous": "synchronous",
    "sync": "synchronous",
    "single-threaded": "synchronous",
    "threads": "threads",
    "threading": "threads",
    "processes": "processes",
    "multiprocessing": "processes",
}
_ADDRESS_PREFIXES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


class SchedulerError(ValueError):
    """An unknown scheduler name, or a distributed scheduler that cannot be reached."""


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Runner:
    """How tasks run: a local Dask scheduler or a distributed client."""

    kind: str  # "synchronous", "threads", "processes" or "distributed"
    workers: int
    client: object = None
    owns_client: bool = False
    label: str = ""

    def close(self) -> None:
        if self.owns_client and self.client is not None:
            try:
                self.client.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
            self.client = None

    @property
    def parallelism(self) -> int:
        if self.kind == "distributed":
            try:
                return max(1, sum(self.client.nthreads().values()))
            except Exception:
                return 1
        return 1 if self.kind == "synchronous" else self.workers

    def run(
        self,
        func: Callable,
        batches: Sequence,
        args: tuple,
        on_done: Callable[[int, object], None],
        on_failed: Callable[[int, BaseException], None],
        retries: int = 2,
    ) -> None:
        """Run ``func(batch, *args)`` for every batch; report each result or failure."""
        if not batches:
            return
        if self.kind == "distributed":
            self._run_distributed(func, batches, args, on_done, on_failed, retries)
        else:
            self._run_local(func, batches, args, on_done, on_failed, retries)

    # -- local schedulers ---------------------------------------------------------------------
    def _run_local(self, func, batches, args, on_done, on_failed, retries):
        import dask
        from dask.callbacks import Callback

        remaining = list(range(len(batches)))
        attempt = 0
        while remaining:
            tasks = [dask.delayed(func, pure=False)(batches[i], *args) for i in remaining]
            index = {t.key: i for t, i in zip(tasks, remaining, strict=True)}
            finished: set[int] = set()
            client_errors: list[BaseException] = []

            def posttask(
                key,
                result,
                dsk,
                state,
                worker_id,
                _index=index,
                _done=finished,
                _errors=client_errors,
            ):
                i = _index.get(key)
                if i is not None and i not in _done:
                    _done.add(i)
                    try:
                        on_done(i, result)
                    except BaseException as exc:  # the client's own failure: not retried
                        _errors.append(exc)
                        raise

            kwargs = {"scheduler": self.kind}
            if self.kind != "synchronous":
                kwargs["num_workers"] = self.workers
            if self.kind == "processes":
                # dask groups up to 6 ready tasks per submission by default: with tasks of
                # a few exams that leaves workers idle at the end; one task per submission
                kwargs["chunksize"] = 1
                # Ctrl-C reaches the whole process group: the client stops the run and says
                # so in one line; workers that also raised would print a traceback each
                kwargs["initializer"] = _ignore_interrupt
            try:
                with Callback(posttask=posttask):
                    dask.compute(*tasks, **kwargs)
            except Exception as exc:
                if client_errors:
                    raise client_errors[0] from None
                remaining = [i for i in remaining if i not in finished]
                attempt += 1
                if attempt > retries:
                    logger.warning(
                        "%d task(s) failed after %d attempts: %s: %s",
                        len(remaining),
                        attempt,
                        type(exc).__name__,
                        exc,
                    )
                    for i in remaining:
                        on_failed(i, exc)
                    return
                logger.warning(
                    "%s: %s; resubmitting %d unfinished task(s) (retry %d of %d)",
                    type(exc).__name__,
                    exc,
                    len(remaining),
                    attempt,
                    retries,
                )
                continue
            remaining = [i for i in remaining if i not in finished]
            if remaining:  # pragma: no cover - every task reports through the callback
                for i in remaining:
                    on_failed(i, RuntimeError("task finished without a result"))
                return

    # -- distributed --------------------------------------------------------------------------
    def _run_distributed(self, func, batches, args, on_done, on_failed, retries):
        from distributed import as_completed

        client = self.client
        with client.as_current():
            shared = [
                client.scatter(a, broadcast=True, hash=False) if _large(a) else a for a in args
            ]
            token = uuid.uuid4().hex[:12]
            futures = {}
            for i, batch in enumerate(batches):
                fut = client.submit(
                    func,
                    batch,
                    *shared,
                    pure=False,
                    retries=retries,
                    key=f"ncsproc-extract-{token}-{i}",
                )
                futures[fut] = i
            try:
                for fut in as_completed(list(futures)):
                    i = futures.pop(fut)
                    if fut.status == "finished":
                        on_done(i, fut.result())
                    else:
                        try:
                            exc = fut.exception()
                        except BaseException as e:  # cancelled futures raise here
                            exc = e
                        on_failed(i, exc)
                    fut.release()
            finally:
                for fut in futures:
                    fut.release()
                for a in shared:
                    if hasattr(a, "release"):
                        a.release()


def _ignore_interrupt() -> None:
    """Initializer of a local worker process: SIGINT is the client's to handle."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _large(obj) -> bool:
    return not isinstance(obj, (str, bytes, int, float, bool, type(None), Path))


def resolve_scheduler(scheduler=None, workers: int | None = None) -> Runner:
    """Turn a scheduler argument into a :class:`Runner`.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        ``"synchronous"``, ``"threads"`` (default), ``"processes"``, a ``distributed.Client``,
        an address such as ``"tcp://127.0.0.1:8786"`` or a scheduler file (``*.json``).
    workers : int, optional
        Threads or processes of a local scheduler (default: the cores this process may use).
        Ignored for a distributed cluster, which has its own workers.

    Raises
    ------
    SchedulerError
        Unknown scheduler name, or the address cannot be reached.
    """
    if workers is not None and int(workers) < 1:
        raise SchedulerError(f"workers must be >= 1, got {workers}")
    if scheduler is None:
        scheduler = "threads"
    if isinstance(scheduler, str) and scheduler.strip().lower() in LOCAL_SCHEDULERS:
        Client = None  # a local scheduler: dask.distributed (~1 s to import) is not needed
    else:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - distributed is a dependency
            Client = None
    if Client is not None and isinstance(scheduler, Client):
        if workers is not None:
            logger.info("--workers is ignored for a distributed cluster (it has its own)")
        return Runner("distributed", 0, scheduler, False, _client_label(scheduler))
    if not isinstance(scheduler, str):
        raise SchedulerError(
            f"scheduler must be a name, an address or a distributed.Client, got {scheduler!r}"
        )
    name = scheduler.strip()
    if name.lower() in LOCAL_SCHEDULERS:
        kind = LOCAL_SCHEDULERS[name.lower()]
        n = int(workers) if workers is not None else default_workers()
        return Runner(kind, 1 if kind == "synchronous" else n, label=kind)
    if Client is None:  # pragma: no cover
        raise ValueError("a distributed scheduler needs the 'distributed' package")
    if name.endswith(".json"):
        if not Path(name).is_file():
            raise SchedulerError(f"scheduler file {name}: no such file")
        kwargs = {"scheduler_file": name}
    elif name.startswith(_ADDRESS_PREFIXES) or (":" in name and "/" not in name):
        kwargs = {"address": name}
    else:
        raise SchedulerError(
            f"unknown scheduler {scheduler!r}: expected synchronous, threads, processes, an "
            "address such as tcp://127.0.0.1:8786, or a scheduler file (*.json)"
        )
    if workers is not None:
        logger.info("--workers is ignored for a distributed cluster (it has its own)")
    import dask

    timeout = dask.config.get("distributed.comm.timeouts.connect", "30s")
    try:
        client = Client(timeout=timeout, set_as_default=False, **kwargs)
    except Exception as exc:
        raise SchedulerError(f"cannot connect to the dask scheduler {name}: {exc}") from None
    return Runner("distributed", 0, client, True, _client_label(client))


def _client_label(client) -> str:
    try:
        info = client.scheduler_info()
        n = len(info.get("workers", {}))
        return f"distributed ({n} worker(s))"
    except Exception:  # pragma: no cover
        return "distributed"
