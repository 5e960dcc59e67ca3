"""Bounds-based exact Lloyd (Hamerly 2010): per-row lower bounds kept between
steps let most rows skip the distance GEMM once the centers settle."""

from __future__ import annotations

import numba
import numpy as np

from dkmeans.kernels.assign import (
    FAST,
    accumulate_block,
    block_step,
    bound_holds,
    gemm_block,
    gemm_buffer,
    prepare_centers,
    row_sqdist,
)


@numba.njit(**FAST)
def _search_rows(src, rows, centers, centers_t, c_sqnorm, err_scale, cmax2, labels, lower,
                 d2, first, buf, rows_first):  # pragma: no cover - compiled
    """Nearest center of each row of ``src`` (row ``rows[i]`` of the chunk) by
    GEMM + argmin, its exact squared distance (into ``d2[rows[i] - first]``),
    and a lower bound on the distance to every other center (the second-best,
    less rounding error)."""
    m, d = src.shape
    k = centers.shape[0]
    g = gemm_block(src, centers, centers_t, buf, rows_first)
    # Branch-free second best: min(second, max(v, best)) is the new second
    # whether or not v beats the best (the branches mispredicted on rows
    # near two centers: 2.8x the plain assignment's time on D1).
    second = np.full(m, np.inf, dtype=src.dtype)
    lab = np.zeros(m, dtype=np.int32)
    if rows_first:
        for i in range(m):
            b1, b2, a = c_sqnorm[0] - 2 * g[i, 0], np.inf, 0
            for j in range(1, k):
                v = c_sqnorm[j] - 2 * g[i, j]
                b2 = min(b2, max(v, b1))
                if v < b1:  # strict: ties keep the lowest index
                    b1, a = v, j
            second[i], lab[i] = b2, a
    else:
        best = c_sqnorm[0] - 2 * g[0]
        for j in range(1, k):
            cj = c_sqnorm[j]
            for i in range(m):
                v = cj - 2 * g[j, i]
                second[i] = min(second[i], max(v, best[i]))
                if v < best[i]:
                    best[i] = v
                    lab[i] = j
    for i in range(m):
        row, a = rows[i], lab[i]
        labels[row] = a
        dist, xx = 0.0, 0.0
        for f in range(d):
            x = np.float64(src[i, f])
            diff = x - np.float64(centers[a, f])
            dist += diff * diff
            xx += x * x
        d2[row - first] = dist
        sec = xx + np.float64(second[i]) - err_scale * (xx + cmax2)
        lower[row] = np.sqrt(sec) if sec > 0.0 else 0.0


@numba.njit(**FAST)
def _lloyd_bounded_impl(X, w, centers, centers_t, c_sqnorm, c_norm, half_sep, drift, search_all,
                        err_scale, old_labels, old_lower, labels, lower, sums, wsums, counts,
                        gt_buf, rows_first):  # pragma: no cover - compiled
    """Lloyd step that skips the distances to all centers for rows whose
    nearest center provably cannot have changed (Hamerly 2010).

    ``lower[r]`` bounds the distance from row r to every center but its own;
    it shrinks by ``drift[a]`` (the largest move of any other center). A row
    keeps its label without the GEMM when :func:`bound_holds`, so the label
    is the one the full argmin would give. The new ``labels`` and ``lower``
    start as copies of the old ones (or zeros when ``old_labels`` is empty),
    made block by block.
    """
    n, d = X.shape
    k = centers.shape[0]
    has_bounds = old_labels.shape[0] > 0
    cmax2 = 0.0
    for j in range(k):
        cmax2 = max(cmax2, np.float64(c_sqnorm[j]))
    inertia = 0.0
    step = block_step(gt_buf, rows_first)
    buf = np.empty((step, d), dtype=X.dtype)
    idx = np.empty(step, dtype=np.int64)
    d2 = np.empty(step)  # one block's exact distances
    # (its pass keeps no farthest rows: FAR_ROWS finds them when needed)
    no_far, no_pos, no_lab = np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int32)
    for start in range(0, n, step):
        stop = min(start + step, n)
        for row in range(start, stop):
            labels[row] = old_labels[row] if has_bounds else 0
            lower[row] = old_lower[row] if has_bounds else 0.0
        if search_all:
            # every row: the GEMM reads the block in place. With bounds from a
            # previous step, count the rows they would have spared (same
            # label, bound held), so the caller knows when to check them.
            b = stop - start
            old_lab = labels[start:stop].copy()
            for i in range(b):
                lower[start + i] -= drift[old_lab[i]]
            old_low = lower[start:stop].copy()
            _search_rows(X[start:stop], np.arange(start, stop), centers, centers_t, c_sqnorm,
                         err_scale, cmax2, labels, lower, d2, start, gt_buf, rows_first)
            for i in range(b):
                a = old_lab[i]
                spared = has_bounds and labels[start + i] == a and bound_holds(
                    d2[i], half_sep[a], old_low[i], c_norm[a], err_scale, cmax2)
                if not spared:
                    counts[0] += 1
        else:
            m = 0
            for row in range(start, stop):
                a = labels[row]
                dist = row_sqdist(X, row, centers, a)
                d2[row - start] = dist
                lower[row] -= drift[a]
                if bound_holds(dist, half_sep[a], lower[row], c_norm[a], err_scale, cmax2):
                    continue
                idx[m] = row
                for f in range(d):
                    buf[m, f] = X[row, f]
                m += 1
            counts[0] += m
            if m > 0:
                _search_rows(buf[:m], idx[:m], centers, centers_t, c_sqnorm, err_scale, cmax2,
                             labels, lower, d2, start, gt_buf, rows_first)
        inertia += accumulate_block(X, w, centers, labels[start:stop], d2[: stop - start],
                                     start, stop, sums, wsums, no_far, no_pos, no_lab)
    return inertia


def lloyd_partials_bounded(X: np.ndarray, w: np.ndarray, centers: np.ndarray,
                           state: tuple | None, half_sep: np.ndarray, drift: np.ndarray,
                           search_all: bool = False):
    """:func:`lloyd_partials` that reuses per-row bounds from the previous step.

    Gives the labels and partial results of :func:`lloyd_partials` while
    computing the distances to every center only for rows whose nearest
    center may have changed.

    Parameters
    ----------
    X, w, centers
        As for :func:`lloyd_partials`.
    state : (labels, lower) or None
        From the previous step on the same rows: ``labels`` (n,) int32 and
        ``lower`` (n,) float64, a lower bound on each row's distance to every
        center but its own. None: no previous step, every row is searched.
    half_sep : ndarray of shape (k,)
        Half the distance from each center to its closest other center.
    drift : ndarray of shape (k,)
        For each center, the largest move of any *other* center since the
        previous step (zeros when ``state`` is None).
    search_all : bool
        Search every row (still recording bounds for the next step): cheaper
        than checking bounds while most rows would fail them anyway.

    Returns
    -------
    The three results of :func:`lloyd_partials`, then
    state : (labels, lower)
        For the next step (new arrays: the input state is not modified).
    n_searched : int
        Rows that needed the distances to every center: those searched, or
        with ``search_all``, those the bounds would not have spared.
    """
    X = np.ascontiguousarray(X)
    c, c_t, c_sqnorm = prepare_centers(centers, X.dtype)
    n, d = X.shape
    k = c.shape[0]
    fresh = state is None
    # new arrays, filled from the old block by block: the persisted state of
    # the previous step stays as it was
    labels, lower = np.empty(n, dtype=np.int32), np.empty(n)
    old_labels, old_lower = (labels[:0], lower[:0]) if fresh else state
    sums, wsums = np.zeros((k, d)), np.zeros(k)
    counts = np.zeros(1, dtype=np.int64)
    # generous bound on the rounding of |c|^2 - 2 x.c in X's dtype, relative
    # to |x|^2 + max |c|^2, for both the own and the other center
    err_scale = 4.0 * (d + 2) * float(np.finfo(X.dtype).eps)
    c_norm = np.sqrt(c_sqnorm.astype(np.float64))
    inertia = _lloyd_bounded_impl(X, w, c, c_t, c_sqnorm, c_norm, np.asarray(half_sep, np.float64),
                                  np.asarray(drift, np.float64), fresh or search_all,
                                  err_scale, old_labels, old_lower, labels, lower, sums,
                                  wsums, counts, *gemm_buffer(X, k))
    return sums, wsums, float(inertia), (labels, lower), int(counts[0])


def center_bounds(centers: np.ndarray, previous: np.ndarray | None):
    """Half-separation of each center and the drift bound for its rows.

    Parameters
    ----------
    centers : ndarray of shape (k, d)
        The centers of this step.
    previous : ndarray of shape (k, d) or None
        The centers of the previous step.

    Returns
    -------
    half_sep : ndarray of shape (k,)
        Half the distance to the closest other center (inf when k == 1).
    drift : ndarray of shape (k,)
        For center a, the largest distance any other center moved.
    """
    c = centers.astype(np.float64)
    k = len(c)
    # exact differences, not the GEMM identity: these bound rows' distances
    between = np.stack([np.sqrt(((c - c[a]) ** 2).sum(axis=1)) for a in range(k)])
    np.fill_diagonal(between, np.inf)
    half_sep = 0.5 * between.min(axis=1) if k > 1 else np.full(1, np.inf)
    if previous is None:
        return half_sep, np.zeros(k)
    moved = np.sqrt(((c - previous.astype(np.float64)) ** 2).sum(axis=1))
    if k == 1:
        return half_sep, np.zeros(1)
    order = np.argsort(moved)
    largest, runner_up = order[-1], order[-2]
    drift = np.full(k, moved[largest])
    drift[largest] = moved[runner_up]
    return half_sep, drift
