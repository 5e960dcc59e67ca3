"""The assignment kernels on one CSR block: sparse rows, dense centers.

A block of TF-IDF or hashed text has tens of thousands of columns and a few
dozen non-zeros a row; it is never made dense. Each row's products with
every center come from its non-zeros alone (``x . c`` as a sparse-dense
product, k products per non-zero, over the centers transposed to (d, k) so
the inner loop is contiguous); the nearest center is the argmin of
``|c|^2 - 2 x . c``, as for dense blocks (:mod:`~dkmeans.kernels.assign`),
and the squared distance to it is then recomputed in float64 from the
non-zeros and the center's norm::

    |x - c|^2 = sum over non-zeros of (x_j - c_j)^2 + |c|^2 - sum over non-zeros of c_j^2

Sums go into dense (k, d) float64 centers. Memory per call: the block's
non-zeros, the centers transposed in the block's dtype and their float64
sums (k x d each), and k products.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from dkmeans.kernels.assign import FAST, sqnorms
from dkmeans.kernels.small import keep_far


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a ``scipy.sparse`` matrix or array."""
    return sp.issparse(X)


def as_csr(X: Any) -> sp.csr_matrix:
    """``X`` as CSR with sorted, summed indices (CSC and COO converted once)."""
    X = X.tocsr() if X.format != "csr" else X
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


@numba.njit(**FAST)
def _sqdist_nonzeros(data, indices, lo, hi, center, sqnorm):  # pragma: no cover - compiled
    """Exact squared distance, float64, from a CSR row (non-zeros ``lo:hi``)
    to ``center`` (d,) of squared norm ``sqnorm``: its norm, corrected where
    the row is not 0."""
    dist = sqnorm
    for p in range(lo, hi):
        x = np.float64(data[p])
        cj = np.float64(center[indices[p]])
        dist += (x - cj) * (x - cj) - cj * cj
    return max(dist, 0.0)


@numba.njit(**FAST)
def _nearest_row(data, indices, lo, hi, centers_t, norms, prod):  # pragma: no cover - compiled
    """The nearest center of one CSR row (ties to the lowest index) and the
    exact squared distance to it."""
    k = centers_t.shape[1]
    for c in range(k):
        prod[c] = 0.0
    for p in range(lo, hi):
        v = data[p]
        j = indices[p]
        for c in range(k):
            prod[c] += v * centers_t[j, c]
    lab = 0
    c_sqnorm, exact_sqnorm = norms
    best = c_sqnorm[0] - 2 * prod[0]
    for c in range(1, k):
        v = c_sqnorm[c] - 2 * prod[c]
        if v < best:
            best, lab = v, c
    # from the rows of centers_t the products just read (in cache)
    return lab, _sqdist_nonzeros(data, indices, lo, hi, centers_t[:, lab], exact_sqnorm[lab])


@numba.njit(**FAST)
def _nearest_impl(data, indices, indptr, centers_t, norms, labels, d2):  # pragma: no cover
    prod = np.empty(centers_t.shape[1], dtype=centers_t.dtype)
    for i in range(indptr.shape[0] - 1):
        labels[i], d2[i] = _nearest_row(data, indices, indptr[i], indptr[i + 1], centers_t,
                                        norms, prod)


@numba.njit(**FAST)
def _lloyd_impl(data, indices, indptr, w, centers_t, norms, sums, wsums, far_keys, far_pos,
                far_lab):  # pragma: no cover - compiled
    prod = np.empty(centers_t.shape[1], dtype=centers_t.dtype)
    unweighted = w.shape[0] == 0
    m = far_keys.shape[0]
    inertia = 0.0
    for i in range(indptr.shape[0] - 1):
        lo, hi = indptr[i], indptr[i + 1]
        c, dist = _nearest_row(data, indices, lo, hi, centers_t, norms, prod)
        wi = 1.0 if unweighted else np.float64(w[i])
        for p in range(lo, hi):
            sums[c, indices[p]] += wi * data[p]
        wsums[c] += wi
        inertia += wi * dist
        if m > 0 and wi > 0.0 and dist > far_keys[m - 1]:
            keep_far(far_keys, far_pos, far_lab, dist, i, c)
    return inertia


def _centers(centers: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, tuple]:
    """Centers in the block's dtype, transposed (d, k), and their squared
    norms: in that dtype for the argmin, computed as the dense kernels do
    (:func:`~dkmeans.kernels.assign.sqnorms`: a row orthogonal to every
    center is at equal distances, and then the same center wins), and in
    float64 for the exact distance.

    Transposed, a non-zero's k products read one contiguous row, and the
    exact distance then reads the same rows again while they are in cache.
    Nearest centers of 200,000 float32 rows of ~13 non-zeros in 20,000
    columns, k = 50, one thread: 57-75 ms; 74-81 ms with the exact distance
    read from float64 (k, d) centers; 107-128 ms with the products also
    summed in float64 (the argmin, as for dense blocks, is in X's dtype).
    """
    c = np.ascontiguousarray(centers, dtype=dtype)
    c_t = np.ascontiguousarray(c.T)
    return c_t, (sqnorms(c), np.einsum("ij,ij->i", c, c, dtype=np.float64))


def csr_nearest(X: Any, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and exact squared distance to the nearest center of every
    row of a sparse block.

    Parameters
    ----------
    X : scipy.sparse matrix of shape (n, d)
    centers : ndarray of shape (k, d)

    Returns
    -------
    labels : ndarray of shape (n,), int32
        Ties go to the lowest index.
    d2 : ndarray of shape (n,), float64
    """
    X = as_csr(X)
    labels = np.empty(X.shape[0], dtype=np.int32)
    d2 = np.empty(X.shape[0])
    _nearest_impl(X.data, X.indices, X.indptr, *_centers(centers, X.dtype), labels, d2)
    return labels, d2


def csr_lloyd_partials_far(X: Any, w: np.ndarray, centers: np.ndarray, m: int):
    """One Lloyd step's partial results on a sparse block, and its ``m`` rows
    of positive weight farthest from their centers: the contract of
    :func:`dkmeans.kernels.lloyd_partials_far` for dense blocks.

    Parameters
    ----------
    X : scipy.sparse matrix of shape (n, d)
    w : ndarray of shape (n,) or (0,)
        Sample weights; empty means unit weights.
    centers : ndarray of shape (k, d)
    m : int

    Returns
    -------
    sums : ndarray of shape (k, d), float64
    wsums : ndarray of shape (k,), float64
    inertia : float
    far : (positions, squared distances, labels)
        At most ``m`` rows, farthest first, ties to the earlier row.
    """
    X = as_csr(X)
    c_t, norms = _centers(centers, X.dtype)
    d, k = c_t.shape
    sums, wsums = np.zeros((k, d)), np.zeros(k)
    keys, pos, lab = np.zeros(m), np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int32)
    inertia = _lloyd_impl(X.data, X.indices, X.indptr, w, c_t, norms, sums, wsums, keys,
                          pos, lab)
    found = keys > 0
    return sums, wsums, float(inertia), (pos[found], keys[found], lab[found])


@numba.njit(**FAST)
def _row_sqnorms(data, indptr, out):  # pragma: no cover - compiled
    for i in range(indptr.shape[0] - 1):
        total = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            v = np.float64(data[p])
            total += v * v
        out[i] = total


def csr_row_sqnorms(X: Any) -> np.ndarray:
    """Squared norm of every row of a sparse block, float64, shape (n,)."""
    X = as_csr(X)
    out = np.empty(X.shape[0])
    _row_sqnorms(X.data, X.indptr, out)
    return out


@numba.njit(**FAST)
def _column_scan(data, indices, indptr, d, mean, m2, max_abs):  # pragma: no cover - compiled
    n = indptr.shape[0] - 1
    sums = np.zeros(d)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            if not np.isfinite(v):
                return i
            sums[indices[p]] += v
            a = abs(np.float64(v))
            if a > max_abs[indices[p]]:
                max_abs[indices[p]] = a
    for j in range(d):
        mean[j] = sums[j] / n
        m2[j] = n * mean[j] * mean[j]  # every row's (0 - mean)^2 ...
    for p in range(data.shape[0]):  # ... corrected where the row is not 0
        j = indices[p]
        c = np.float64(data[p]) - mean[j]
        m2[j] += c * c - mean[j] * mean[j]
    return -1


def csr_column_scan(X: Any) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`dkmeans.kernels.column_scan` of a sparse block, from its
    non-zeros alone: the first row holding NaN or infinity (or -1), column
    means, centred sums of squares and largest absolute values (float64)."""
    X = as_csr(X)
    d = X.shape[1]
    mean, m2, max_abs = np.zeros(d), np.zeros(d), np.zeros(d)
    bad = _column_scan(X.data, X.indices, X.indptr, d, mean, m2, max_abs)
    return int(bad), mean, np.maximum(m2, 0.0), max_abs


def csr_sqdist(X: Any, C: np.ndarray) -> np.ndarray:
    """Squared distances (n, k), float64, from a sparse block's rows to ``C``."""
    X = as_csr(X)
    C = np.asarray(C, dtype=np.float64)
    d2 = (csr_row_sqnorms(X)[:, None] - 2.0 * np.asarray(X @ C.T, dtype=np.float64)
          + np.einsum("ij,ij->i", C, C)[None, :])
    return np.maximum(d2, 0.0)


@numba.njit(**FAST)
def _row_sqdist_to(data, indices, indptr, which, M, m_sqnorm, out):  # pragma: no cover
    for i in range(indptr.shape[0] - 1):
        c = which[i]
        out[i] = _sqdist_nonzeros(data, indices, indptr[i], indptr[i + 1], M[c], m_sqnorm[c])


def csr_row_sqdist_to(X: Any, M: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Squared distance (n,), float64, from each row of a sparse block to
    its own row of ``M`` (row i to ``M[which[i]]``), from its non-zeros."""
    X = as_csr(X)
    M = np.ascontiguousarray(M, dtype=np.float64)
    out = np.empty(X.shape[0])
    _row_sqdist_to(X.data, X.indices, X.indptr, np.asarray(which, dtype=np.int64), M,
                   np.einsum("ij,ij->i", M, M), out)
    return out


def csr_group_moments(X: Any, which: np.ndarray, n_groups: int,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row count, mean (float64) and sum of squared distances to the mean of
    each group of rows of a sparse block (``which`` (n,) gives each row's
    group, 0 to ``n_groups - 1``)."""
    X = as_csr(X)
    counts = np.bincount(which, minlength=n_groups).astype(np.float64)
    member = sp.csr_matrix((np.ones(X.shape[0]), (which, np.arange(X.shape[0]))),
                           shape=(n_groups, X.shape[0]))
    means = np.asarray((member @ X.astype(np.float64)).todense()) / np.maximum(counts, 1.0)[
        :, None]
    m2 = np.bincount(which, weights=csr_row_sqdist_to(X, means, which), minlength=n_groups)
    return counts, means, m2
