"""The workers of the active ``distributed`` cluster: waiting for them to
join, and the memory they have (what ``persist="auto"`` decides from)."""

from __future__ import annotations

import logging
from typing import Any

from dkmeans.errors import ClusterUnavailableError
from dkmeans.storage import active_client


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
