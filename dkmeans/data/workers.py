"""The workers of the active ``distributed`` cluster: waiting for them to
join, the memory they have (what ``persist="auto"`` decides from) and the
memory a job used on them (:func:`watch_worker_memory`)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from dkmeans.data.storage import active_client
from dkmeans.errors import ClusterUnavailableError


def wait_for_workers(client: Any, n: int = 1, timeout: Any = None) -> list[dict]:
    """The cluster's workers, once ``n`` of them joined.

    Decisions made from the workers (their memory, for ``persist="auto"``)
    then see the cluster that was asked for, and a fit's first computation
    does not wait forever on a cluster with none.

    Parameters
    ----------
    client : distributed.Client
    n : int
    timeout : str or float, optional
        Dask's ``distributed.comm.timeouts.connect`` when not given.

    Raises
    ------
    ClusterUnavailableError
        If no worker joined within ``timeout``. Fewer than ``n`` (but some)
        is logged as a warning, and the fit goes on with those.
    """
    import dask

    def workers() -> list[dict]:
        return list(client.scheduler_info(n_workers=-1)["workers"].values())

    if len(found := workers()) >= n:
        return found
    timeout = timeout or dask.config.get("distributed.comm.timeouts.connect")
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError as err:
        if not (found := workers()):
            raise ClusterUnavailableError(
                f"No worker joined the Dask cluster at {client.scheduler.address} within "
                f"{timeout}: nothing can run without one (and persist='auto' decides "
                "from the workers' memory). Start workers, or check their logs.") from err
        logging.getLogger("dkmeans").warning(
            "%d of %d workers joined within %s; going on with those.", len(found), n, timeout)
    return workers()


def memory_budget() -> int:
    """Bytes of memory the active scheduler's workers have, in total (the
    machine's available memory on a local scheduler, or when a worker has no
    limit). On a ``distributed`` cluster with no worker yet, waits for one."""
    import psutil

    client = active_client()
    if client is None:
        return int(psutil.virtual_memory().available)
    limits = [w.get("memory_limit") or 0 for w in wait_for_workers(client)]
    if not all(limits):
        return int(psutil.virtual_memory().available)
    return int(sum(limits))


# --------------------------------------------------------------------------
# Watching the workers' memory (benchmarks, tests, capacity planning)

_SAMPLER = "_dkmeans_memory_sampler"


def _spilled_bytes(dask_worker: Any) -> float:
    metrics = getattr(dask_worker.data, "cumulative_metrics", {})
    return float(sum(v for (label, unit), v in metrics.items()
                     if label == "disk-write" and unit == "bytes"))


def _start_sampling(interval: float, dask_worker: Any = None) -> None:
    import psutil

    process = psutil.Process()
    state = {"peak": process.memory_info().rss, "spilled": _spilled_bytes(dask_worker),
             "stop": threading.Event()}

    def sample() -> None:
        while not state["stop"].wait(interval):
            state["peak"] = max(state["peak"], process.memory_info().rss)

    threading.Thread(target=sample, daemon=True, name="dkmeans-memory").start()
    setattr(dask_worker, _SAMPLER, state)


def _stop_sampling(dask_worker: Any = None) -> dict[str, float]:
    state = getattr(dask_worker, _SAMPLER)
    state["stop"].set()
    delattr(dask_worker, _SAMPLER)
    return {"peak_rss": float(state["peak"]),
            "memory_limit": float(dask_worker.memory_manager.memory_limit or 0),
            "spilled_bytes": _spilled_bytes(dask_worker) - state["spilled"]}


@contextlib.contextmanager
def watch_worker_memory(client: Any, interval: float = 0.02) -> Iterator[dict[str, dict]]:
    """Record each worker's peak resident memory and bytes spilled to disk.

    A thread on every worker samples its process's resident set size every
    ``interval`` seconds while the block runs; the yielded dict is filled on
    exit with ``{worker address: {"peak_rss", "memory_limit", "spilled_bytes"}}``.

    Examples
    --------
    >>> with watch_worker_memory(client) as memory:  # doctest: +SKIP
    ...     KMeans(8).fit("big.zarr")
    >>> max(m["peak_rss"] for m in memory.values())  # doctest: +SKIP
    """
    client.run(_start_sampling, interval)
    report: dict[str, dict] = {}
    try:
        yield report
    finally:
        report.update(client.run(_stop_sampling))
