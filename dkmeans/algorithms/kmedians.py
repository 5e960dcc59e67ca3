"""k-medians: rows assigned by L1 distance, each center moved to its
cluster's coordinate-wise weighted median, over chunked data.

A median is not a sum, so each iteration finds the k x d medians exactly in
a few passes of bounded size (:mod:`dkmeans.kernels.medians`):

1. :data:`~dkmeans.passes.MEDIAN_START`: the L1 assignment, the objective,
   and each cluster's weight, row count and per-feature bounds;
2. :data:`~dkmeans.passes.MEDIAN_ROUND`, repeated: every (cluster, feature)
   whose interval still holds more than :data:`SHIP_ROWS` rows is narrowed
   to the range of the values in one of :data:`BINS` bins (a block's partial
   holds weight, rows, smallest and largest value per bin: k x d x bins x 32
   bytes); the others ship their remaining values, and their median is
   exact. A bin holding one repeated value ends its search at once.

The median is the lower weighted median: the smallest value whose cumulative
weight (values sorted) reaches half the cluster's weight. A cluster of n
rows spread evenly needs ``1 + ceil(log_BINS(n / SHIP_ROWS))`` rounds, so an
iteration costs 2 passes up to 262,144 rows per cluster and 3 up to 67
million; values on few distinct points finish as soon as an interval holds
one representable value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from dkmeans.algorithms.lloyd import LloydProgress, LloydResult
from dkmeans.kernels.medians import nearest_l1
from dkmeans.passes.medians import MEDIAN_ROUND, MEDIAN_START, MedianStart
from dkmeans.runner import Block, run_pass

#: Bins of each narrowing round: a block's partial holds k x d x BINS weights.
BINS = 256

#: A (cluster, feature) interval with at most this many rows ships its values.
SHIP_ROWS = 1024

#: Rounds after which every open interval ships its values whatever its size.
MAX_ROUNDS = 16


def _lower_median(values: np.ndarray, weights: np.ndarray, below: float,
                  target: float) -> float:
    order = np.argsort(values, kind="stable")
    cum = below + np.cumsum(weights[order])
    return float(values[order][min(np.searchsorted(cum, target), len(cum) - 1)])


def weighted_medians(blocks: Sequence[Block], centers: np.ndarray, start: MedianStart,
                     split_every: int = 8) -> tuple[np.ndarray, int]:
    """The lower weighted median of every feature in every cluster of the
    L1 assignment to ``centers``.

    Returns
    -------
    medians : ndarray of shape (k, d), float64
        An empty cluster keeps its center.
    n_rounds : int
        :data:`~dkmeans.passes.MEDIAN_ROUND` passes run.
    """
    d = centers.shape[1]
    medians = centers.astype(np.float64, copy=True)
    target = np.repeat(start.weights[:, None] / 2, d, axis=1)
    lo = np.where(np.isfinite(start.low), start.low, 0.0)
    hi = np.nextafter(np.where(np.isfinite(start.high), start.high, 0.0), np.inf)
    rows = np.repeat(start.rows[:, None], d, axis=1)
    open_ = np.repeat(start.weights[:, None] > 0, d, axis=1)
    n_rounds = 0
    while True:
        single = open_ & (hi <= np.nextafter(lo, np.inf))  # one representable value left
        medians[single] = lo[single]
        open_ &= ~single
        if not open_.any():
            return medians, n_rounds
        ship = open_ & ((rows <= SHIP_ROWS) | (n_rounds >= MAX_ROUNDS))
        narrow = open_ & ~ship
        r = run_pass(MEDIAN_ROUND, blocks, centers, lo, hi, narrow, ship, BINS,
                     split_every=split_every)
        n_rounds += 1
        for j, f in zip(*np.nonzero(ship), strict=True):
            mine = r.pair == j * d + f
            medians[j, f] = _lower_median(r.values[mine], r.weights[mine], r.below[j, f],
                                          target[j, f])
        open_ &= ~ship
        for j, f in zip(*np.nonzero(narrow), strict=True):
            cum = r.below[j, f] + np.cumsum(r.hist[j, f])
            b = min(int(np.searchsorted(cum, target[j, f])), BINS - 1)
            # the bin's own values bound the median: [smallest, largest]
            lo[j, f], hi[j, f] = r.low[j, f, b], np.nextafter(r.high[j, f, b], np.inf)
            rows[j, f] = r.rows[j, f, b]


def kmedians(blocks: Sequence[Block], centers: np.ndarray, *, max_iter: int = 300,
             tol: float = 0.0, split_every: int = 8, start: LloydProgress | None = None,
             on_iteration: Callable[[LloydProgress], None] | None = None) -> LloydResult:
    """k-medians from ``centers`` until the squared center shift is at most
    ``tol`` (0 once no median moves) or ``max_iter`` iterations.

    Parameters
    ----------
    blocks : sequence of Block
    centers : ndarray of shape (k, d), the data's dtype
    max_iter : int
    tol : float
    split_every : int
    start : LloydProgress, optional
        Resume from a checkpoint (its centers, iteration count and history).
    on_iteration : callable, optional
        Called with a :class:`~dkmeans.algorithms.lloyd.LloydProgress` after every
        iteration, its ``inertia`` the L1 objective.

    Returns
    -------
    LloydResult
        ``inertia`` and ``inertia_history`` hold the L1 objective (weighted
        sum of L1 distances to the nearest center); ``labels`` is None.
    """
    history: list[float] = [] if start is None else list(start.history)
    done = n_iter = 0 if start is None else start.n_iter
    if start is not None:
        centers = start.centers
    for n_iter in range(done + 1, max_iter + 1):
        t0 = time.perf_counter()
        assigned = run_pass(MEDIAN_START, blocks, centers, split_every=split_every)
        history.append(assigned.objective)
        new = weighted_medians(blocks, centers, assigned, split_every)[0].astype(centers.dtype)
        shift = float(((new.astype(np.float64) - centers) ** 2).sum())
        centers = new
        if on_iteration is not None:
            on_iteration(LloydProgress(n_iter, centers, tuple(history), assigned.objective,
                                       shift, time.perf_counter() - t0,
                                       converged=shift <= tol or n_iter == max_iter))
        if shift <= tol:
            break
    final = run_pass(MEDIAN_START, blocks, centers, split_every=split_every)
    return LloydResult(centers, final.objective, n_iter, np.asarray(history), None,
                       final.weights, 0)


def labels(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Labels of in-memory rows: the nearest center by L1 distance."""
    return nearest_l1(x, centers)[0]
