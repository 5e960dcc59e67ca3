"""Small kernels: validity, moments and bounds of columns, top-m, exact
squared distances."""

from __future__ import annotations

import numba
import numpy as np


def first_nonfinite_row(X: np.ndarray) -> int:
    """Position of the first row holding NaN or infinity, or -1 if none."""
    # A sum is finite exactly when every term is, and costs one read of X;
    # only a non-finite block pays for the row-by-row search.
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(X.sum(dtype=np.float64)):
            return -1
    bad = ~np.isfinite(X).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else -1


def moments(X: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Row count, column means and centred sums of squares (float64).

    The triple merges exactly across blocks (Chan et al.), see
    :func:`merge_moments`.
    """
    n = X.shape[0]
    if n == 0:
        d = X.shape[1]
        return 0, np.zeros(d), np.zeros(d)
    mean = X.mean(axis=0, dtype=np.float64)
    centred = X - mean.astype(X.dtype)
    m2 = np.einsum("ij,ij->j", centred, centred, dtype=np.float64)
    return n, mean, m2


@numba.njit(nogil=True, cache=True)
def _column_scan(X, mean, m2, max_abs):  # pragma: no cover - compiled
    n, d = X.shape
    sums = np.zeros(d)
    for i in range(n):
        for j in range(d):
            v = X[i, j]
            if not np.isfinite(v):
                return i
            sums[j] += v
            a = abs(np.float64(v))
            if a > max_abs[j]:
                max_abs[j] = a
    for j in range(d):
        mean[j] = sums[j] / n
    centre = mean.astype(X.dtype)  # centred in X's dtype, as moments() does
    for i in range(n):
        for j in range(d):
            c = np.float64(X[i, j] - centre[j])
            m2[j] += c * c
    return -1


def column_scan(X: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """One compiled read of a block: validity, :func:`moments` and the
    largest absolute value of each column.

    Parameters
    ----------
    X : ndarray of shape (n, d), n >= 1, float32 or float64

    Returns
    -------
    bad_row : int
        Position of the first row holding NaN or infinity, or -1 (then the
        other outputs are not meaningful).
    mean, m2, max_abs : ndarray of shape (d,), float64
        Column means, centred sums of squares and largest absolute values.
    """
    d = X.shape[1]
    mean, m2, max_abs = np.zeros(d), np.zeros(d), np.zeros(d)
    bad = _column_scan(np.ascontiguousarray(X), mean, m2, max_abs)
    return int(bad), mean, m2, max_abs


def merge_moments(a: tuple, b: tuple) -> tuple[int, np.ndarray, np.ndarray]:
    """Merge two :func:`moments` triples (numerically stable pairwise update)."""
    na, mean_a, m2_a = a
    nb, mean_b, m2_b = b
    n = na + nb
    if na == 0 or nb == 0:
        return a if nb == 0 else b
    delta = mean_b - mean_a
    mean = mean_a + delta * (nb / n)
    m2 = m2_a + m2_b + delta**2 * (na * nb / n)
    return n, mean, m2


def top_m(keys: np.ndarray, m: int) -> np.ndarray:
    """Positions of the m largest positive keys, largest first, ties by position
    (the farthest rows; random draws use :func:`dkmeans.sampling.race_top_m`)."""
    positive = np.flatnonzero(keys > 0)
    if positive.size > m:
        if m == 0:
            return positive[:0]
        values = keys[positive]
        cut = -np.partition(-values, m - 1)[m - 1]  # the m-th largest
        # of the keys equal to it, those at the lowest positions (a partition
        # alone picks any of them, and the chunking would change the draw)
        above, tied = positive[values > cut], positive[values == cut]
        positive = np.sort(np.concatenate([above, tied[: m - above.size]]))
    # positions ascend, so a stable sort breaks ties by position
    return positive[np.argsort(-keys[positive], kind="stable")]


def sqdist(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    d2 = (np.einsum("ij,ij->i", X, X, dtype=np.float64)[:, None]
          - 2.0 * (X.astype(np.float64) @ C.astype(np.float64).T)
          + np.einsum("ij,ij->i", C, C, dtype=np.float64)[None, :])
    return np.maximum(d2, 0.0)


def unit_length(centers: np.ndarray) -> np.ndarray:
    """Rows scaled to Euclidean length 1 (zero rows stay zero), same dtype."""
    norms = np.sqrt((centers.astype(np.float64) ** 2).sum(axis=1))
    norms[norms == 0] = 1.0
    return (centers / norms[:, None]).astype(centers.dtype)


@numba.njit(nogil=True, cache=True)
def keep_far(far_keys, far_pos, far_lab, dist, row, c):  # pragma: no cover - compiled
    """Insert a row into the ranked farthest rows if it is farther than the
    last (ranked by distance, largest first; a tie keeps the earlier row)."""
    p = far_keys.shape[0] - 1
    while p > 0 and far_keys[p - 1] < dist:
        far_keys[p], far_pos[p], far_lab[p] = far_keys[p - 1], far_pos[p - 1], far_lab[p - 1]
        p -= 1
    far_keys[p], far_pos[p], far_lab[p] = dist, row, c
