"""Mini-batch k-means (Sculley 2010) over chunked data, in bounded memory.

A fit is one scan pass (validation, column moments, and a weighted sample of
``init_size`` rows to seed from), then epochs: each epoch visits the blocks
in a random order, in groups of a few blocks; the rows of a group are
shuffled together and cut into batches, and each batch moves every center
it touches towards the batch's rows with a per-center learning rate of
(batch weight of the center) / (all weight it has seen), as
:class:`sklearn.cluster.MiniBatchKMeans` does.

The batch steps are sequential, so a group's steps run in one task that
receives the centers from the previous group's task: the blocks are read
and decompressed in parallel on every worker while the (cheap) steps run,
and only k x d numbers move from task to task. A window of groups is
submitted at a time, so early stopping wastes at most one window of reading,
and at most a window of blocks is in memory at once.

On CSR blocks a group's steps hold the centers as
:class:`~dkmeans.kernels.CsrSteps` (a scale times a column each), so a step
costs its batch's non-zeros, not k x d.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from dask.delayed import delayed

from dkmeans import kernels
from dkmeans.data.batches import epoch_groups, group_batches
from dkmeans.runner import Block, compute

#: Groups submitted at once. More overlaps reading with the steps better;
#: fewer bounds the reading wasted after early stopping, and the memory.
WINDOW_GROUPS = 4

@dataclass(frozen=True)
class MiniBatchState:
    """Everything a mini-batch run carries from one batch to the next.

    Attributes
    ----------
    centers : ndarray of shape (k, d)
    counts : ndarray of shape (k,), float64
        Weight each center has absorbed (its learning rate is 1 / count).
    n_steps : int
        Batches processed.
    n_since_reassign : int
        Rows processed since the last check for starved centers.
    ewa_inertia, ewa_inertia_min : float
        Smoothed mean batch inertia and its lowest value (NaN before set).
    no_improvement : int
        Consecutive batches without a new lowest smoothed inertia.
    converged : bool
        Early stopping triggered: later steps leave the state unchanged.
    stopped_by : str
        Why it stopped early ("small centers change" or "lack of improvement
        in inertia"), or "".
    n_reassigned : int
        Centers moved onto random rows because they starved.
    """

    centers: np.ndarray
    counts: np.ndarray
    n_steps: int = 0
    n_since_reassign: int = 0
    ewa_inertia: float = math.nan
    ewa_inertia_min: float = math.nan
    no_improvement: int = 0
    converged: bool = False
    n_reassigned: int = 0
    stopped_by: str = ""

    @classmethod
    def start(cls, centers: np.ndarray) -> MiniBatchState:
        return cls(centers, np.zeros(centers.shape[0]))


@dataclass(frozen=True)
class StepRules:
    """The settings of the update and of early stopping.

    Attributes
    ----------
    reassignment_ratio : float
        Centers whose count is below this share of the largest count are
        moved onto random rows of the batch (every ``10 k`` rows).
    tol : float
        Absolute tolerance on the squared center shift of one batch (0: off).
    max_no_improvement : int or None
        Stop after this many batches without a lower smoothed inertia.
    batch_size : int
        With ``n_samples``, sets the smoothing factor ``2 batch_size /
        (n_samples + 1)`` of the batch inertia (as scikit-learn does). The
        batch inertia itself is divided by the batch's total weight, not by
        ``batch_size`` (:func:`check_convergence`).
    n_samples : int
    seed : int
        Keys the random reassignments, by step.
    """

    reassignment_ratio: float = 0.01
    tol: float = 0.0
    max_no_improvement: int | None = 10
    batch_size: int = 1024
    n_samples: int = 1
    seed: int = 0


def _reassign_due(state: MiniBatchState, k: int, n_rows: int) -> tuple[bool, int]:
    """Whether this step checks for starved centers (scikit-learn's schedule:
    every 10 k rows, and whenever a center has seen nothing)."""
    since = state.n_since_reassign + n_rows
    if (state.counts == 0).any() or since >= 10 * k:
        return True, 0
    return False, since


def update_centers(state: MiniBatchState, x: np.ndarray, w: np.ndarray | None,
                   rules: StepRules, reassign: bool = True,
                   ) -> tuple[MiniBatchState, float]:
    """One mini-batch step: assign ``x`` to the current centers and move them.

    Parameters
    ----------
    state : MiniBatchState
    x : ndarray of shape (b, d), the centers' dtype
    w : ndarray of shape (b,) or None
    rules : StepRules
    reassign : bool
        Whether starved centers may be moved (scikit-learn's
        ``reassignment_ratio`` mechanism).

    Returns
    -------
    state : MiniBatchState
        New centers and counts (convergence bookkeeping unchanged).
    inertia : float
        Weighted inertia of the batch under the centers it was assigned to.
    """
    centers = state.centers
    k = centers.shape[0]
    sums, wsums, inertia = kernels.lloyd_partials(x, np.empty(0) if w is None else w, centers)
    due, since = _reassign_due(state, k, x.shape[0])
    counts = state.counts + wsums
    touched = wsums > 0
    new = centers.astype(np.float64, copy=True)
    # each touched center: (old x old count + batch sum) / new count
    new[touched] = ((new[touched] * state.counts[touched, None] + sums[touched])
                    / counts[touched, None])
    n_moved = 0
    if reassign and due and rules.reassignment_ratio > 0:
        new, counts, n_moved = _reassign_starved(new, counts, x, rules, state.n_steps)
    state = replace(state, centers=new.astype(centers.dtype), counts=counts,
                    n_steps=state.n_steps + 1, n_since_reassign=since,
                    n_reassigned=state.n_reassigned + n_moved)
    return state, float(inertia)


def _reassign_starved(centers: np.ndarray, counts: np.ndarray, x: np.ndarray,
                      rules: StepRules, step: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Move centers whose count fell below ``reassignment_ratio x max count``
    onto rows of the batch (:func:`_starved`)."""
    which, pos, counts = _starved(counts, x.shape[0], rules, step)
    if len(which):
        centers[which] = kernels.rows(x, pos)
    return centers, counts, len(which)


def _starved(counts: np.ndarray, n_rows: int, rules: StepRules,
             step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centers whose count fell below ``reassignment_ratio x max count``,
    the batch rows (drawn uniformly) they move onto, and the counts after:
    theirs restart at the smallest remaining count, so they are not moved
    again at once."""
    starved = counts < rules.reassignment_ratio * counts.max()
    limit = int(0.5 * n_rows)  # at most half the batch becomes centers
    if starved.sum() > limit:
        starved[np.argsort(counts)[limit:]] = False
    which = np.flatnonzero(starved)
    if len(which) == 0:
        return which, which, counts
    rng = np.random.default_rng([rules.seed, step])
    pos = rng.choice(n_rows, size=len(which), replace=False)
    counts = counts.copy()
    if (~starved).any():
        counts[starved] = counts[~starved].min()
    return which, pos, counts


def update_sparse(state: MiniBatchState, steps: kernels.CsrSteps, x: Any,
                  w: np.ndarray | None, rules: StepRules,
                  ) -> tuple[MiniBatchState, float, float]:
    """:func:`update_centers` on CSR rows, the centers held by ``steps``
    (``state.centers`` is left as it was: :meth:`~dkmeans.kernels.CsrSteps.centers`
    gives them). Also returns the sum of the centers' squared moves."""
    due, since = _reassign_due(state, state.counts.shape[0], x.shape[0])
    inertia, _, counts, shift = steps.step(x, w, state.counts)
    n_moved = 0
    if due and rules.reassignment_ratio > 0:
        which, pos, counts = _starved(counts, x.shape[0], rules, state.n_steps)
        if len(which):
            shift += steps.set_centers(which, kernels.rows(x, pos))
        n_moved = len(which)
    state = replace(state, counts=counts, n_steps=state.n_steps + 1, n_since_reassign=since,
                    n_reassigned=state.n_reassigned + n_moved)
    return state, inertia, shift


def check_convergence(state: MiniBatchState, shift: float, batch_inertia: float,
                      batch_weight: float, rules: StepRules) -> MiniBatchState:
    """Early stopping after a step, as scikit-learn decides it.

    The mean batch inertia is smoothed by an exponentially weighted average;
    the run stops when the squared center ``shift`` is at most ``tol``, or after
    ``max_no_improvement`` steps without a new lowest smoothed inertia. The
    first step is ignored (its inertia comes from the initial centers).
    """
    if state.n_steps <= 1:
        return state
    mean = batch_inertia / max(batch_weight, 1e-300)
    if math.isnan(state.ewa_inertia):
        ewa = mean
    else:
        alpha = min(rules.batch_size * 2.0 / (rules.n_samples + 1), 1.0)
        ewa = state.ewa_inertia * (1 - alpha) + mean * alpha
    if rules.tol > 0 and shift <= rules.tol:
        return replace(state, ewa_inertia=ewa, converged=True,
                       stopped_by="small centers change")
    if math.isnan(state.ewa_inertia_min) or ewa < state.ewa_inertia_min:
        best, stalled = ewa, 0
    else:
        best, stalled = state.ewa_inertia_min, state.no_improvement + 1
    done = rules.max_no_improvement is not None and stalled >= rules.max_no_improvement
    return replace(state, ewa_inertia=ewa, ewa_inertia_min=best, no_improvement=stalled,
                   converged=done, stopped_by="lack of improvement in inertia" if done else "")


# --------------------------------------------------------------------------
# A group's batches, gathered and stepped through (:mod:`dkmeans.data.batches`
# chooses the rows)


def _gather(parts: list[tuple[int, np.ndarray]], xs: Sequence[np.ndarray],
            ws: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray | None]:
    x = kernels.stack([xs[b][rows] for b, rows in parts])
    if ws[0] is None:
        return x, None
    return x, np.concatenate([ws[b][rows] for b, rows in parts])


def run_group(state: MiniBatchState, rules: StepRules, key: tuple[int, ...],
              *blocks: np.ndarray) -> tuple[MiniBatchState, int]:
    """All the steps of one group of blocks, in one task.

    ``blocks`` is ``x_0, w_0, x_1, w_1, ...`` (a weight may be None).
    Returns the new state and the number of rows actually used (a converged
    run uses none).
    """
    xs, ws = blocks[0::2], blocks[1::2]
    steps = kernels.CsrSteps(state.centers) if kernels.is_sparse(xs[0]) else None
    used = 0
    for parts in group_batches([x.shape[0] for x in xs], rules.batch_size, key):
        if state.converged:
            break
        x, w = _gather(parts, xs, ws)
        if steps is not None:
            state, inertia, shift = update_sparse(state, steps, x, w, rules)
        else:
            previous = state.centers.astype(np.float64) if rules.tol > 0 else None
            state, inertia = update_centers(state, x, w, rules)
            shift = 0.0 if previous is None else float(
                ((state.centers.astype(np.float64) - previous) ** 2).sum())
        weight = float(x.shape[0] if w is None else w.sum())
        state = check_convergence(state, shift, inertia, weight, rules)
        used += x.shape[0]
    if steps is not None:
        state = replace(state, centers=steps.centers(state.centers.dtype))
    return state, used


# --------------------------------------------------------------------------
# The driver


@dataclass(frozen=True)
class MiniBatchResult:
    """The outcome of a mini-batch run.

    Attributes
    ----------
    state : MiniBatchState
        Final centers, counts, steps and smoothed inertia.
    n_epochs : int
        Epochs begun (passes over the data the run started).
    rows_read : int
        Rows read from the source by the epochs (whole groups, including
        any read after early stopping within the last window).
    rows_used : int
        Rows that went through a step.
    seconds : float
    """

    state: MiniBatchState
    n_epochs: int
    rows_read: int
    rows_used: int
    seconds: float


def minibatch(blocks: Sequence[Block], centers: np.ndarray, rules: StepRules, *,
              max_epochs: int, row_bytes: int, verbose: int = 0,
              on_window: Callable[[MiniBatchState, int], None] | None = None,
              ) -> MiniBatchResult:
    """Run mini-batch k-means over the blocks from ``centers``.

    Parameters
    ----------
    blocks : sequence of Block
        Read from their source by each epoch, never persisted.
    centers : ndarray of shape (k, d)
    rules : StepRules
    max_epochs : int
        Passes over the data at most.
    row_bytes : int
        Bytes per row, to bound the memory of a group.
    verbose : int
    on_window : callable, optional
        Called with the state and the epoch after each window of groups.

    Returns
    -------
    MiniBatchResult
    """
    t0 = time.perf_counter()
    state = MiniBatchState.start(centers)
    rows_read = rows_used = epoch = 0
    for epoch in range(max_epochs):
        groups = [[blocks[i] for i in group] for group in epoch_groups(
            [b.n for b in blocks], rules.batch_size, row_bytes, rules.seed, epoch)]
        for start in range(0, len(groups), WINDOW_GROUPS):
            window = groups[start : start + WINDOW_GROUPS]
            node, used = delayed(state), []
            for g, group in enumerate(window, start):
                args = [a for b in group for a in (b.x, b.w)]
                out = delayed(run_group, nout=2, pure=True)(
                    node, rules, (rules.seed, epoch, g), *args)
                node = out[0]
                used.append(out[1])
            state, used = compute(node, used)
            rows_read += sum(b.n for group in window for b in group)
            rows_used += sum(used)
            if verbose:
                print(f"Epoch {epoch}, step {state.n_steps}: smoothed batch inertia "
                      f"{state.ewa_inertia:.6g}")
            if on_window is not None:
                on_window(state, epoch)
            if state.converged:
                break
        if state.converged:
            if verbose:  # scikit-learn's wording
                print(f"Converged ({state.stopped_by}) at step {state.n_steps}")
            break
    return MiniBatchResult(state, epoch + 1, rows_read, rows_used,
                           time.perf_counter() - t0)
