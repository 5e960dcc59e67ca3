"""The Lloyd iteration pass, its aggregate, and the final assignment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dkmeans import kernels
from dkmeans.passes.common import (
    Assignment,
    LloydStats,
    TopRows,
    _no_weights,
    _weights_or_ones,
    streaming,
)
from dkmeans.runner import Pass


def _far_rows(x, w, offset, n_far, far_d2, far_row, far_label) -> TopRows:
    far = TopRows(n_far, far_d2, far_row + offset, x[far_row].copy(),
                  np.ones(far_row.size) if w is None else w[far_row].astype(np.float64),
                  far_label)
    return TopRows.merge([far])


def lloyd_chunk(x, w, offset: int, centers: np.ndarray, n_far: int) -> LloydStats:
    sums, wsums, inertia, far_d2, far_row, far_label = kernels.lloyd_partials(
        x, _no_weights(w), centers, n_far)
    return LloydStats(sums, wsums, inertia,
                      _far_rows(x, w, offset, n_far, far_d2, far_row, far_label), x.shape[0])


def lloyd_combine(parts: Sequence[LloydStats]) -> LloydStats:
    return LloydStats(
        sums=np.sum([p.sums for p in parts], axis=0),
        weights=np.sum([p.weights for p in parts], axis=0),
        inertia=sum(p.inertia for p in parts),
        far=TopRows.merge([p.far for p in parts]),
        n_searched=sum(p.n_searched for p in parts),
    )


LLOYD = Pass("dkmeans-lloyd", lloyd_chunk, lloyd_combine)


def lloyd_bounded_chunk(x, w, offset: int, state, centers: np.ndarray, n_far: int,
                        half_sep: np.ndarray, drift: np.ndarray, search_all: bool):
    """:func:`lloyd_chunk` keeping per-row bounds between iterations as state,
    so rows whose nearest center cannot have changed skip the distance GEMM."""
    (sums, wsums, inertia, far_d2, far_row, far_label, new_state,
     n_searched) = kernels.lloyd_partials_bounded(
        x, _no_weights(w), centers, n_far, state, half_sep, drift,
        search_all)
    return new_state, LloydStats(sums, wsums, inertia, _far_rows(x, w, offset, n_far, far_d2,
                                                                 far_row, far_label),
                                 n_searched)


LLOYD_BOUNDED = Pass("dkmeans-lloyd-bounded", lloyd_bounded_chunk, lloyd_combine,
                     stateful=True)
"""The Lloyd pass for persisted data: same results as :data:`LLOYD`, with
12 bytes per row of state kept on the workers between iterations."""


def lloyd_aggregate(stats: LloydStats, centers: np.ndarray) -> tuple[np.ndarray, int]:
    """New centers from a Lloyd pass, relocating empty clusters.

    Each empty cluster (zero total weight) moves onto one of the rows
    farthest from their centers, farthest first; that row is taken out of
    its old cluster's sums, as scikit-learn does. A cluster is never moved to
    the origin nor left with a stale center while a row with positive
    distance is available.

    Parameters
    ----------
    stats : LloydStats
        Combined over all blocks.
    centers : ndarray of shape (k, d)
        The centers the pass assigned to.

    Returns
    -------
    new_centers : ndarray of shape (k, d), centers' dtype
    n_relocated : int
    """
    sums = stats.sums.copy()
    weights = stats.weights.copy()
    empty = np.flatnonzero(weights == 0)
    far = stats.far
    n_relocated = 0
    if empty.size and far.keys.size and far.keys[0] > 0:
        for cluster, row, wt, old, dist in zip(empty, far.rows, far.weights, far.labels,
                                               far.keys, strict=False):
            if dist <= 0:
                break
            sums[old] -= wt * row
            weights[old] -= wt
            sums[cluster] = wt * row
            weights[cluster] = wt
            n_relocated += 1
    new = centers.astype(np.float64, copy=True)
    filled = weights > 0
    new[filled] = sums[filled] / weights[filled, None]
    return new.astype(centers.dtype), n_relocated


def assign_chunk(x, w, offset: int, state, centers: np.ndarray):
    """Labels of a block (kept as its state), its inertia and cluster weights."""
    labels, d2 = kernels.nearest(x, centers)
    # one summation order with and without weights: unit weights give the
    # very same inertia as no weights
    inertia = float(_weights_or_ones(w, x.shape[0]) @ d2)
    counts = np.bincount(labels, weights=w, minlength=centers.shape[0]).astype(np.float64)
    return labels, Assignment(inertia, counts)


def assignment_combine(parts: Sequence[Assignment]) -> Assignment:
    return Assignment(sum(p.inertia for p in parts), np.sum([p.counts for p in parts], axis=0))


ASSIGN = Pass("dkmeans-assign", assign_chunk, assignment_combine, stateful=True)
ASSIGN_STREAM = streaming(ASSIGN)
"""The final assignment without keeping labels: streamed data's labels are
computed again from the source when asked for."""
