"""Running a pass on a local scheduler (one plain task graph) or, for
in-memory blocks, in this thread; and the BLAS pin both use."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import dask
from dask.task_spec import List, Task, TaskRef

from dkmeans.runner.base import (
    Block,
    Pass,
    blocks_graph,
    combine_results,
    count_chunks,
    progress_reporter,
)


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


def blas_pinned(pin: bool = True):
    """The one-thread BLAS pin as a context (a no-op unless ``pin``): held
    around a whole fit of in-memory data, each pass only counts itself in."""
    return _BLAS_PIN if pin else contextlib.nullcontext()


def blas_pinned_for(get: Callable):
    """Pin BLAS to one thread while dask's own threads use every core.

    Two dask threads each running a multi-threaded GEMM oversubscribe the
    cores (measured: a pass 35% slower). Worker processes of
    ``distributed`` already start with one BLAS thread, so only the local
    threaded scheduler (``get``) needs this.
    """
    return _BLAS_PIN if get is dask.threaded.get else contextlib.nullcontext()


def run_local(get: Callable, spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
               states: Sequence[Any], name: str, split_every: int):
    """A pass on a local scheduler: one plain task graph, one call, plain values.

    The graph is written directly (the blocks' own tasks, one task per chunk
    call, the reduction tree) rather than through ``dask.delayed``, whose
    per-call bookkeeping cost 5 ms per pass over 16 blocks, a seventh of a
    Lloyd iteration on D1 (now 1 ms). A stateful pass's first combines take
    the chunks' (state, result) pairs whole, and the pairs come back with the
    total.
    """
    dsk = blocks_graph(blocks)
    chunk_keys = []
    for i, (b, state) in enumerate(zip(blocks, states, strict=True)):
        key = (f"{name}-chunk", i)
        args = (TaskRef(b.x.key), None if b.w is None else TaskRef(b.w.key), b.offset,
                *((state,) if spec.stateful else ()), *shared)
        dsk[key] = Task(key, spec.chunk, *args)
        chunk_keys.append(key)
    first = functools.partial(combine_results, spec.combine) if spec.stateful else None
    total = _tree_tasks(dsk, chunk_keys, spec.combine, name, split_every, first)
    reporter = progress_reporter.get()
    with blas_pinned_for(get), count_chunks(reporter, spec.name, f"{name}-chunk",
                                          len(chunk_keys)):
        if not spec.stateful:
            return get(dsk, total)
        pairs, total = get(dsk, [chunk_keys, total])
    return [p[0] for p in pairs], total


def run_in_memory(spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
                   states: Sequence[Any], split_every: int):
    """A pass over in-memory blocks, called here: the same chunk calls and
    the same reduction tree as the task graph (so the same bits), without
    a scheduler, whose cost per pass dominates a fit of small data."""
    reporter = progress_reporter.get()
    results = []
    # the same one-thread GEMM as under the threaded scheduler: even on small
    # blocks OpenBLAS starts threads, which then wait on busy cores (fits
    # should hold the pin for all their passes: setting it is not free)
    with _BLAS_PIN:
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
