"""The Lloyd iteration.

:func:`lloyd` is the distributed Lloyd loop: one pass per iteration
(:data:`dkmeans.passes.LLOYD`), each block returning only its (k, d) sums, (k,)
weights and inertia, combined exactly (:mod:`dkmeans.kernels.exact`) into the
new centers on the client (:func:`dkmeans.passes.lloyd_aggregate`). An
iteration that leaves a cluster empty runs one more, small pass for the rows
to move it onto (:data:`dkmeans.passes.FAR_ROWS`). One in-memory block runs
all its iterations in one compiled call (:func:`dkmeans.kernels.lloyd_local`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dkmeans import kernels, passes
from dkmeans.kernels import exact
from dkmeans.passes import (
    ASSIGN,
    ASSIGN_STREAM,
    DRAW_IN_CLUSTER,
    FAR_ROWS,
    LLOYD,
    LLOYD_BOUNDED,
    MAGNITUDE,
    Assignment,
)
from dkmeans.runner import Block, run_pass

#: With bounds kept, an iteration searches every row (without checking bounds)
#: when the previous one had to search more than this share of rows. On D1, one
#: core, an iteration checking bounds cost 43 ms with 8% of rows searched, 65
#: with 30% and 96 with 89%; searching every row (still recording bounds)
#: 83-91 ms; a plain pass without bounds 50 ms.
SEARCH_ALL_ABOVE = 0.75

#: With bounds kept, every this many iterations the bounds are dropped and
#: rebuilt by a full search. Each iteration's bounds derive from the previous
#: ones, and a distributed scheduler keeps that whole lineage (released task
#: specs, for recomputation): 600 tasks after 150 iterations of 4 blocks,
#: growing without end. Restarting caps it, at one full search in 20.
BOUNDS_RESTART = 20


@dataclass(frozen=True)
class LloydProgress:
    """Where a Lloyd run stands after an iteration: enough to resume it exactly.

    Attributes
    ----------
    n_iter : int
        Iterations done.
    centers : ndarray of shape (k, d)
        The centers after ``n_iter`` iterations.
    history : tuple of float
        The inertia of each iteration so far, this one last (see
        :class:`LloydResult`).
    inertia : float
        This iteration's inertia: that of the centers it assigned the rows
        to, before its update (``history[-1]``).
    shift : float
        Sum of squared center moves in this iteration.
    seconds : float
        Wall time of this iteration.
    converged : bool
        Whether the run stops here.
    """

    n_iter: int
    centers: np.ndarray
    history: tuple[float, ...]
    inertia: float = float("nan")
    shift: float = float("nan")
    seconds: float = 0.0
    converged: bool = False


@dataclass(frozen=True)
class LloydResult:
    """The outcome of one Lloyd run.

    Attributes
    ----------
    centers : ndarray of shape (k, d)
    inertia : float
        Inertia of ``centers`` (from the final assignment pass).
    n_iter : int
    inertia_history : ndarray of shape (n_iter,)
        The inertia of each iteration: that of the centers it assigned the
        rows to, before its update. The first is the seeding's inertia; the
        final ``inertia`` (after the last update) is at most the last.
    labels : list or None
        Per-block labels of the final assignment, still on the workers
        (None unless ``keep_labels``).
    counts : ndarray of shape (k,)
        Weight assigned to each center in the final assignment.
    n_relocated : int
        Clusters moved over all iterations: empty ones onto far rows, and
        (with a minimum size) small ones to split the largest.
    """

    centers: np.ndarray
    inertia: float
    n_iter: int
    inertia_history: np.ndarray
    labels: list | None
    counts: np.ndarray
    n_relocated: int


#: With a minimum cluster size, at most this many splits per center in a run:
#: data that cannot give every cluster that weight would split forever.
SPLITS_PER_CENTER = 2

#: The random stream of those splits' draws (with the iteration number)
_SPLIT_STREAM = 0x6D696E53697A65  # "minSize"


def _split_small(blocks: Sequence[Block], stats, centers: np.ndarray, new: np.ndarray,
                 min_size: float, split_every: int, n_iter: int) -> bool:
    """Relocate the lightest cluster under ``min_size`` by splitting the
    heaviest (:func:`dkmeans.passes.split_largest`), at the cost of one small
    pass (:data:`~dkmeans.passes.DRAW_IN_CLUSTER`, its random stream keyed by
    the iteration, so any chunking draws the same row); False if none is
    light or the heaviest could not leave two clusters of that weight."""
    weights = stats.cluster_weights
    small = (weights > 0) & (weights < min_size)
    largest = int(np.argmax(weights))
    if not small.any() or weights[largest] < 2 * min_size:
        return False
    key = np.array([_SPLIT_STREAM, n_iter], dtype=np.uint64)
    drawn = run_pass(DRAW_IN_CLUSTER, blocks, centers, largest, key, split_every=split_every)
    return passes.split_largest(weights, new, drawn, min_size) is not None


def _compiled_loop_applies(blocks: Sequence[Block], keep_bounds: bool, unit_centers: bool,
                           verbose: int, on_iteration: object, start: object) -> bool:
    """Whether the iterations run as one compiled call
    (:func:`dkmeans.kernels.lloyd_local`): one in-memory block, where a
    pass's Python overhead outweighs its arithmetic, and nothing to report
    or change between iterations."""
    return (len(blocks) == 1 and isinstance(blocks[0].x, np.ndarray) and not keep_bounds
            and not unit_centers and not verbose and on_iteration is None and start is None)


def lloyd(blocks: Sequence[Block], centers: np.ndarray, *, max_iter: int = 300,
          tol: float = 0.0, verbose: int = 0, split_every: int = 8,
          keep_bounds: bool = False, keep_labels: bool = True, unit_centers: bool = False,
          start: LloydProgress | None = None,
          on_iteration: Callable[[LloydProgress], None] | None = None,
          quanta: np.ndarray | None = None, min_size: float | None = None) -> LloydResult:
    """Run Lloyd's algorithm from ``centers`` until convergence.

    Stops when the squared center shift is at most ``tol`` (an absolute
    tolerance; labels that no longer change give a shift of exactly 0) or
    after ``max_iter`` iterations. Then one more pass assigns every row to the
    final centers, so labels and inertia always match the returned centers
    (without ``keep_labels``, after a last iteration that changed no label,
    that iteration's own inertia and weights are those of the final
    centers: no pass is needed).

    Parameters
    ----------
    blocks : sequence of Block
    centers : ndarray of shape (k, d), the data's dtype
    max_iter : int
    tol : float
        Absolute tolerance on the sum of squared center shifts.
    verbose : int
    split_every : int
    keep_bounds : bool
        Keep per-row distance bounds on the workers between iterations (12
        bytes per row) so that rows whose nearest center cannot have changed
        skip the distances to every center (:data:`~dkmeans.passes.LLOYD_BOUNDED`).
        Same results; worth it when the data is persisted, not when every
        pass streams it from disk in bounded memory.
    keep_labels : bool
        Keep the final assignment's labels on the workers (4 bytes per row).
        Without, ``labels`` is None: streamed data's labels are recomputed
        from the source when asked for.
    unit_centers : bool
        Spherical k-means: each new center (a cluster mean) is scaled to unit
        length, for rows of unit length (``metric="cosine"``).
    start : LloydProgress, optional
        Resume a run from a checkpoint: its centers, iteration count and
        history. The result equals the uninterrupted run's.
    on_iteration : callable, optional
        Called with a :class:`LloydProgress` after every iteration (progress
        reports, checkpoints).
    quanta : ndarray of shape (d + 1,), optional
        The grid of the passes' exact sums (:attr:`ScanStats.quanta
        <dkmeans.passes.ScanStats.quanta>`); by default one more pass finds it.
    min_size : float, optional
        Minimum cluster weight: after an iteration leaving a cluster lighter
        (but not empty), the lightest such cluster is moved onto a random row
        of the heaviest, splitting it (:func:`dkmeans.passes.split_largest`),
        while the heaviest
        weighs at least twice this, at most :data:`SPLITS_PER_CENTER` x k
        times in a run.

    Returns
    -------
    LloydResult
    """
    history: list[float] = [] if start is None else list(start.history)
    n_relocated = 0
    done = 0 if start is None else start.n_iter
    n_iter = done
    if start is not None:
        centers = start.centers
    states, previous, searched, stats, strict = None, None, 1.0, None, False
    n_rows = max(sum(b.n for b in blocks), 1)
    if verbose:
        print("Initialization complete")
    if quanta is None:
        n, max_abs, max_weight = run_pass(MAGNITUDE, blocks, split_every=split_every)
        quanta = exact.grid(n, max_weight, max_abs)
    first, last = done + 1, max_iter
    splits_left = SPLITS_PER_CENTER * len(centers) if min_size else 0
    if not min_size and last >= first and _compiled_loop_applies(
            blocks, keep_bounds, unit_centers, verbose, on_iteration, start):
        b = blocks[0]
        centers, run, n_relocated = kernels.lloyd_local(
            b.x, np.empty(0) if b.w is None else b.w, centers, max_iter, tol, quanta)
        history, n_iter = list(run), len(run)
        first = last + 1  # the iterations are done: the loop below has none left
    for n_iter in range(first, last + 1):
        t0 = time.perf_counter()
        if keep_bounds:
            if n_iter % BOUNDS_RESTART == 0:
                states, previous, searched = None, None, 1.0
            half_sep, drift = kernels.center_bounds(centers, previous)
            # while most rows fail their bounds, checking them costs more than
            # it saves: search them all, still recording bounds
            states, stats = run_pass(LLOYD_BOUNDED, blocks, centers, quanta, half_sep, drift,
                                     searched > SEARCH_ALL_ABOVE, states=states,
                                     split_every=split_every)
            previous, searched = centers, stats.n_searched / n_rows
        else:
            stats = run_pass(LLOYD, blocks, centers, quanta, split_every=split_every)
        history.append(stats.inertia)  # of the centers this pass assigned to
        # the rows to move empty clusters onto: those the pass kept, else
        # (more clusters empty, or the bounds' pass) one more pass finds them
        n_empty = passes.empty_clusters(stats)
        far = stats.far
        if n_empty and (far is None or n_empty > far.m):
            far = run_pass(FAR_ROWS, blocks, centers, n_empty, split_every=split_every)
        new, moved = passes.lloyd_aggregate(stats, centers, far)
        if splits_left and _split_small(blocks, stats, centers, new, min_size, split_every,
                                        n_iter):
            splits_left -= 1
            moved += 1
        if unit_centers:
            new = kernels.unit_length(new)
        n_relocated += moved
        shift = float(((new.astype(np.float64) - centers) ** 2).sum())
        centers = new
        seconds = time.perf_counter() - t0
        if verbose:
            print(f"Iteration {n_iter - 1}, inertia {stats.inertia:.6g}, "
                  f"center shift {shift:.3g}, {stats.n_searched / n_rows:.0%} of rows searched, "
                  f"{seconds:.3f} s")
        if on_iteration is not None:
            on_iteration(LloydProgress(n_iter, centers, tuple(history), stats.inertia, shift,
                                       seconds, converged=shift <= tol or n_iter == max_iter))
        if shift <= tol:
            strict = shift == 0 and not moved
            if verbose:  # scikit-learn's wording, which its users grep for
                print(f"Converged at iteration {n_iter - 1}: strict convergence." if shift == 0
                      else f"Converged at iteration {n_iter - 1}: center shift {shift:.3g} "
                      f"within tolerance {tol:.3g}.")
            break
    if keep_labels:
        states, final = run_pass(ASSIGN, blocks, centers, split_every=split_every)
    elif strict:  # the last pass assigned every row to these very centers
        states, final = None, Assignment(stats.inertia, stats.cluster_weights)
    else:
        states, final = None, run_pass(ASSIGN_STREAM, blocks, centers,
                                       split_every=split_every)
    return LloydResult(centers, final.inertia, n_iter, np.asarray(history), states,
                       final.counts, n_relocated)
