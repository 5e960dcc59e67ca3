"""Running a pass: the graph of chunk calls and the reduction tree.

A :class:`Pass` names a chunk function and an associative combine; given the
data's blocks, :func:`run_pass` builds one task per block (where the block
lives), a tree of combine tasks with fan-in ``split_every``, and runs it on
the active Dask scheduler. Stateful passes also return per-block states,
persisted where they were computed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
from dask.base import is_dask_collection
from dask.core import flatten
from dask.delayed import Delayed, delayed
from dask.optimization import cull
from dask.task_spec import List, Task, TaskRef


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

    x: Delayed | np.ndarray
    w: Delayed | np.ndarray | None
    offset: int
    n: int
    keep: tuple = field(default=(), repr=False, compare=False)


#: Arrays every chunk call of a cluster pass needs are embedded in each task
#: up to this size, else scattered once per pass: embedded, they travel once
#: per chunk through the scheduler (k=256 x d=64 float64 centers over 10,000
#: chunks: 1.3 GB a pass), scattered, once per worker, for one more round trip.
SHARED_NODE_BYTES = 1 << 13


def _shared(client: Any, value: Any) -> Any:
    """An argument every block needs (centers, keys), as it goes in a cluster
    pass's graph: a large array is sent to the cluster once, and each worker
    fetches it once, instead of riding in every chunk's task."""
    if isinstance(value, np.ndarray) and value.nbytes > SHARED_NODE_BYTES:
        return client.scatter(value, hash=False)
    return value


@functools.cache
def _blas_libraries() -> tuple:
    """threadpoolctl's handles on the loaded BLAS libraries, found once:
    setting a thread count through them is a C call, where a fresh
    ``limit()`` inspects every loaded library each time (tens of
    microseconds, paid per pass by fits of small data)."""
    from threadpoolctl import ThreadpoolController

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


class _BlasPin:
    """A process-wide BLAS limit of one thread, held while passes run.

    threadpoolctl's limit is process-wide, and OpenBLAS takes a new thread
    count only from the thread that loaded it (a limit set or restored from
    another thread is ignored, or sticks). So only passes started from the
    main thread pin BLAS; the first to enter sets the limit and the last to
    leave restores it (nested passes, a pass inside a ``compute``). A fit
    running in another thread leaves BLAS as it found it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._original: list[int] = []

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            if self._users == 0:
                self._original = [lib.num_threads for lib in _blas_libraries()]
                for lib in _blas_libraries():
                    lib.set_num_threads(1)
            self._users += 1

    def __exit__(self, *exc: object) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            self._users -= 1
            if self._users == 0:
                for lib, n in zip(_blas_libraries(), self._original, strict=True):
                    lib.set_num_threads(n)


_BLAS_PIN = _BlasPin()


def _blas_pinned(get: Callable):
    """Pin BLAS to one thread while dask's own threads use every core.

    Two dask threads each running a multi-threaded GEMM oversubscribe the
    cores (measured: a pass 35% slower). Worker processes of
    ``distributed`` already start with one BLAS thread, so only the local
    threaded scheduler (``get``) needs this.
    """
    return _BLAS_PIN if get is dask.threaded.get else contextlib.nullcontext()


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
    if all(isinstance(b.x, np.ndarray) for b in blocks):
        return _run_in_memory(spec, blocks, shared, states, split_every)
    name = f"{spec.name}-{uuid.uuid4().hex}"
    get = _scheduler([b.x for b in blocks])
    if get in _LOCAL:
        return _run_local(get, spec, blocks, shared, states, name, split_every)
    return _run_on_cluster(spec, blocks, shared, states, name, split_every)


def _run_local(get: Callable, spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
               states: Sequence[Any], name: str, split_every: int):
    """A pass on a local scheduler: one plain task graph, one call, plain values.

    The graph is written directly (the blocks' own tasks, one task per chunk
    call, the reduction tree) rather than through ``dask.delayed``, whose
    per-call bookkeeping cost 5 ms per pass over 16 blocks, a seventh of a
    Lloyd iteration on D1 (now 1 ms). A stateful pass's first combines take
    the chunks' (state, result) pairs whole, and the pairs come back with the
    total.
    """
    dsk = _blocks_graph(blocks)
    chunk_keys = []
    for i, (b, state) in enumerate(zip(blocks, states, strict=True)):
        key = (f"{name}-chunk", i)
        args = (TaskRef(b.x.key), None if b.w is None else TaskRef(b.w.key), b.offset,
                *((state,) if spec.stateful else ()), *shared)
        dsk[key] = Task(key, spec.chunk, *args)
        chunk_keys.append(key)
    first = functools.partial(_combine_results, spec.combine) if spec.stateful else None
    total = _tree_tasks(dsk, chunk_keys, spec.combine, name, split_every, first)
    reporter = _reporter.get()
    with _blas_pinned(get), _count_chunks(reporter, spec.name, f"{name}-chunk",
                                          len(chunk_keys)):
        if not spec.stateful:
            return get(dsk, total)
        pairs, total = get(dsk, [chunk_keys, total])
    return [p[0] for p in pairs], total


def _run_in_memory(spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
                   states: Sequence[Any], split_every: int):
    """A pass over in-memory blocks, called here: the same chunk calls and
    the same reduction tree as the task graph (so the same bits), without
    a scheduler, whose cost per pass dominates a fit of small data."""
    reporter = _reporter.get()
    results = []
    with _BLAS_PIN:  # the same one-thread GEMM as under the threaded scheduler
        for i, (b, state) in enumerate(zip(blocks, states, strict=True)):
            results.append(spec.chunk(b.x, b.w, b.offset,
                                      *((state,) if spec.stateful else ()), *shared))
            if reporter is not None:
                reporter(spec.name, i + 1, len(blocks))
    outs = [r[1] for r in results] if spec.stateful else results
    first = spec.stateful  # a stateful pass combines at least once, as in the graph
    while len(outs) > 1 or first:
        outs = [spec.combine(outs[i : i + split_every]) for i in range(0, len(outs),
                                                                          split_every)]
        first = False
    return ([r[0] for r in results], outs[0]) if spec.stateful else outs[0]


def _blocks_graph(blocks: Sequence[Block]) -> dict:
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


def _tree_tasks(dsk: dict, keys: list, combine: Callable, name: str, split_every: int,
                first: Callable | None = None):
    """Add a tree of ``combine`` tasks over ``keys`` to ``dsk``; return its root.
    ``first``, if given, makes the first level (at least one, even over a
    single key)."""
    level, step = 0, first or combine
    while len(keys) > 1 or (level == 0 and first is not None):
        parents = []
        for i in range(0, len(keys), split_every):
            key = (f"{name}-combine-{level}", i // split_every)
            dsk[key] = Task(key, step, List(*(TaskRef(k) for k in keys[i : i + split_every])))
            parents.append(key)
        keys, step, level = parents, combine, level + 1
    return keys[0]


def _combine_results(combine: Callable, pairs: Sequence[tuple]) -> Any:
    """Combine the results of a stateful pass's (state, result) pairs."""
    return combine([p[1] for p in pairs])


def _chunk_call(chunk: Callable, stateful: bool, x: Any, w: Any, offset: int, pair: Any,
                *shared: Any) -> Any:
    """A chunk call in a cluster pass. A stateful pass's state is the
    previous pass's whole (state, result) pair, so no task splits the pairs."""
    if not stateful:
        return chunk(x, w, offset, *shared)
    return chunk(x, w, offset, None if pair is None else pair[0], *shared)


def _combine_chunks(combine: Callable, stateful: bool, results: Sequence[Any]) -> Any:
    return combine([r[1] for r in results] if stateful else results)


def pair_state(pair: Any) -> Any:
    """The state held in a cluster pass's (state, result) pair."""
    return pair[0]


def _run_on_cluster(spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
                    states: Sequence[Any], name: str, split_every: int):
    """A pass on a ``distributed`` cluster, over futures.

    One task per chunk, computed where its block lives (a persisted block's
    task is loosely restricted to its holders); the results stay there as
    futures (a stateful pass's (state, result) pairs are its next states). An
    :attr:`~Pass.exact` pass then combines each worker's results on that
    worker (:func:`_by_worker`), so one partial per worker crosses the
    network whatever the number of chunks; any other pass combines in a tree
    ordered by chunk index, so its floating-point sums do not depend on
    where chunks ran. The partials are combined on the workers down to two
    at most, and the last combine runs here.
    """
    from distributed import as_completed, default_client

    client = default_client()
    shared_args = [_shared(client, s) for s in shared]
    # wrapped once: wrapping tokenizes the function, and keys are given
    call = delayed(_chunk_call, pure=True)
    holders = _holders(client, blocks)
    raw = []
    for i, (b, state) in enumerate(zip(blocks, states, strict=True)):
        # a persisted block's chunk runs where the block is (left free, the
        # scheduler moved blocks between workers); loosely, so a lost worker's
        # blocks, recomputed elsewhere, are not waited for
        with dask.annotate(**({"workers": holders[i], "allow_other_workers": True}
                              if holders[i] else {})):
            raw.append(call(spec.chunk, spec.stateful, b.x, b.w, b.offset, state,
                            *shared_args, dask_key_name=(f"{name}-chunk", i)))
    futures = client.compute(raw)
    reporter = _reporter.get()
    done = as_completed(futures)
    for n_done, _ in enumerate(done, 1):
        if reporter is not None:
            reporter(spec.name, n_done, len(futures))
    groups = _by_worker(client, futures) if spec.exact else [
        (None, list(range(i, min(i + split_every, len(futures)))))
        for i in range(0, len(futures), split_every)]
    outs = [client.submit(_combine_chunks, spec.combine, spec.stateful,
                          [futures[i] for i in chunks], key=f"{name}-combine-{j}",
                          **({} if where is None else
                             {"workers": [where], "allow_other_workers": True}))
            for j, (where, chunks) in enumerate(groups)]
    level = 0
    # the partials meet on the workers, peer to peer, until at most two are
    # left for the client (one more task, but the client's link, or the
    # scheduler's when it relays, carries two partials whatever the workers)
    while len(outs) > 2:
        level += 1
        outs = [client.submit(spec.combine, outs[i : i + split_every],
                              key=f"{name}-combine{level}-{i}")
                for i in range(0, len(outs), split_every)]
    total = spec.combine(client.gather(outs))
    return (futures, total) if spec.stateful else total


def _holders(client: Any, blocks: Sequence[Block]) -> list[list[str]]:
    """The workers holding each block's rows (none for a block read from its
    source by its own tasks)."""
    # the scheduler's own call: Client.who_has takes futures, and would read
    # a bare tuple key as a list of keys
    who = client.sync(client.scheduler.who_has, keys=[b.x.key for b in blocks])
    return [sorted(who.get(b.x.key, ())) for b in blocks]


def _by_worker(client: Any, futures: Sequence[Any]) -> list[tuple[str, list[int]]]:
    """The finished chunk results grouped by the worker holding them (the
    first in address order, when several do), each group in chunk order, the
    groups in the order of their first chunk."""
    holders = client.who_has(futures)
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(futures):
        groups.setdefault(min(holders[f.key]), []).append(i)
    return sorted(groups.items(), key=lambda item: item[1][0])


# --------------------------------------------------------------------------
# Progress reports


_reporter: contextvars.ContextVar[Callable[[str, int, int], None] | None] = \
    contextvars.ContextVar("dkmeans_progress", default=None)


@contextlib.contextmanager
def report_progress(callback: Callable[[str, int, int], None]):
    """Call ``callback(pass_name, blocks_done, blocks)`` as each block of every
    pass run in this context finishes (the command line's progress bar)."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)


@contextlib.contextmanager
def _count_chunks(reporter, pass_name: str, prefix: str, n: int):
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
    with _blas_pinned(_scheduler(args)):
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
