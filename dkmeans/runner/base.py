"""What every pass runner shares: the :class:`Pass` and :class:`Block` types,
the blocks' own graph, and progress reports."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dask.delayed import Delayed
from dask.optimization import cull


@dataclass(frozen=True)
class Pass:
    """A named chunk / combine pair; the aggregate is applied by the caller."""

    name: str
    chunk: Callable[..., Any]
    combine: Callable[[Sequence[Any]], Any]
    stateful: bool = False
    #: ``combine`` gives the same result in any grouping and order (integer
    #: sums, exact partials, maxima, ranked merges): on a cluster the pass
    #: then combines each worker's chunks on that worker first.
    exact: bool = False


@dataclass(frozen=True)
class Block:
    """One block of rows as graph nodes (or in-memory arrays, run without a
    graph): data, weights (or None), first row.

    ``keep`` holds the collections the nodes come from: for persisted data on
    a cluster they own the futures, which must live as long as the blocks.
    """

    x: Delayed | np.ndarray | Any  # Any: an in-memory scipy.sparse block
    w: Delayed | np.ndarray | None
    offset: int
    n: int
    keep: tuple = field(default=(), repr=False, compare=False)


def blocks_graph(blocks: Sequence[Block]) -> dict:
    """The tasks that make the blocks' rows and weights, as one plain graph."""
    graphs, keys = {}, []
    for b in blocks:
        for node in (b.x, b.w):
            if node is not None:
                graph = node.__dask_graph__()
                graphs.setdefault(id(graph), graph)
                keys.append(node.key)
    merged: dict = {}
    for graph in graphs.values():
        merged.update(graph)
    return cull(merged, keys)[0]


# --------------------------------------------------------------------------
# Progress reports


progress_reporter: contextvars.ContextVar[Callable[[str, int, int], None] | None] = \
    contextvars.ContextVar("dkmeans_progress", default=None)


@contextlib.contextmanager
def report_progress(callback: Callable[[str, int, int], None]):
    """Call ``callback(pass_name, blocks_done, blocks)`` as each block of every
    pass run in this context finishes (the command line's progress bar)."""
    token = progress_reporter.set(callback)
    try:
        yield
    finally:
        progress_reporter.reset(token)


@contextlib.contextmanager
def count_chunks(reporter, pass_name: str, prefix: str, n: int):
    """Count finished chunk tasks on a local scheduler, through dask's callbacks."""
    if reporter is None:
        yield
        return
    from dask.callbacks import Callback

    done = [0]

    def posttask(key, result, dsk, state, worker_id):
        if isinstance(key, tuple) and key[0] == prefix:
            done[0] += 1
            reporter(pass_name, done[0], n)

    with Callback(posttask=posttask):
        yield


def combine_results(combine: Callable, pairs: Sequence[tuple]) -> Any:
    """Combine the results of a stateful pass's (state, result) pairs."""
    return combine([p[1] for p in pairs])
