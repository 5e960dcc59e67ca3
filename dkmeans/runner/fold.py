"""Folding passes on a ``distributed`` cluster: a few tasks, each running a
pass's chunk calls over many blocks in a loop (as Spark's ``mapPartitions``).

An :attr:`~dkmeans.runner.Pass.exact`, stateless pass (a Lloyd step's sums,
a seeding round's draw, the farthest rows) gives the same totals in any
grouping and order, so its chunk results need not each be a task: the
scheduler then handles as many tasks as the workers have threads, not as
there are chunks. A worker's folds are combined on that worker, so one
partial per worker crosses the network.

- Persisted blocks: one task per worker thread over blocks that worker holds
  (loosely restricted to it, so a lost worker's share runs elsewhere). The
  first such pass over a dataset names each block (its key, where it is);
  it also leaves on each worker a note of the blocks each of its folds ran
  over (weak references to the arrays dask holds, by the plan's token), and
  later passes name only the plan and the fold: what a pass sends no longer
  grows with the number of blocks. A fold that finds a block gone from its
  worker's memory (moved, spilled, lost, or the fold run elsewhere) answers
  :class:`BlocksMoved`, and the pass runs again naming its blocks.
- Blocks read from their source: :data:`RUNS_PER_THREAD` runs of consecutive
  chunks per thread in the cluster, each task reading its chunks one at a
  time (the tasks that make only that chunk, fused, run inside the loop),
  placed by the scheduler.
"""

from __future__ import annotations

import contextlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from dask.base import tokenize
from dask.task_spec import DataNode, List, Task, TaskRef

from dkmeans.runner.base import Block, Pass, _blocks_graph, _reporter
from dkmeans.runner.cluster import (
    _across_workers,
    _by_worker,
    _fuse_into,
    _held,
    _holders,
    _result_holders,
    _run_on_cluster,
    _shared,
    block_futures,
)

#: Runs of chunks per worker thread when blocks are read from their source:
#: more than one, so a slow run does not hold the pass while threads idle.
RUNS_PER_THREAD = 4

#: threads of each worker seen, by address (a worker's threads do not change
#: while it lives; a new address is looked up)
_NTHREADS: dict[str, int] = {}

#: Plans of persisted datasets (this client's), most recent last; a few
#: datasets are in use at once (a fit's data, a sweep's, a scorer's)
_PLANS: OrderedDict[str, _Plan] = OrderedDict()
_MAX_PLANS = 16
#: After this many passes found a plan's blocks moved, its dataset's passes
#: name their blocks each time (the blocks keep moving, or cannot be noted)
MAX_MISSES = 2

#: On a worker: the (weak reference to rows, to weights or None, offset) of
#: each block a registered fold runs over, by (plan token, fold index)
_REGISTRY: dict[tuple[str, int], list[tuple]] = {}


class BlocksMoved(RuntimeError):
    """A registered fold's blocks are not in its worker's memory any more.

    Returned, not raised, by the fold, and passed on by the combines in
    place of a partial (:func:`_combine_noted`): an expected event, not a
    failed task for the worker's log.
    """


@dataclass
class _Plan:
    """Where a persisted dataset's folds run: (worker, block indices) each."""

    groups: list[tuple[str, list[int]]]
    #: names the notes of this placement on the workers: a fold of another
    #: placement of the same blocks never reads them
    key: str
    #: the future holding the first block's rows when the plan was made
    first: weakref.ref
    registered: bool = True
    misses: int = 0


def fold_pass(spec: Pass, blocks: Sequence[Block], shared: Sequence[Any], name: str,
              split_every: int) -> Any:
    """Run an exact, stateless pass over ``blocks`` on the default client's
    cluster as folding tasks; its combined intermediate."""
    from distributed import default_client

    client = default_client()
    if not (blocks and _held(blocks[0])):
        return _finish(client, spec, spec.combine,
                       _fold_streamed(client, spec, blocks, shared, name), None, name,
                       split_every)
    token = tokenize(client.id, [(b.x.key, None if b.w is None else b.w.key, b.offset)
                                 for b in blocks])
    first = _first_future(blocks[0])
    plan = _PLANS.get(token)
    if plan is not None and (first is None or plan.first() is not first):
        plan = None  # the same keys persisted anew: new arrays, maybe elsewhere
    if plan is not None and plan.registered:
        result = _finish(client, spec, partial(_combine_noted, spec.combine),
                         _fold_registered_tasks(client, spec, plan.key, plan.groups, shared,
                                                name),
                         [where for where, _ in plan.groups], name, split_every)
        if not isinstance(result, BlocksMoved):
            return result
        plan.registered, plan.misses = False, plan.misses + 1
        name = f"{name}-named"  # the first try's keys may still be in release
    holders, refs = _holders(client, blocks), block_futures(blocks)
    if not all(holders) or refs is None:  # still computing, lost, or not
        # a future's: a task per chunk
        return _run_on_cluster(spec, blocks, shared, [None] * len(blocks), name, split_every)
    groups = _thread_groups(client, [h[0] for h in holders])
    misses = 0 if plan is None else plan.misses
    register = tokenize(token, groups) if misses < MAX_MISSES else None
    outs = _fold_held(client, spec, blocks, refs, shared, name, groups, register)
    result = _finish(client, spec, spec.combine, outs, [where for where, _ in groups], name,
                     split_every)
    if register is not None:
        _PLANS[token] = _Plan(groups, register, weakref.ref(refs[0][0]), misses=misses)
        _PLANS.move_to_end(token)
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    return result


def _first_future(block: Block) -> Any:
    """The future holding a block's rows (None if none does)."""
    from distributed import futures_of

    return next((f for c in block.keep if c is not None for f in futures_of(c)
                 if f.key == block.x.key), None)


def _finish(client: Any, spec: Pass, combine: Callable, outs: list, placed: list[str] | None,
            name: str, split_every: int) -> Any:
    """The folds' partials (on the workers ``placed``, or where they ran)
    combined with ``combine``: each worker's on that worker, then across
    workers."""
    reporter = _reporter.get()
    if reporter is not None:
        from distributed import as_completed

        for n_done, _ in enumerate(as_completed(outs), 1):
            reporter(spec.name, n_done, len(outs))
    if placed is None:  # where each fold ran, known once they are done
        from distributed import wait

        wait(outs)
        placed = _result_holders(client, outs)
    # a worker's folds (one per thread) meet on that worker: one partial a
    # worker crosses the network
    outs = [outs[idx[0]] if len(idx) == 1 else
            client.submit(combine, [outs[i] for i in idx], key=f"{name}-worker-{j}",
                          workers=[where], allow_other_workers=True)
            for j, (where, idx) in enumerate(_by_worker(placed))]
    return _across_workers(client, combine, outs, name, split_every)


def _fold_held(client: Any, spec: Pass, blocks: Sequence[Block], refs: list[tuple],
               shared: Sequence[Any], name: str, groups: list[tuple[str, list[int]]],
               register: str | None) -> list:
    """One task per (worker, run of its blocks), on that worker; the blocks
    go in as the futures holding them (``refs``), not as graph nodes (see
    :func:`~dkmeans.runner.cluster._submit_persisted`). With a ``register``
    token, each fold also notes its blocks on its worker for later passes."""
    shared_args = [_shared(client, s, len(groups)) for s in shared]
    return [client.submit(_fold_blocks, spec.chunk, spec.combine,
                          [refs[i][0] for i in idx], [refs[i][1] for i in idx],
                          [blocks[i].offset for i in idx],
                          None if register is None else (register, j), *shared_args,
                          key=f"{name}-fold-{j}", workers=[where], allow_other_workers=True)
            for j, (where, idx) in enumerate(groups)]


def _fold_registered_tasks(client: Any, spec: Pass, plan_key: str,
                           groups: list[tuple[str, list[int]]], shared: Sequence[Any],
                           name: str) -> list:
    """One task per registered fold, on its worker, naming only the plan."""
    shared_args = [_shared(client, s, len(groups)) for s in shared]
    return [client.submit(_fold_registered, spec.chunk, spec.combine, (plan_key, j),
                          *shared_args,
                          key=f"{name}-fold-{j}", workers=[where], allow_other_workers=True)
            for j, (where, _) in enumerate(groups)]


def _fold_blocks(chunk: Callable, combine: Callable, xs: Sequence[Any], ws: Sequence[Any],
                 offsets: Sequence[int], register: tuple[str, int] | None,
                 *shared: Any) -> Any:
    """On a worker: the chunk calls over held blocks, folded; the blocks
    noted under ``register`` (weakly: dask's memory keeps them, or not)."""
    if register is not None:
        _note(register, xs, ws, offsets)
    return _fold(chunk, combine, zip(xs, ws, offsets, strict=True), shared)


def _note(register: tuple[str, int], xs: Sequence[Any], ws: Sequence[Any],
          offsets: Sequence[int]) -> None:
    for entry, refs in list(_REGISTRY.items()):  # forget datasets dask let go
        if refs and refs[0][0]() is None:
            _REGISTRY.pop(entry, None)
    with contextlib.suppress(TypeError):  # a type with no weak references: not noted
        _REGISTRY[register] = [(weakref.ref(x), None if w is None else weakref.ref(w), offset)
                               for x, w, offset in zip(xs, ws, offsets, strict=True)]


def _fold_registered(chunk: Callable, combine: Callable, register: tuple[str, int],
                     *shared: Any) -> Any:
    """On a worker: a registered fold's blocks, from this worker's memory
    (or :class:`BlocksMoved`, if they are not all there)."""
    noted = _REGISTRY.get(register)
    items = [] if noted is None else [(x(), None if w is None else w(), offset)
                                      for x, w, offset in noted]
    if noted is None or any(x is None or (ref[1] is not None and w is None)
                            for (x, w, _), ref in zip(items, noted, strict=True)):
        return BlocksMoved(f"fold {register[1]} of plan {register[0]}: its blocks are not "
                           "all in this worker's memory")
    return _fold(chunk, combine, items, shared)


def _combine_noted(combine: Callable, parts: Sequence[Any]) -> Any:
    """Registered folds' partials combined, or the first :class:`BlocksMoved`."""
    moved = [p for p in parts if isinstance(p, BlocksMoved)]
    return moved[0] if moved else combine(parts)


def _fold(chunk: Callable, combine: Callable, items: Iterable[tuple], shared: Sequence[Any]):
    """Each (rows, weights, offset)'s chunk call, folded into the running
    total as it comes (one block's temporaries at a time)."""
    total = None
    for x, w, offset in items:
        part = chunk(x, w, offset, *shared)
        total = part if total is None else combine([total, part])
    return total


def _thread_groups(client: Any, placed: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Each worker's chunks (:func:`~dkmeans.runner.cluster._by_worker`) cut
    into as many runs of consecutive chunks as it has threads."""
    if any(where not in _NTHREADS for where in placed):
        _NTHREADS.update(client.nthreads())
    groups = []
    for where, idx in _by_worker(placed):
        parts = min(_NTHREADS.get(where, 1), len(idx))
        groups += [(where, [int(i) for i in run]) for run in np.array_split(idx, parts)]
    return groups


def _fold_streamed(client: Any, spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
                   name: str) -> list:
    """Tasks over runs of consecutive blocks read from their source: each
    block's own tasks (read, decode, preprocess), fused, are handed to the
    fold as data and run one block at a time inside it; what several blocks
    share (a Zarr array's handle) stays a task the folds depend on."""
    threads = sum(client.nthreads().values()) or 1
    runs = np.array_split(np.arange(len(blocks)), min(len(blocks), RUNS_PER_THREAD * threads))
    shared_args = [_shared(client, s, len(runs)) for s in shared]
    loads = {(f"{name}-load", i): Task((f"{name}-load", i), _pair, TaskRef(b.x.key),
                                       None if b.w is None else TaskRef(b.w.key))
             for i, b in enumerate(blocks)}
    graph = _fuse_into(loads, _blocks_graph(blocks))
    fused = [graph.pop(key) for key in loads]
    keys = []
    for j, run in enumerate(runs):
        inner = [fused[i] for i in run]
        deps = sorted({d for t in inner for d in t.dependencies}, key=str)
        key = (f"{name}-fold", j)
        graph[key] = Task(key, _fold_loads, spec.chunk, spec.combine, DataNode(None, inner),
                          [blocks[i].offset for i in run], DataNode(None, deps),
                          List(*(TaskRef(d) for d in deps)), *shared_args)
        keys.append(key)
    return client.get(graph, keys, sync=False)


def _pair(x: Any, w: Any) -> tuple:
    return x, w


def _fold_loads(chunk: Callable, combine: Callable, loads: Sequence[Task],
                offsets: Sequence[int], dep_keys: Sequence[Any], dep_values: Sequence[Any],
                *shared: Any) -> Any:
    """On a worker: each block made by its fused tasks (given the values of
    the nodes they share), its chunk call, folded into the running total."""
    values = dict(zip(dep_keys, dep_values, strict=True))
    return _fold(chunk, combine, ((*load(values), offset)
                                  for load, offset in zip(loads, offsets, strict=True)), shared)
