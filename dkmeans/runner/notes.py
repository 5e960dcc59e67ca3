"""What a folding pass leaves on each worker for the next passes over the
same data, and this client's plans of where those notes are.

The first folding pass over a dataset names each of its blocks: a held
block by its key (and the scheduler adds where it is), a block read from
its source by its own read tasks. Each fold also notes on its worker what
it ran over, under a token of the dataset and its placement: weak
references to the held arrays dask keeps in memory, or a run's read tasks.
Later passes send each worker the token and the fold's number only, so
what an iteration sends does not grow with the blocks.

A fold that cannot find its note, or a held block in it (moved to another
worker, spilled, lost with its worker, or the fold itself run elsewhere),
answers :class:`BlocksMoved` instead of a partial; the combines pass it on
(:func:`combine_noted`), and the client runs the pass again, naming its
blocks. The totals are the same either way: folding passes combine exactly.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: After this many passes found a plan's notes missing, its dataset's
#: passes name their blocks each time (they keep moving, or cannot be noted)
MAX_MISSES = 2

#: Plans kept (a few datasets are in use at once: a fit's, a sweep's, a
#: scorer's), the most recently made last
_MAX_PLANS = 16

#: Runs of streamed chunks noted on a worker, the oldest forgotten first
_MAX_RUNS = 1024


class BlocksMoved(RuntimeError):
    """A noted fold's blocks are not in its worker's memory any more, or its
    note is gone.

    Returned, not raised, by the fold, and passed on by the combines in
    place of a partial: an expected event, not a failed task for the
    worker's log.
    """


@dataclass
class Plan:
    """Where a dataset's folds run, and under which token their notes are."""

    #: the token the folds' notes are under, on their workers: unique to the
    #: plan, so two datasets with the same keys never share notes
    key: str
    #: each fold's (worker, block indices)
    groups: list[tuple[str, list[int]]]
    #: the collections the blocks came from: the plan holds for those very
    #: objects only (two arrays may share a name and differ in content)
    owners: tuple[weakref.ref, ...] = ()
    #: held blocks: the future holding the first block's rows when noted (the
    #: same keys persisted anew are new arrays, perhaps elsewhere)
    first: weakref.ref | None = None
    #: blocks read from their source: the graph of the nodes the runs share
    #: (a Zarr array's handle), and each run's keys of them
    sources: dict | None = None
    deps: list[list] | None = None
    registered: bool = True
    misses: int = 0


#: Plans by the token of their blocks' keys; a plan is dropped with the
#: collections it was made for (its graph may hold storage credentials)
_PLANS: OrderedDict[str, Plan] = OrderedDict()
_PLANS_LOCK = threading.Lock()  # fits may run passes from several threads


def owners_of(keep: Sequence[Any]) -> tuple[weakref.ref, ...]:
    """Weak references to the collections a block keeps (its dataset's)."""
    refs = []
    for c in keep:
        if c is not None:
            try:
                refs.append(weakref.ref(c))
            except TypeError:  # not weakly referable: nothing can be planned for it
                return ()
    return tuple(refs)


def plan_for(token: str, first: Any, keep: Sequence[Any]) -> Plan | None:
    """The plan of the dataset ``token`` names, if it still holds: made for
    these very collections ``keep`` (and, for held blocks, the first block's
    rows still in the future ``first``)."""
    plan = _PLANS.get(token)
    if plan is None:
        return None
    live = [c for c in keep if c is not None]
    if len(live) != len(plan.owners) or any(ref() is not c
                                            for ref, c in zip(plan.owners, live, strict=True)):
        return None
    if plan.first is not None and plan.first() is not first:
        return None
    return plan


def remember(token: str, plan: Plan) -> None:
    """Keep ``plan`` while its collections live (none: it is not kept)."""
    if not plan.owners:
        return
    owners = [ref() for ref in plan.owners]
    if any(o is None for o in owners):
        return
    with _PLANS_LOCK:
        for owner in owners:  # dropped as soon as a collection is
            weakref.finalize(owner, _forget, token, plan.key)
        _PLANS[token] = plan
        _PLANS.move_to_end(token)
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)


def _forget(token: str, key: str) -> None:
    with _PLANS_LOCK:
        plan = _PLANS.get(token)
        if plan is not None and plan.key == key:
            del _PLANS[token]


def forget_plans() -> None:
    """Drop every plan of this process (a job's client is closing)."""
    with _PLANS_LOCK:
        _PLANS.clear()


def combine_noted(combine: Callable, parts: Sequence[Any]) -> Any:
    """Noted folds' partials combined, or the first :class:`BlocksMoved`."""
    moved = [p for p in parts if isinstance(p, BlocksMoved)]
    return moved[0] if moved else combine(parts)


def fold(chunk: Callable, combine: Callable, items: Iterable[tuple], shared: Sequence[Any]):
    """Each (rows, weights, offset)'s chunk call, folded into the running
    total as it comes (one block's temporaries at a time)."""
    total = None
    for x, w, offset in items:
        part = chunk(x, w, offset, *shared)
        total = part if total is None else combine([total, part])
    return total


# --------------------------------------------------------------------------
# On a worker


#: held blocks: (weak reference to rows, to weights or None, offset) of each
#: block a fold ran over, by (plan token, fold)
_HELD: dict[tuple[str, int], list[tuple]] = {}
#: blocks read from their source: a run's (read tasks, offsets, keys of the
#: shared nodes), by (plan token, fold)
_RUNS: OrderedDict[tuple[str, int], tuple] = OrderedDict()
_RUNS_LOCK = threading.Lock()


def note_blocks(register: tuple[str, int], xs: Sequence[Any], ws: Sequence[Any],
                offsets: Sequence[int]) -> None:
    """Note held blocks weakly: dask's memory keeps them, or not."""
    for entry, refs in list(_HELD.items()):  # forget datasets dask let go
        if refs and refs[0][0]() is None:
            _HELD.pop(entry, None)
    with contextlib.suppress(TypeError):  # a type with no weak references: not noted
        _HELD[register] = [(weakref.ref(x), None if w is None else weakref.ref(w), offset)
                           for x, w, offset in zip(xs, ws, offsets, strict=True)]


def noted_blocks(register: tuple[str, int]) -> list[tuple] | BlocksMoved:
    """The (rows, weights, offset) of a noted fold's blocks, or
    :class:`BlocksMoved` if they are not all in this worker's memory."""
    noted = _HELD.get(register)
    items = [] if noted is None else [(x(), None if w is None else w(), offset)
                                      for x, w, offset in noted]
    if noted is None or any(x is None or (ref[1] is not None and w is None)
                            for (x, w, _), ref in zip(items, noted, strict=True)):
        return BlocksMoved(f"fold {register[1]} of plan {register[0]}: its blocks are not "
                           "all in this worker's memory")
    return items


def note_run(register: tuple[str, int], loads: Sequence[Any], offsets: Sequence[int],
             dep_keys: Sequence[Any]) -> None:
    with _RUNS_LOCK:  # a worker's threads each run a fold
        _RUNS[register] = (loads, offsets, dep_keys)
        _RUNS.move_to_end(register)
        while len(_RUNS) > _MAX_RUNS:
            _RUNS.popitem(last=False)


def noted_run(register: tuple[str, int]) -> tuple | BlocksMoved:
    """A noted run's (read tasks, offsets, keys of the shared nodes), or
    :class:`BlocksMoved` if this worker has no such note."""
    noted = _RUNS.get(register)
    if noted is None:
        return BlocksMoved(f"run {register[1]} of plan {register[0]}: not noted on this "
                           "worker")
    return noted


# --------------------------------------------------------------------------
# Forgetting: a job's notes and filesystems do not outlive its client


def forget_worker_state() -> int:
    """On a worker or the scheduler: drop every note and every cached fsspec
    filesystem, whose storage options may hold credentials. Notes are a
    cache: a later pass that misses them names its blocks again. Returns
    how many notes were dropped."""
    from fsspec.spec import AbstractFileSystem

    with _RUNS_LOCK:
        n = len(_RUNS) + len(_HELD)
        _RUNS.clear()
        _HELD.clear()
    pending = [AbstractFileSystem]
    while pending:  # each filesystem class keeps its own instance cache
        cls = pending.pop()
        pending += cls.__subclasses__()
        cache = cls.__dict__.get("_cache")
        if isinstance(cache, dict):
            cache.clear()
    import gc

    # distributed keeps each connection's last messages for debugging
    # ("distributed.admin.low-level-log-length"): the tasks sent to workers
    # among them, with the filesystems inside
    from distributed.batched import BatchedSend

    for obj in gc.get_objects():
        if isinstance(obj, BatchedSend):
            obj.recent_message_log.clear()
    gc.collect()  # a filesystem refers to itself (its sync wrappers): a cycle
    return n
