"""k-medians on one block: the nearest center by L1 distance, and what the
distributed weighted median of every (cluster, feature) needs.

The median of cluster j's feature f is found by narrowing an interval
``[lo, hi)`` that holds it: a pass counts, per (j, f), the weight below
``lo`` and a histogram of the values inside over ``bins`` equal bins (with
each bin's smallest and largest value); the caller keeps the range of the
bin where the cumulative weight reaches half, and once few rows remain in it
a last round ships those values themselves (:func:`median_round` does both).
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True}  # no fastmath: edges must be bit-exact


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
def _nearest_l1(X, C, labels, dist):  # pragma: no cover - compiled
    n, d = X.shape
    k = C.shape[0]
    for i in range(n):
        best, arg = np.inf, 0
        for j in range(k):
            s = 0.0
            for f in range(d):  # no early exit: the sum vectorises
                s += abs(np.float64(X[i, f]) - C[j, f])
            if s < best:
                best, arg = s, j
        labels[i], dist[i] = arg, best


@numba.njit(**_JIT)
def _cluster_bounds(X, w, labels, low, high, weights, rows):  # pragma: no cover
    n, d = X.shape
    unweighted = w.shape[0] == 0
    for i in range(n):
        wi = 1.0 if unweighted else w[i]
        j = labels[i]
        weights[j] += wi
        if wi == 0.0:
            continue
        rows[j] += 1
        for f in range(d):
            v = np.float64(X[i, f])
            low[j, f] = min(low[j, f], v)
            high[j, f] = max(high[j, f], v)


def nearest_l1(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's nearest center by L1 distance (ties to the lower
    index) and that distance.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    centers : ndarray of shape (k, d)

    Returns
    -------
    labels : ndarray of shape (n,), int32
    distances : ndarray of shape (n,), float64
    """
    labels = np.empty(len(X), dtype=np.int32)
    dist = np.empty(len(X))
    _nearest_l1(np.ascontiguousarray(X), np.ascontiguousarray(centers, dtype=np.float64),
                labels, dist)
    return labels, dist


def cluster_bounds(X: np.ndarray, w: np.ndarray | None, labels: np.ndarray, k: int,
                   ) -> tuple[np.ndarray, ...]:
    """Per cluster: total weight, rows of positive weight, and each feature's
    smallest and largest value among them (+inf / -inf when none).

    Returns
    -------
    weights : ndarray of shape (k,)
    rows : ndarray of shape (k,), int64
    low, high : ndarray of shape (k, d)
    """
    d = X.shape[1]
    weights, rows = np.zeros(k), np.zeros(k, dtype=np.int64)
    low, high = np.full((k, d), np.inf), np.full((k, d), -np.inf)
    _cluster_bounds(np.ascontiguousarray(X), np.empty(0) if w is None else w, labels, low,
                    high, weights, rows)
    return weights, rows, low, high


def l1_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """L1 distance from every row to every center, shape (n, k), float64."""
    X = np.asarray(X, dtype=np.float64)
    return np.abs(X[:, None, :] - np.asarray(centers, dtype=np.float64)[None]).sum(axis=2)


@numba.njit(**_JIT)
def edge(lo, hi, b, bins):  # pragma: no cover - compiled
    """Edge ``b`` of ``bins`` equal bins over ``[lo, hi)``."""
    return lo + (hi - lo) * b / bins


@numba.njit(**_JIT)
def _bin_of(v, lo, hi, bins):  # pragma: no cover - compiled
    b = min(max(int((v - lo) / (hi - lo) * bins), 0), bins - 1)
    while b > 0 and v < edge(lo, hi, b, bins):
        b -= 1
    while b < bins - 1 and v >= edge(lo, hi, b + 1, bins):
        b += 1
    return b


@numba.njit(**_JIT)
def _round(X, w, labels, lo, hi, mode, below, hist, count, low, high, pair, values, weights,
           fill):  # pragma: no cover - compiled
    n, d = X.shape
    bins = hist.shape[2]
    unweighted = w.shape[0] == 0
    m = 0
    for i in range(n):
        j = labels[i]
        wi = 1.0 if unweighted else w[i]
        if wi == 0.0:
            continue
        for f in range(d):
            how = mode[j, f]
            if how == 0:
                continue
            v = np.float64(X[i, f])
            if v < lo[j, f]:
                if not fill:
                    below[j, f] += wi
            elif v < hi[j, f]:
                if how == 2:  # ship the value (second call), count it (first)
                    if fill:
                        pair[m], values[m], weights[m] = j * d + f, v, wi
                    m += 1
                elif not fill:
                    b = _bin_of(v, lo[j, f], hi[j, f], bins)
                    hist[j, f, b] += wi
                    count[j, f, b] += 1
                    low[j, f, b] = min(low[j, f, b], v)
                    high[j, f, b] = max(high[j, f, b], v)
    return m


def median_round(X: np.ndarray, w: np.ndarray | None, labels: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray, narrow: np.ndarray, ship: np.ndarray, bins: int,
                 ) -> tuple[np.ndarray, ...]:
    """One narrowing round on a block, per (cluster, feature): the weight
    below ``lo``; for the ``narrow`` pairs, a histogram of the values in
    ``[lo, hi)`` with each bin's smallest and largest value (so the next
    interval is the values' own range, and a bin holding one repeated value
    ends the search); for the ``ship`` pairs, the values in ``[lo, hi)``
    themselves. Rows of zero weight are left out.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    w : ndarray of shape (n,) or None
    labels : ndarray of shape (n,)
    lo, hi : ndarray of shape (k, d), float64
    narrow, ship : ndarray of shape (k, d), bool, disjoint
    bins : int

    Returns
    -------
    below : ndarray of shape (k, d)
    weights, rows, low, high : ndarray of shape (k, d, bins)
        Each bin's weight, row count, smallest and largest value (+inf,
        -inf when empty).
    pair : ndarray of shape (m,), int64
        ``cluster * d + feature`` of each shipped value.
    values, value_weights : ndarray of shape (m,), float64
    """
    k, d = lo.shape
    mode = (narrow.astype(np.int8) + 2 * ship.astype(np.int8))
    below, hist = np.zeros((k, d)), np.zeros((k, d, bins))
    count = np.zeros((k, d, bins), dtype=np.int64)
    low, high = np.full((k, d, bins), np.inf), np.full((k, d, bins), -np.inf)
    X = np.ascontiguousarray(X)
    w = np.empty(0) if w is None else w
    none = np.empty(0)
    m = _round(X, w, labels, lo, hi, mode, below, hist, count, low, high,
               np.empty(0, np.int64), none, none, False)
    pair, values, weights = np.empty(m, np.int64), np.empty(m), np.empty(m)
    if m:
        _round(X, w, labels, lo, hi, mode, below, hist, count, low, high, pair, values,
               weights, True)
    return below, hist, count, low, high, pair, values, weights
