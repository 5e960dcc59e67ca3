"""A SLURM cluster for a job: ``dask_jobqueue.SLURMCluster`` from a
``type: slurm`` cluster file, and waiting for its worker jobs.

Every key of the file but ``type``, ``jobs``, ``adapt``, ``timeout``,
``security`` and ``storage`` (dkmeans' own) goes to ``SLURMCluster``. The
job then waits for its workers up to ``timeout``, saying what SLURM says of
the jobs while they are pending (``waiting for 2 SLURM jobs: PENDING
(Resources)``); with none by then it gives up
(:class:`~dkmeans.errors.ClusterUnavailableError`: exit 3). The worker jobs
are cancelled when the cluster closes.
"""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

from dkmeans.errors import ClusterUnavailableError, InvalidParameterError

log = logging.getLogger("dkmeans")

#: The keys of a ``slurm`` cluster file that are dkmeans', not SLURMCluster's
OWN_KEYS = ("type", "jobs", "adapt", "timeout", "security", "storage")
_ADAPT_KEYS = {"minimum_jobs", "maximum_jobs"}


def slurm_kwargs(config: dict) -> dict:
    """``SLURMCluster``'s keyword arguments from a checked configuration."""
    kwargs = {k: v for k, v in config.items() if k not in OWN_KEYS and v is not None}
    dashboard = kwargs.pop("dashboard_address", None)
    if dashboard is not None:  # dask-jobqueue takes it among the scheduler's options
        kwargs["scheduler_options"] = {"dashboard_address": dashboard,
                                       **(kwargs.get("scheduler_options") or {})}
    for key in ("job_extra_directives", "job_script_prologue", "worker_extra_args"):
        if not kwargs.get(key):
            kwargs.pop(key, None)
    return kwargs


def check_security(config: dict, where: str) -> None:
    """``security: temporary`` writes the job's certificates where the worker
    jobs read them: ``shared_temp_directory``, made here if missing."""
    if not config.get("security"):
        return
    folder = config.get("shared_temp_directory")
    if not folder:
        raise InvalidParameterError(
            f"security: temporary in {where} needs shared_temp_directory: a folder the "
            "worker jobs can read (on a shared filesystem), where the job's certificates "
            "are written.")
    import os

    os.makedirs(folder, mode=0o700, exist_ok=True)


def check_adapt(adapt: Any, where: str) -> None:
    if adapt is None:
        return
    unknown = set(adapt) - _ADAPT_KEYS
    if unknown or not all(isinstance(adapt.get(k, 0), int) for k in _ADAPT_KEYS):
        raise InvalidParameterError(
            f"'adapt' in {where} takes integers minimum_jobs and maximum_jobs; got {adapt!r}.")


def start_jobs(cluster: Any, config: dict) -> int:
    """Ask SLURM for the worker jobs; returns how many workers to wait for."""
    adapt = config.get("adapt")
    if adapt:
        low, high = adapt.get("minimum_jobs", 1), adapt.get("maximum_jobs", config["jobs"])
        cluster.adapt(minimum_jobs=low, maximum_jobs=high)
        jobs = max(1, low)
    else:
        cluster.scale(jobs=config["jobs"])
        jobs = config["jobs"]
    return jobs * config["processes"]


def job_states(cluster: Any) -> list[tuple[str, str, str]]:
    """(job id, state, reason) of the cluster's worker jobs SLURM knows."""
    ids = [j.job_id for j in getattr(cluster, "workers", {}).values()
           if getattr(j, "job_id", None)]
    if not ids:
        return []
    proc = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i|%T|%r"],
                          capture_output=True, text=True, timeout=30)
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.count("|") == 2]
    return [(i, s, r) for i, s, r in rows]


def _describe(states: list[tuple[str, str, str]]) -> str:
    pending = [(s, r) for _, s, r in states if s != "RUNNING"]
    if not pending:
        return f"waiting for the workers of {len(states)} running SLURM jobs to connect"
    kinds = sorted({f"{s} ({r})" for s, r in pending})
    return f"waiting for {len(pending)} SLURM jobs: {', '.join(kinds)}"


def wait_for_slurm_workers(client: Any, cluster: Any, n: int, timeout: Any) -> None:
    """Wait up to ``timeout`` for ``n`` workers, logging the jobs' states as
    they change; none by then is an error naming them, fewer a warning."""
    from dask.utils import parse_timedelta

    seconds = parse_timedelta(timeout)
    deadline = time.monotonic() + seconds
    said = None
    while True:
        found = len(client.scheduler_info(n_workers=-1)["workers"])
        if found >= n:
            return
        states = job_states(cluster)
        text = _describe(states)
        if time.monotonic() > deadline:
            if found:
                log.warning("%d of %d workers joined within %s; going on with those.",
                            found, n, timeout)
                return
            raise ClusterUnavailableError(
                f"No SLURM worker joined within {timeout} ({text}): gave up. The jobs are "
                "cancelled; try again later, or ask for fewer or smaller jobs.")
        if text != said:
            log.info("%s", text)
            said = text
        time.sleep(1.0)
