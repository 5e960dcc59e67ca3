"""The kernels the passes call on a block of any kind: dense (a numpy array)
or sparse (a ``scipy.sparse`` matrix, read as CSR), chosen by the block's
type. Each function has the contract of its dense counterpart."""

from __future__ import annotations

from typing import Any

import numpy as np

from dkmeans.kernels import assign, sampling, small, sparse
from dkmeans.kernels.sparse import is_sparse


def nearest(X: Any, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dkmeans.kernels.assign.nearest` of a dense or sparse block."""
    return sparse.csr_nearest(X, centers) if is_sparse(X) else assign.nearest(X, centers)


def lloyd_partials_far(X: Any, w: np.ndarray, centers: np.ndarray, m: int):
    """:func:`dkmeans.kernels.assign.lloyd_partials_far` of a dense or sparse block."""
    if is_sparse(X):
        return sparse.csr_lloyd_partials_far(X, w, centers, m)
    return assign.lloyd_partials_far(X, w, centers, m)


def lloyd_partials(X: Any, w: np.ndarray, centers: np.ndarray):
    """:func:`dkmeans.kernels.assign.lloyd_partials` of a dense or sparse block."""
    return lloyd_partials_far(X, w, centers, 0)[:3]


def stack(blocks: list) -> Any:
    """Blocks of rows one above the other: dense, or CSR if any is sparse."""
    if not any(is_sparse(b) for b in blocks):
        return np.concatenate(blocks)
    return sparse.sp.vstack([sparse.sp.csr_matrix(b) for b in blocks], format="csr")


#: In-memory rows with fewer non-zeros than this share of their values are
#: worth holding as CSR (:func:`compact`).
SPARSE_ROWS = 0.1


def compact(rows: Any) -> Any:
    """In-memory rows by what they hold, whatever their format: CSR when they
    are many and mostly zeros, for what then costs their non-zeros instead
    of their width (the silhouette of a 5,000-row sample of 6,000 terms: 3 s
    a k dense); else dense."""
    size = rows.shape[0] * rows.shape[1]
    nonzero = rows.nnz if is_sparse(rows) else np.count_nonzero(rows)
    if size < 100_000 or nonzero >= SPARSE_ROWS * size:
        return dense(rows)
    return sparse.as_csr(rows) if is_sparse(rows) else sparse.sp.csr_matrix(rows)


def column_scan(X: Any) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`dkmeans.kernels.small.column_scan` of a dense or sparse block."""
    return sparse.csr_column_scan(X) if is_sparse(X) else small.column_scan(X)


def row_sqdist_to(X: Any, M: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Squared distance (n,), float64, from each row of a dense or sparse
    block to its own row of ``M`` (row i to ``M[which[i]]``)."""
    if is_sparse(X):
        return sparse.csr_row_sqdist_to(X, M, which)
    diff = X - M[which]
    return np.einsum("ij,ij->i", diff, diff)


def first_nonfinite_row(X: Any) -> int:
    """:func:`dkmeans.kernels.small.first_nonfinite_row` of a dense or sparse block."""
    return sparse.csr_column_scan(X)[0] if is_sparse(X) else small.first_nonfinite_row(X)


def sqdist(X: Any, C: np.ndarray) -> np.ndarray:
    """Squared distances (n, k), float64, from a dense or sparse block's rows."""
    return sparse.csr_sqdist(X, C) if is_sparse(X) else small.sqdist(X, C)


def pairwise_distances(X: Any, centers: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, k) from a dense or sparse block's rows, in its dtype."""
    if not is_sparse(X):
        return assign.pairwise_distances(X, centers)
    return np.sqrt(sparse.csr_sqdist(X, centers)).astype(X.dtype, copy=False)


def rows(X: Any, pos: np.ndarray) -> np.ndarray:
    """Rows ``pos`` of a block as a new dense array (a few: drawn rows that
    become centers)."""
    return dense(take(X, pos))


def take(X: Any, pos: np.ndarray) -> Any:
    """Rows ``pos`` of a block, copied: CSR from a sparse block (a few of
    its non-zeros, where dense rows would be its whole width), else dense."""
    return sparse.as_csr(X)[pos] if is_sparse(X) else X[pos].copy()


def dense(rows: Any) -> np.ndarray:
    """Rows as a dense array (CSR rows made dense; dense ones as they are)."""
    return rows.toarray() if is_sparse(rows) else rows


def seed_round_partials(X: Any, w: np.ndarray, state: tuple | None, centers: np.ndarray,
                        center_offset: int, key: np.ndarray, start: int, m: int):
    """:func:`dkmeans.kernels.sampling.seed_round_partials` of a dense or
    sparse block: the same running state, cost and draw (the race of
    :func:`~dkmeans.kernels.sampling.race_top_m` on weight x D^2)."""
    if not is_sparse(X):
        return sampling.seed_round_partials(X, w, state, centers, center_offset, key, start, m)
    n = X.shape[0]
    if state is None:
        mind, arg = np.full(n, np.inf, dtype=X.dtype), np.zeros(n, dtype=np.int32)
    else:
        mind, arg = state[0].copy(), state[1].copy()
    if len(centers):
        labels, d2 = sparse.csr_nearest(X, centers)
        closer = d2 < mind
        mind[closer] = d2[closer]
        arg[closer] = labels[closer] + center_offset
    weight = mind.astype(np.float64)
    if w.shape[0]:
        weight *= w
    pos, keys = sampling.race_top_m(key, start, weight, m)
    return (mind, arg), float(weight.sum()), pos, keys
