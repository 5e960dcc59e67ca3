"""The Lloyd iteration pass, its aggregate, and the final assignment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dkmeans import kernels
from dkmeans.kernels import exact, sampling
from dkmeans.passes.common import (
    Assignment,
    LloydStats,
    TopRows,
    no_weights,
    streaming,
    weights_or_ones,
)
from dkmeans.runner import Pass

#: Rows farthest from their centers that every Lloyd pass keeps (a few rows
#: per partial result): an iteration that empties up to this many clusters
#: moves them without another pass over the data (on D2, 500,000 x 256, an
#: emptied cluster cost a whole extra pass, 160 ms beside a 155 ms iteration).
FAR_CANDIDATES = 4


def _lloyd_stats(sums, wsums, inertia, quanta, n_searched, far=None) -> LloydStats:
    return LloydStats(exact.to_grid(sums, quanta[:-1]), exact.to_grid(wsums, quanta[-1]),
                      quanta, (inertia,), n_searched, far)


def lloyd_chunk(x, w, offset: int, centers: np.ndarray, quanta: np.ndarray) -> LloydStats:
    """One Lloyd step's sums, weights and inertia on a block, on the grid of
    ``quanta`` (:func:`dkmeans.kernels.exact.grid`), and the block's
    :data:`FAR_CANDIDATES` rows farthest from their centers."""
    sums, wsums, inertia, (pos, keys, labels) = kernels.lloyd_partials_far(
        x, no_weights(w), centers, FAR_CANDIDATES)
    far = replace(TopRows.at(FAR_CANDIDATES, pos, keys, x, w, offset), labels=labels)
    return _lloyd_stats(sums, wsums, inertia, quanta, x.shape[0], far)


def lloyd_combine(parts: Sequence[LloydStats]) -> LloydStats:
    """Exact: the same totals (and farthest rows) in any grouping and order."""
    fars = [p.far for p in parts if p.far is not None]
    return LloydStats(
        sums=np.sum([p.sums for p in parts], axis=0),
        weights=np.sum([p.weights for p in parts], axis=0),
        quanta=parts[0].quanta,
        inertia_parts=exact.exact_sum(v for p in parts for v in p.inertia_parts),
        n_searched=sum(p.n_searched for p in parts),
        far=TopRows.merge(fars) if len(fars) == len(parts) else None,
    )


LLOYD = Pass("dkmeans-lloyd", lloyd_chunk, lloyd_combine, exact=True)


def lloyd_bounded_chunk(x, w, offset: int, state, centers: np.ndarray, quanta: np.ndarray,
                        half_sep: np.ndarray, drift: np.ndarray, search_all: bool):
    """:func:`lloyd_chunk` keeping per-row bounds between iterations as state,
    so rows whose nearest center cannot have changed skip the distance GEMM."""
    sums, wsums, inertia, new_state, n_searched = kernels.lloyd_partials_bounded(
        x, no_weights(w), centers, state, half_sep, drift, search_all)
    return new_state, _lloyd_stats(sums, wsums, inertia, quanta, n_searched)


LLOYD_BOUNDED = Pass("dkmeans-lloyd-bounded", lloyd_bounded_chunk, lloyd_combine,
                     stateful=True, exact=True)
"""The Lloyd pass for persisted data: same results as :data:`LLOYD`, with
12 bytes per row of state kept on the workers between iterations."""


def far_rows_chunk(x, w, offset: int, centers: np.ndarray, m: int) -> TopRows:
    """The ``m`` rows of positive weight farthest from their nearest center,
    with their centers and weights (ties to the earlier row)."""
    labels, d2 = kernels.nearest(x, centers)
    keys = d2 if w is None else np.where(w > 0, d2, 0.0)
    return TopRows.from_block(m, keys, x, w, offset, labels)


FAR_ROWS = Pass("dkmeans-far-rows", far_rows_chunk, TopRows.merge, exact=True)
"""The rows to move empty clusters onto: run only in an iteration that left
more clusters empty than a Lloyd pass keeps rows for (:data:`FAR_CANDIDATES`),
or after a pass that keeps none (the bounds' pass)."""


def empty_clusters(stats: LloydStats) -> int:
    """How many clusters a Lloyd pass left with zero weight."""
    return int(np.count_nonzero(stats.weights == 0))


def lloyd_aggregate(stats: LloydStats, centers: np.ndarray,
                    far: TopRows | None = None) -> tuple[np.ndarray, int]:
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
    far : TopRows, optional
        From :data:`FAR_ROWS` with the same centers, when a cluster is empty.

    Returns
    -------
    new_centers : ndarray of shape (k, d), centers' dtype
    n_relocated : int
    """
    sums = stats.center_sums
    weights = stats.cluster_weights
    empty = np.flatnonzero(weights == 0)
    n_relocated = 0
    if empty.size and far is not None:
        rows = kernels.dense(far.rows)
        for cluster, row, wt, old, dist in zip(empty, rows, far.weights, far.labels, far.keys,
                                               strict=False):
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


def draw_in_cluster_chunk(x, w, offset: int, centers: np.ndarray, cluster: int,
                          key: np.ndarray) -> TopRows:
    """One row of ``cluster`` (rows nearest its center) drawn with
    probability ~ weight: the block's exponential-race winner."""
    labels, _ = kernels.nearest(x, centers)
    weights = np.where(labels == cluster, weights_or_ones(w, x.shape[0]), 0.0)
    return TopRows.at(1, *sampling.race_top_m(key, offset, weights, 1), x, w, offset)


DRAW_IN_CLUSTER = Pass("dkmeans-draw-in-cluster", draw_in_cluster_chunk, TopRows.merge,
                       exact=True)
"""A random row of one cluster, to split it (a minimum cluster size)."""


def split_largest(weights: np.ndarray, new: np.ndarray, drawn: TopRows,
                  min_size: float) -> int | None:
    """Move the lightest cluster under ``min_size`` into the heaviest one.

    Its center moves onto a row of the heaviest cluster drawn at random
    (``drawn``, from :data:`DRAW_IN_CLUSTER`), so the next iterations divide
    that cluster in two, as bisecting k-means starts a split; the light
    cluster's rows join their next nearest centers. (The heaviest cluster's
    farthest row would not do: it is where absorbed outliers sit, which
    would form the same small cluster again.)

    Parameters
    ----------
    weights : ndarray of shape (k,)
        The clusters' weights in the iteration.
    new : ndarray of shape (k, d)
        The iteration's new centers; changed in place.
    drawn : TopRows
    min_size : float

    Returns
    -------
    The moved cluster, or None (nothing drawn).
    """
    small = np.flatnonzero((weights > 0) & (weights < min_size))
    if not len(drawn.keys):
        return None
    moved = int(small[np.argmin(weights[small])])
    new[moved] = kernels.dense(drawn.rows[:1])[0]
    return moved


def assign_chunk(x, w, offset: int, state, centers: np.ndarray):
    """Labels of a block (kept as its state), its inertia and cluster weights."""
    labels, d2 = kernels.nearest(x, centers)
    # one summation order with and without weights: unit weights give the
    # very same inertia as no weights
    inertia = float(weights_or_ones(w, x.shape[0]) @ d2)
    counts = np.bincount(labels, weights=w, minlength=centers.shape[0]).astype(np.float64)
    return labels, Assignment(inertia, counts)


def assignment_combine(parts: Sequence[Assignment]) -> Assignment:
    return Assignment(sum(p.inertia for p in parts), np.sum([p.counts for p in parts], axis=0))


ASSIGN = Pass("dkmeans-assign", assign_chunk, assignment_combine, stateful=True)
ASSIGN_STREAM = streaming(ASSIGN)
"""The final assignment without keeping labels: streamed data's labels are
computed again from the source when asked for."""
