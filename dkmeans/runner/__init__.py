"""Running a pass: the graph of chunk calls and the reduction tree.

A :class:`Pass` names a chunk function and an associative combine; given the
data's blocks, :func:`run_pass` builds one task per block (where the block
lives), a tree of combine tasks with fan-in ``split_every``, and runs it on
the active Dask scheduler; on a ``distributed`` cluster an exact, stateless
pass instead runs as a few tasks that each fold many blocks. Stateful passes
also return per-block states, persisted where they were computed.

- :mod:`~dkmeans.runner.base`: :class:`Pass`, :class:`Block`, progress reports;
- :mod:`~dkmeans.runner.local`: a local scheduler's one plain graph, in-memory
  blocks run in this thread, and the one-thread BLAS pin;
- :mod:`~dkmeans.runner.cluster`: a ``distributed`` cluster's futures, with
  each worker's chunks combined on that worker for exact passes;
- :mod:`~dkmeans.runner.fold`: exact, stateless passes on a cluster as a
  few tasks, each folding many chunks in a loop;
- :mod:`~dkmeans.runner.notes`: what folds leave on their workers, so only
  the first pass over a dataset names its blocks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import dask
import numpy as np
import scipy.sparse as sp
from dask.base import is_dask_collection
from dask.core import flatten
from dask.delayed import Delayed

from dkmeans.runner.base import Block, Pass, report_progress
from dkmeans.runner.cluster import pair_state, run_on_cluster
from dkmeans.runner.fold import fold_pass
from dkmeans.runner.local import blas_pinned, blas_pinned_for, run_in_memory, run_local

__all__ = ["Block", "Pass", "blas_pinned", "compute", "compute_all", "pair_state",
           "report_progress", "run_pass"]


def run_pass(spec: Pass, blocks: Sequence[Block], *shared: Any,
             states: Sequence[Any] | None = None, split_every: int = 8):
    """Run one pass over the blocks and return its combined intermediate.

    Parameters
    ----------
    spec : Pass
    blocks : sequence of Block
    *shared
        Arguments every chunk call receives after its block (and state).
    states : sequence, optional
        Per-block state from the previous pass (stateful passes only);
        ``None`` means every block starts without state.
    split_every : int
        Fan-in of the reduction tree.

    Returns
    -------
    result
        The combined intermediate, for a stateless pass.
    (new_states, result)
        For a stateful pass: the new per-block states and the combined
        intermediate. On a ``distributed`` cluster the states are futures,
        still on the workers; on a local scheduler, plain values.
    """
    # A fresh token per call, not one derived from the inputs: a pass repeated
    # with identical inputs (same centers after convergence) would otherwise
    # reuse the keys of the previous pass while the cluster is still releasing
    # them, and distributed cancels such tasks ("lost dependencies").
    if states is None:
        states = [None] * len(blocks)
    if all(isinstance(b.x, np.ndarray) or sp.issparse(b.x) for b in blocks):  # in memory
        return run_in_memory(spec, blocks, shared, states, split_every)
    name = f"{spec.name}-{uuid.uuid4().hex}"
    get = _scheduler([b.x for b in blocks])
    if get in _LOCAL:
        return run_local(get, spec, blocks, shared, states, name, split_every)
    if spec.exact and not spec.stateful:
        return fold_pass(spec, blocks, shared, name, split_every)
    return run_on_cluster(spec, blocks, shared, states, name, split_every)


def _scheduler(args: Sequence[Any]) -> Any:
    """The scheduler ``dask.compute(*args)`` would use."""
    found = [a for a in flatten(args, container=(list, tuple)) if is_dask_collection(a)]
    return dask.base.get_scheduler(collections=found or None)


_LOCAL = (dask.threaded.get, dask.local.get_sync, dask.multiprocessing.get)


def _on_cluster(collections: Sequence[Any]) -> bool:
    """Whether the collections would run on a ``distributed`` cluster."""
    return _scheduler(collections) not in _LOCAL


def compute(*args: Any) -> tuple:
    """``dask.compute`` on the active scheduler, with BLAS pinned where needed."""
    with blas_pinned_for(_scheduler(args)):
        return dask.compute(*args)


def compute_all(tasks: Sequence[Delayed]) -> list:
    """Compute independent tasks; if one fails, raise only once every other
    has stopped.

    ``dask.compute`` raises at the first error while the other tasks still
    run; tasks that write files would then write after the caller cleaned
    up (a half-written output reappearing beside the complete one).
    """
    if _on_cluster(tasks):
        from distributed import default_client, wait

        futures = default_client().compute(list(tasks))
        wait(futures)  # all of them, failed or not
        return [f.result() for f in futures]
    if _scheduler(tasks) is not dask.threaded.get:
        return list(dask.compute(*tasks))
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(dask.config.get("num_workers", None) or None)
    try:
        return list(dask.compute(*tasks, pool=pool))
    finally:
        pool.shutdown(wait=True)  # the tasks already running finish first
