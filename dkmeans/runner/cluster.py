"""Running a pass on a ``distributed`` cluster, over futures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import dask
import numpy as np
from dask.delayed import delayed
from dask.task_spec import Task, TaskRef

from dkmeans.runner.base import Block, Pass, blocks_graph, combine_results, progress_reporter

#: Arrays every chunk call of a cluster pass needs are embedded in each task
#: while each copy takes at most SHARED_COPY_BYTES and all together at most
#: SHARED_NODE_BYTES, else scattered once per pass. Embedded, they travel
#: once per task, twice (client to scheduler to worker: k=256 x d=64 float64
#: centers over 10,000 chunks would be 2.6 GB a pass); scattered, once per
#: worker, for one more round trip, which costs more than sending a small
#: array (a few rows of centers, the grid's quanta) with each task.
SHARED_NODE_BYTES = 1 << 20
SHARED_COPY_BYTES = 1 << 14


def shared_argument(client: Any, value: Any, n_tasks: int) -> Any:
    """An argument every block needs (centers, keys), as it goes in a cluster
    pass's graph: a large array is sent to the cluster once, and each worker
    fetches it once, instead of riding in every chunk's task."""
    if isinstance(value, np.ndarray) and (value.nbytes > SHARED_COPY_BYTES or
                                          value.nbytes * n_tasks > SHARED_NODE_BYTES):
        return client.scatter(value, hash=False)
    return value


def _chunk_call(chunk: Callable, stateful: bool, x: Any, w: Any, offset: int, pair: Any,
                *shared: Any) -> Any:
    """A chunk call in a cluster pass. A stateful pass's state is the
    previous pass's whole (state, result) pair, so no task splits the pairs."""
    if not stateful:
        return chunk(x, w, offset, *shared)
    return chunk(x, w, offset, None if pair is None else pair[0], *shared)


def _combine_chunks(combine: Callable, stateful: bool, results: Sequence[Any]) -> Any:
    return combine_results(combine, results) if stateful else combine(results)


def pair_state(pair: Any) -> Any:
    """The state held in a cluster pass's (state, result) pair."""
    return pair[0]


def run_on_cluster(spec: Pass, blocks: Sequence[Block], shared: Sequence[Any],
                    states: Sequence[Any], name: str, split_every: int):
    """A pass on a ``distributed`` cluster, over futures.

    One task per chunk (an :attr:`~Pass.exact`, stateless pass folds
    chunks instead: :mod:`dkmeans.runner.fold`), computed where its block
    lives (a persisted block's task is loosely restricted to its
    holders); the results stay there as futures (a stateful pass's (state,
    result) pairs are its next states). An exact pass then combines each
    worker's results on that worker (:func:`by_worker`), so one partial per
    worker crosses the network whatever the number of chunks; any other pass
    combines in a tree ordered by chunk index, so its floating-point sums do
    not depend on where chunks ran. The partials are combined on the workers
    down to two at most, and the last combine runs here.
    """
    from distributed import default_client

    client = default_client()
    shared_args = [shared_argument(client, s, len(blocks)) for s in shared]
    # a dataset's blocks are all held or all read from their source: one
    # look (each is a walk of the whole collection's graph, so a look per
    # block made a streamed pass quadratic in its chunks)
    placed = None  # the worker each chunk's result will be on, where known
    if blocks and is_held(blocks[0]):
        holders = block_holders(client, blocks)
        futures = _submit_persisted(client, spec, blocks, states, shared_args, name, holders)
        if all(holders):
            placed = [h[0] for h in holders]
    else:
        futures = _submit_streamed(client, spec, blocks, states, shared_args, name)
    return _reduce(client, spec, futures, placed, name, split_every)


def _reduce(client: Any, spec: Pass, futures: list, placed: list[str] | None, name: str,
            split_every: int):
    """The chunk results combined: each worker's on that worker for an exact
    pass, else in a tree in chunk order; then across workers, the last
    combine here."""
    from distributed import as_completed, wait

    reporter = progress_reporter.get()
    if reporter is not None:
        for n_done, _ in enumerate(as_completed(futures), 1):
            reporter(spec.name, n_done, len(futures))
    if spec.exact and placed is None:
        wait(futures)  # where each result is, known once it is computed
        placed = result_holders(client, futures)
    groups = by_worker(placed) if spec.exact else [
        (None, list(range(i, min(i + split_every, len(futures)))))
        for i in range(0, len(futures), split_every)]
    outs = [client.submit(_combine_chunks, spec.combine, spec.stateful,
                          [futures[i] for i in chunks], key=f"{name}-combine-{j}",
                          **({} if where is None else
                             {"workers": [where], "allow_other_workers": True}))
            for j, (where, chunks) in enumerate(groups)]
    total = across_workers(client, spec.combine, outs, name, split_every)
    return (futures, total) if spec.stateful else total


def across_workers(client: Any, combine: Callable, outs: list, name: str,
                    split_every: int) -> Any:
    """The workers' partials combined: on the workers, peer to peer, until
    at most two are left for the client (one more task, but the client's
    link, or the scheduler's when it relays, carries two partials whatever
    the workers), then here."""
    level = 0
    while len(outs) > 2:
        level += 1
        outs = [client.submit(combine, outs[i : i + split_every],
                              key=f"{name}-combine{level}-{i}")
                for i in range(0, len(outs), split_every)]
    return combine(client.gather(outs))


def _submit_persisted(client: Any, spec: Pass, blocks: Sequence[Block], states: Sequence[Any],
                      shared_args: Sequence[Any], name: str,
                      holders: list[list[str]]) -> list:
    """A chunk task per persisted block, where the block is (left free, the
    scheduler moved blocks between workers; restricted loosely, so a lost
    worker's blocks, recomputed elsewhere, are not waited for).

    The blocks go in as the futures that hold them, not as graph nodes: each
    block's node carries a graph layer of its own, and the scheduler culls
    every layer against all the keys, so a pass's graph handling grew with
    the square of its blocks. One submission per set of holders (a
    restriction applies to a whole submission).
    """
    refs = block_futures(blocks)
    if refs is None:  # not each block a future's: as graph nodes
        call = delayed(_chunk_call, pure=True)  # wrapped once: keys are given
        raw = []
        for i, (b, state) in enumerate(zip(blocks, states, strict=True)):
            with dask.annotate(**({"workers": holders[i], "allow_other_workers": True}
                                  if holders[i] else {})):
                raw.append(call(spec.chunk, spec.stateful, b.x, b.w, b.offset, state,
                                *shared_args, dask_key_name=(f"{name}-chunk", i)))
        return client.compute(raw)
    by_holders: dict[tuple, dict] = {}
    keys = []
    for i, (b, (x, w), state) in enumerate(zip(blocks, refs, states, strict=True)):
        key = (f"{name}-chunk", i)
        by_holders.setdefault(tuple(holders[i]), {})[key] = Task(
            key, _chunk_call, spec.chunk, spec.stateful, x, w, b.offset, state, *shared_args)
        keys.append(key)
    futures = {}
    for where, graph in by_holders.items():
        placed = {"workers": list(where), "allow_other_workers": True} if where else {}
        futures.update(zip(graph, client.get(graph, list(graph), sync=False, **placed),
                           strict=True))
    return [futures[key] for key in keys]


def block_futures(blocks: Sequence[Block]) -> list[tuple[Any, Any]] | None:
    """Each block's rows and weights as the futures holding them (found once
    in the collections the blocks keep), or None if some block is not a
    future's."""
    from distributed import futures_of

    collections = {id(c): c for b in blocks for c in b.keep if c is not None}
    held = {f.key: f for c in collections.values() for f in futures_of(c)}
    try:
        return [(held[b.x.key], None if b.w is None else held[b.w.key]) for b in blocks]
    except KeyError:
        return None


def _submit_streamed(client: Any, spec: Pass, blocks: Sequence[Block], states: Sequence[Any],
                     shared_args: Sequence[Any], name: str) -> list:
    """A chunk task per block read from its source, fused with the tasks
    that make only that block (read, decode, preprocess): one task per chunk
    through the scheduler, not one per step."""
    dsk = blocks_graph(blocks)
    chunks = {}
    for i, (b, state) in enumerate(zip(blocks, states, strict=True)):
        key = (f"{name}-chunk", i)
        chunks[key] = Task(key, _chunk_call, spec.chunk, spec.stateful, TaskRef(b.x.key),
                           None if b.w is None else TaskRef(b.w.key), b.offset, state,
                           *shared_args)
    graph = fuse_into(chunks, dsk)
    return client.get(graph, list(chunks), sync=False)


def fuse_into(tasks: dict, dsk: dict) -> dict:
    """``tasks`` each fused with the chain of ``dsk``'s tasks that only it
    depends on; nodes several depend on (a Zarr array's handle) stay apart."""
    users = Counter(dep for node in (*dsk.values(), *tasks.values())
                    for dep in node.dependencies)
    graph = dict(dsk)
    for key, task in tasks.items():
        chain, pending = [task], list(task.dependencies)
        while pending:
            dep = pending.pop()
            if users[dep] == 1 and dep in graph:
                node = graph.pop(dep)
                chain.append(node)
                pending.extend(node.dependencies)
        graph[key] = Task.fuse(*chain, key=key) if len(chain) > 1 else task
    return graph


def is_held(block: Block) -> bool:
    """Whether a block's rows are held by the cluster (persisted or scattered,
    perhaps still computing): its key is a future, or not in its own graph."""
    from distributed import futures_of

    graph = block.x.__dask_graph__()
    return block.x.key not in graph or bool(futures_of(block.x))


def block_holders(client: Any, blocks: Sequence[Block]) -> list[list[str]]:
    """The workers holding each block's rows (none for a block read from its
    source by its own tasks)."""
    # the scheduler's own call: Client.who_has takes futures, and would read
    # a bare tuple key as a list of keys
    who = client.sync(client.scheduler.who_has, keys=[b.x.key for b in blocks])
    return [sorted(who.get(b.x.key, ())) for b in blocks]


def result_holders(client: Any, futures: Sequence[Any]) -> list[str]:
    """The worker holding each finished result (the first in address order,
    when several do)."""
    holders = client.who_has(futures)
    return [min(holders[f.key]) for f in futures]


def by_worker(placed: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Chunk indices grouped by the worker their results are on, each group
    in chunk order, the groups in the order of their first chunk.

    A persisted block's result is placed where the block is, known before
    it runs: its worker's combine is submitted with the chunks, without
    waiting for them and asking where they went. (Should the scheduler run
    a chunk elsewhere, the combine fetches it: the result is the same, the
    pass's combine being exact.)
    """
    groups: dict[str, list[int]] = {}
    for i, where in enumerate(placed):
        groups.setdefault(where, []).append(i)
    return sorted(groups.items(), key=lambda item: item[1][0])
