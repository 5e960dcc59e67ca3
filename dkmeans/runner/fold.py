"""Folding passes on a ``distributed`` cluster: a few tasks, each running a
pass's chunk calls over many blocks in a loop (as Spark's ``mapPartitions``).

An :attr:`~dkmeans.runner.Pass.exact`, stateless pass (a Lloyd step's sums,
a seeding round's draw, the farthest rows) gives the same totals in any
grouping and order, so its chunk results need not each be a task: the
scheduler then handles as many tasks as the workers have threads, not as
there are chunks. A worker's folds are combined on that worker, so one
partial per worker crosses the network.

- Persisted blocks: one task per worker thread over blocks that worker holds
  (loosely restricted to it, so a lost worker's share runs elsewhere).
- Blocks read from their source: :data:`RUNS_PER_THREAD` runs of consecutive
  chunks per thread in the cluster, each task reading its chunks one at a
  time (the tasks that make only that chunk, fused, run inside the loop),
  placed by the scheduler the first time, then where they ran.

Only the first pass over a dataset names its blocks; the later ones name
what each fold noted on its worker (:mod:`dkmeans.runner.notes`).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from dask.base import tokenize
from dask.task_spec import DataNode, List, Task, TaskRef

from dkmeans.runner.base import Block, Pass, blocks_graph, progress_reporter
from dkmeans.runner.cluster import (
    across_workers,
    block_futures,
    block_holders,
    by_worker,
    fuse_into,
    is_held,
    result_holders,
    run_on_cluster,
    shared_argument,
)
from dkmeans.runner.notes import (
    MAX_MISSES,
    BlocksMoved,
    Plan,
    combine_noted,
    fold,
    note_blocks,
    note_run,
    noted_blocks,
    noted_run,
    owners_of,
    plan_for,
    remember,
)

#: Runs of chunks per worker thread when blocks are read from their source:
#: more than one, so a slow run does not hold the pass while threads idle.
RUNS_PER_THREAD = 4

#: threads of each worker seen, by address (a worker's threads do not change
#: while it lives; a new address is looked up)
_NTHREADS: dict[str, int] = {}


def fold_pass(spec: Pass, blocks: Sequence[Block], shared: Sequence[Any], name: str,
              split_every: int) -> Any:
    """Run an exact, stateless pass over ``blocks`` on the default client's
    cluster as folding tasks; its combined intermediate."""
    from distributed import default_client

    from dkmeans.runner.janitor import ensure_forgetting

    client = default_client()
    ensure_forgetting(client)
    held = bool(blocks) and is_held(blocks[0])
    # streamed, the runs follow the threads in the cluster
    threads = 0 if held else sum(client.nthreads().values()) or 1
    token = tokenize(client.id, threads, [(b.x.key, None if b.w is None else b.w.key,
                                           b.offset) for b in blocks])
    # the future holding the first block's rows: a plan made with another
    # (the same keys persisted anew) no longer holds
    firsts = block_futures(blocks[:1]) if held else None
    first = firsts[0][0] if firsts else None
    keep = blocks[0].keep if blocks else ()
    plan = plan_for(token, first, keep)
    if plan is not None and plan.registered:
        outs = (_noted_held if held else _noted_streamed)(client, spec, plan, shared, name)
        result = _finish(client, spec, partial(combine_noted, spec.combine), outs,
                         [where for where, _ in plan.groups], name, split_every)
        if not isinstance(result, BlocksMoved):
            return result
        plan.registered, plan.misses = False, plan.misses + 1
        name = f"{name}-named"  # the first try's keys may still be in release
    misses = 0 if plan is None else plan.misses
    if not held:
        return _named_streamed(client, spec, blocks, shared, name, split_every, threads,
                               token if misses < MAX_MISSES else None, misses)
    holders, refs = block_holders(client, blocks), block_futures(blocks)
    if not all(holders) or refs is None:  # still computing, lost, or not
        # a future's: a task per chunk
        return run_on_cluster(spec, blocks, shared, [None] * len(blocks), name, split_every)
    groups = _thread_groups(client, [h[0] for h in holders])
    owners = owners_of(keep)
    register = (tokenize(token, groups, uuid.uuid4().hex)
                if misses < MAX_MISSES and first is not None and owners else None)
    outs = _fold_held(client, spec, blocks, refs, shared, name, groups, register)
    result = _finish(client, spec, spec.combine, outs, [where for where, _ in groups], name,
                     split_every)
    if register is not None:
        remember(token, Plan(register, groups, owners, weakref.ref(first), misses=misses))
    return result


def _finish(client: Any, spec: Pass, combine: Callable, outs: list, placed: list[str] | None,
            name: str, split_every: int) -> Any:
    """The folds' partials (on the workers ``placed``, or where they ran)
    combined with ``combine``."""
    return _combine_folds(client, combine, outs, _await(client, spec, outs, placed), name,
                          split_every)


def _combine_folds(client: Any, combine: Callable, outs: list, placed: list[str], name: str,
                   split_every: int) -> Any:
    """Each worker's partials combined on that worker (one partial a worker
    crosses the network), then across workers."""
    outs = [outs[idx[0]] if len(idx) == 1 else
            client.submit(combine, [outs[i] for i in idx], key=f"{name}-worker-{j}",
                          workers=[where], allow_other_workers=True)
            for j, (where, idx) in enumerate(by_worker(placed))]
    return across_workers(client, combine, outs, name, split_every)


def _await(client: Any, spec: Pass, outs: list, placed: list[str] | None) -> list[str]:
    """Progress reported as the folds finish; where each fold's partial is
    (``placed``, if known before they run)."""
    reporter = progress_reporter.get()
    if reporter is not None:
        from distributed import as_completed

        for n_done, _ in enumerate(as_completed(outs), 1):
            reporter(spec.name, n_done, len(outs))
    if placed is None:  # where each fold ran, known once they are done
        from distributed import wait

        wait(outs)
        placed = result_holders(client, outs)
    return placed


def _fold_held(client: Any, spec: Pass, blocks: Sequence[Block], refs: list[tuple],
               shared: Sequence[Any], name: str, groups: list[tuple[str, list[int]]],
               register: str | None) -> list:
    """One task per (worker, run of its blocks), on that worker; the blocks
    go in as the futures holding them (``refs``), not as graph nodes (see
    :func:`~dkmeans.runner.cluster._submit_persisted`). With a ``register``
    token, each fold also notes its blocks on its worker for later passes."""
    shared_args = [shared_argument(client, s, len(groups)) for s in shared]
    return [client.submit(_fold_blocks, spec.chunk, spec.combine,
                          [refs[i][0] for i in idx], [refs[i][1] for i in idx],
                          [blocks[i].offset for i in idx],
                          None if register is None else (register, j), *shared_args,
                          key=f"{name}-fold-{j}", workers=[where], allow_other_workers=True)
            for j, (where, idx) in enumerate(groups)]


def _noted_held(client: Any, spec: Pass, plan: Plan, shared: Sequence[Any],
                name: str) -> list:
    """One task per noted fold of held blocks, on its worker, naming only
    the note."""
    shared_args = [shared_argument(client, s, len(plan.groups)) for s in shared]
    return [client.submit(_fold_noted_blocks, spec.chunk, spec.combine, (plan.key, j),
                          *shared_args,
                          key=f"{name}-fold-{j}", workers=[where], allow_other_workers=True)
            for j, (where, _) in enumerate(plan.groups)]


def _fold_blocks(chunk: Callable, combine: Callable, xs: Sequence[Any], ws: Sequence[Any],
                 offsets: Sequence[int], register: tuple[str, int] | None,
                 *shared: Any) -> Any:
    """On a worker: the chunk calls over held blocks, folded; the blocks
    noted under ``register`` (weakly: dask's memory keeps them, or not)."""
    if register is not None:
        note_blocks(register, xs, ws, offsets)
    return fold(chunk, combine, zip(xs, ws, offsets, strict=True), shared)


def _fold_noted_blocks(chunk: Callable, combine: Callable, register: tuple[str, int],
                       *shared: Any) -> Any:
    """On a worker: a noted fold's held blocks, from this worker's memory."""
    items = noted_blocks(register)
    return items if isinstance(items, BlocksMoved) else fold(chunk, combine, items, shared)


def _thread_groups(client: Any, placed: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Each worker's chunks (:func:`~dkmeans.runner.cluster._by_worker`) cut
    into as many runs of consecutive chunks as it has threads."""
    if any(where not in _NTHREADS for where in placed):
        _NTHREADS.update(client.nthreads())
    groups = []
    for where, idx in by_worker(placed):
        parts = min(_NTHREADS.get(where, 1), len(idx))
        groups += [(where, [int(i) for i in run]) for run in np.array_split(idx, parts)]
    return groups


def _named_streamed(client: Any, spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
                    name: str, split_every: int, threads: int, token: str | None,
                    misses: int) -> Any:
    """Tasks over runs of consecutive blocks read from their source: each
    block's own tasks (read, decode, preprocess), fused, are handed to the
    fold as data and run one block at a time inside it; what several blocks
    share (a Zarr array's handle) stays a task the folds depend on. With a
    ``token``, each run is noted where it ran, for the later passes."""
    runs = np.array_split(np.arange(len(blocks)), min(len(blocks), RUNS_PER_THREAD * threads))
    owners = owners_of(blocks[0].keep)
    register = None if token is None or not owners else \
        tokenize(token, len(runs), uuid.uuid4().hex)
    shared_args = [shared_argument(client, s, len(runs)) for s in shared]
    loads = {(f"{name}-load", i): Task((f"{name}-load", i), _pair, TaskRef(b.x.key),
                                       None if b.w is None else TaskRef(b.w.key))
             for i, b in enumerate(blocks)}
    graph = fuse_into(loads, blocks_graph(blocks))
    fused = [graph.pop(key) for key in loads]
    sources = dict(graph)  # what the runs share
    run_deps = [sorted({d for i in run for d in fused[i].dependencies}, key=str)
                for run in runs]
    if any(d not in sources for deps in run_deps for d in deps):
        register = None  # runs needing what this graph does not make (a future's)
    keys = []
    for j, (run, deps) in enumerate(zip(runs, run_deps, strict=True)):
        key = (f"{name}-fold", j)
        graph[key] = Task(key, _fold_loads, spec.chunk, spec.combine,
                          DataNode(None, [fused[i] for i in run]),
                          [blocks[i].offset for i in run], DataNode(None, deps),
                          List(*(TaskRef(d) for d in deps)),
                          DataNode(None, None if register is None else (register, j)),
                          *shared_args)
        keys.append(key)
    outs = client.get(graph, keys, sync=False)
    placed = _await(client, spec, outs, None)
    result = _combine_folds(client, spec.combine, outs, placed, name, split_every)
    if register is not None:
        remember(token, Plan(register, [(where, [int(i) for i in run])
                                        for where, run in zip(placed, runs, strict=True)],
                             owners, sources=sources, deps=run_deps, misses=misses))
    return result


def _noted_streamed(client: Any, spec: Pass, plan: Plan, shared: Sequence[Any],
                    name: str) -> list:
    """One task per noted run of blocks read from their source, where it ran
    before, given the nodes the runs share."""
    shared_args = [shared_argument(client, s, len(plan.groups)) for s in shared]
    sources = dict(zip(plan.sources, client.get(plan.sources, list(plan.sources),
                                                sync=False), strict=True)) \
        if plan.sources else {}
    return [client.submit(_fold_noted_run, spec.chunk, spec.combine, (plan.key, j),
                          [sources[d] for d in deps], *shared_args,
                          key=f"{name}-fold-{j}", workers=[where], allow_other_workers=True)
            for j, ((where, _), deps) in enumerate(zip(plan.groups, plan.deps, strict=True))]


def _pair(x: Any, w: Any) -> tuple:
    return x, w


def _fold_loads(chunk: Callable, combine: Callable, loads: Sequence[Task],
                offsets: Sequence[int], dep_keys: Sequence[Any], dep_values: Sequence[Any],
                register: tuple[str, int] | None, *shared: Any) -> Any:
    """On a worker: each block made by its fused tasks (given the values of
    the nodes they share), its chunk call, folded into the running total;
    the run noted under ``register``."""
    if register is not None:
        note_run(register, loads, offsets, dep_keys)
    values = dict(zip(dep_keys, dep_values, strict=True))
    return fold(chunk, combine, ((*load(values), offset)
                                 for load, offset in zip(loads, offsets, strict=True)), shared)


def _fold_noted_run(chunk: Callable, combine: Callable, register: tuple[str, int],
                    dep_values: Sequence[Any], *shared: Any) -> Any:
    """On a worker: a noted run of blocks read from their source."""
    noted = noted_run(register)
    if isinstance(noted, BlocksMoved):
        return noted
    loads, offsets, dep_keys = noted
    return _fold_loads(chunk, combine, loads, offsets, dep_keys, dep_values, None, *shared)
