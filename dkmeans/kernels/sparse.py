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

from dkmeans.kernels.assign import FAST
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
def _nearest_row(data, indices, lo, hi, centers_t, c_sqnorm, prod):  # pragma: no cover - compiled
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
    best = c_sqnorm[0] - 2.0 * prod[0]
    for c in range(1, k):
        v = c_sqnorm[c] - 2.0 * prod[c]
        if v < best:
            best, lab = v, c
    # from the rows of centers_t the products just read (in cache)
    dist = c_sqnorm[lab]
    for p in range(lo, hi):
        x = np.float64(data[p])
        cj = np.float64(centers_t[indices[p], lab])
        dist += (x - cj) * (x - cj) - cj * cj
    return lab, max(dist, 0.0)


@numba.njit(**FAST)
def _nearest_impl(data, indices, indptr, centers_t, c_sqnorm, labels, d2):  # pragma: no cover
    prod = np.empty(centers_t.shape[1], dtype=centers_t.dtype)
    for i in range(indptr.shape[0] - 1):
        labels[i], d2[i] = _nearest_row(data, indices, indptr[i], indptr[i + 1], centers_t,
                                        c_sqnorm, prod)


@numba.njit(**FAST)
def _lloyd_impl(data, indices, indptr, w, centers_t, c_sqnorm, sums, wsums, far_keys, far_pos,
                far_lab):  # pragma: no cover - compiled
    prod = np.empty(centers_t.shape[1], dtype=centers_t.dtype)
    unweighted = w.shape[0] == 0
    m = far_keys.shape[0]
    inertia = 0.0
    for i in range(indptr.shape[0] - 1):
        lo, hi = indptr[i], indptr[i + 1]
        c, dist = _nearest_row(data, indices, lo, hi, centers_t, c_sqnorm, prod)
        wi = 1.0 if unweighted else np.float64(w[i])
        for p in range(lo, hi):
            sums[c, indices[p]] += wi * data[p]
        wsums[c] += wi
        inertia += wi * dist
        if m > 0 and wi > 0.0 and dist > far_keys[m - 1]:
            keep_far(far_keys, far_pos, far_lab, dist, i, c)
    return inertia


def _centers(centers: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Centers in the block's dtype, transposed (d, k), and their squared
    norms summed in float64 (the dense kernels' :func:`~dkmeans.kernels.assign.prepare_centers`).

    Transposed, a non-zero's k products read one contiguous row, and the
    exact distance then reads the same rows again while they are in cache.
    Nearest centers of 200,000 float32 rows of ~13 non-zeros in 20,000
    columns, k = 50, one thread: 57-75 ms; 74-81 ms with the exact distance
    read from float64 (k, d) centers; 107-128 ms with the products also
    summed in float64 (the argmin, as for dense blocks, is in X's dtype).
    """
    c_t = np.ascontiguousarray(np.asarray(centers).T, dtype=dtype)
    return c_t, np.einsum("ij,ij->j", c_t, c_t, dtype=np.float64)


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
    c_t, c_sqnorm = _centers(centers, X.dtype)
    d, k = c_t.shape
    sums, wsums = np.zeros((k, d)), np.zeros(k)
    keys, pos, lab = np.zeros(m), np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int32)
    inertia = _lloyd_impl(X.data, X.indices, X.indptr, w, c_t, c_sqnorm, sums, wsums, keys,
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
