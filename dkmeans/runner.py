"""Running a pass: the graph of chunk calls and the reduction tree.

A :class:`Pass` names a chunk function and an associative combine; given the
data's blocks, :func:`run_pass` builds one task per block (where the block
lives), a tree of combine tasks with fan-in ``split_every``, and runs it on
the active Dask scheduler. Stateful passes also return per-block states,
persisted where they were computed.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
from dask.base import is_dask_collection, tokenize
from dask.core import flatten
from dask.delayed import Delayed, delayed


@dataclass(frozen=True)
class Pass:
    """A named chunk / combine pair; the aggregate is applied by the caller."""

    name: str
    chunk: Callable[..., Any]
    combine: Callable[[Sequence[Any]], Any]
    stateful: bool = False


@dataclass(frozen=True)
class Block:
    """One block of rows as graph nodes: data, weights (or None), first row."""

    x: Delayed
    w: Delayed | None
    offset: int
    n: int


def _tree_reduce(parts: list, combine: Callable, name: str, split_every: int):
    level = 0
    combine = delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [
            combine(
                parts[i : i + split_every],
                dask_key_name=(f"{name}-combine-{level}", i // split_every),
            )
            for i in range(0, len(parts), split_every)
        ]
        level += 1
    return parts[0]


def _shared(value: Any) -> Any:
    """One graph key for an argument every block needs (centers, keys)."""
    if isinstance(value, np.ndarray) and value.size > 16:
        return delayed(value, pure=True)
    return value


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def _single_threaded_blas(collections: Sequence[Any]):
    """Pin BLAS to one thread while dask's own threads use every core.

    Two dask threads each running a multi-threaded GEMM oversubscribe the
    cores (measured: a pass 35% slower). Worker processes of
    ``distributed`` already start with one BLAS thread, so only the local
    threaded scheduler needs this.
    """
    if _scheduler(collections) is not dask.threaded.get:
        yield
        return
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


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
        intermediate. On a ``distributed`` cluster the states are persisted
        graph nodes, still on the workers; on a local scheduler, plain values.
    """
    shared_nodes = [_shared(s) for s in shared]
    # States are graph nodes on a cluster but plain arrays on a local
    # scheduler, where hashing them each pass would cost more than the pass.
    state_ids = None if states is None else [getattr(st, "key", None) or uuid.uuid4().hex
                                            for st in states]
    token = tokenize(spec.name, [b.x.key for b in blocks], shared, state_ids)
    name = f"{spec.name}-{token}"
    if states is None:
        states = [None] * len(blocks)
    outs, new_states = [], []
    # wrapped once: wrapping tokenizes the function, and keys are given
    chunk = delayed(spec.chunk, pure=True, nout=2 if spec.stateful else None)
    for i, (b, state) in enumerate(zip(blocks, states, strict=True)):
        args = (b.x, b.w, b.offset, *((state,) if spec.stateful else ()), *shared_nodes)
        out = chunk(*args, dask_key_name=(f"{name}-chunk", i))
        if spec.stateful:
            st, out = out
            new_states.append(st)
        outs.append(out)
    total = _tree_reduce(outs, spec.combine, name, split_every)
    if not spec.stateful:
        return compute(total)[0]
    if not _on_cluster([total]):
        # everything already lives in this process: one call, plain values
        new_states, total = compute(new_states, total)
        return list(new_states), total
    # on a cluster the states stay on the workers that computed them
    *new_states, total = dask.persist(*new_states, total)
    return new_states, compute(total)[0]


def _scheduler(args: Sequence[Any]) -> Any:
    """The scheduler ``dask.compute(*args)`` would use."""
    found = [a for a in flatten(args, container=(list, tuple)) if is_dask_collection(a)]
    return dask.base.get_scheduler(collections=found or None)


def _on_cluster(collections: Sequence[Any]) -> bool:
    """Whether the collections would run on a ``distributed`` cluster."""
    return _scheduler(collections) not in (dask.threaded.get, dask.local.get_sync,
                                           dask.multiprocessing.get)


def compute(*args: Any) -> tuple:
    """``dask.compute`` on the active scheduler, with BLAS pinned where needed."""
    with _single_threaded_blas(args):
        return dask.compute(*args)
