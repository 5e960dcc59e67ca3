"""The assignment kernels: GEMM + argmin + fused sums on one in-memory block.

Nothing here imports dask. Every function takes plain arrays and returns plain
arrays or small value objects, so each one is tested against a brute-force
numpy oracle (``tests/test_kernels.py``).

Conventions
-----------
- ``X`` is a C-contiguous ``(n, d)`` float32 or float64 block.
- ``w`` is a ``(n,)`` array of sample weights, or an empty array meaning "every
  weight is 1" (so the unweighted case costs nothing extra).
- Sums, weights and inertia are accumulated in float64 whatever X's dtype, so
  results do not depend on how the rows are chunked.
- Distances used to *choose* the nearest center come from a GEMM
  (``|c|^2 - 2 x.c``) in X's dtype, as scikit-learn does; the squared distance
  to the chosen center is then recomputed exactly as ``sum((x - c)^2)`` so that
  inertia does not suffer the cancellation of the GEMM trick.
"""

from __future__ import annotations

import numba
import numpy as np

from dkmeans.kernels.small import keep_far, sqdist

# Bytes of rows per GEMM block inside a kernel: the block and its products
# stay in L2 cache while the argmin, the exact distances and the sums re-read
# them, and no (n, k) matrix is ever made. On D1 (d=32, float32) 2,048 rows
# ran 8% faster than 1,024 and as fast as 4,096.
BLOCK_BYTES = 1 << 18
MIN_BLOCK_ROWS, MAX_BLOCK_ROWS = 256, 4096

# The block's products are computed rows-first, (rows, d) @ (d, k), for
# 16 <= d < 128 and k <= min(16, d / 2); else centers-first, (k, d) @ (d,
# rows). Measured with OpenBLAS on one core, the whole assignment (GEMM,
# argmin, exact distance), rows-first time over centers-first:
#
#   d \ k   4     8     16    32    64    128
#   4      1.50  1.60  1.87  2.15  2.47  2.81
#   16     0.76  0.84  1.22  1.48  1.75  2.09
#   32     0.56  0.57  0.78  1.18  1.38  1.62
#   64     0.79  0.76  0.97  1.20  1.30  1.39
#   128    1.17  1.08  1.09  1.16  1.20  1.24
#
# (rows-first, each row's k products are contiguous and its argmin is a
# scalar loop; centers-first, the argmin runs across rows and vectorises.)
ROWS_FIRST_D = (16, 128)
ROWS_FIRST_MAX_K = 16


def rows_first(d: int, k: int) -> bool:
    """Whether the kernels compute a block's products rows-first."""
    return ROWS_FIRST_D[0] <= d < ROWS_FIRST_D[1] and k <= min(ROWS_FIRST_MAX_K, d // 2)


def block_rows(d: int, itemsize: int) -> int:
    """Rows per GEMM block for rows of ``d`` features of ``itemsize`` bytes."""
    return int(min(MAX_BLOCK_ROWS, max(MIN_BLOCK_ROWS, BLOCK_BYTES // max(d * itemsize, 1))))


JIT = {"nogil": True, "cache": True}
# Reassociation lets LLVM vectorise the per-row reductions (the exact squared
# distance and the sums): the Lloyd kernel on 125,000 rows of D1 went from 4.6
# to 3.4 ms on one core. No "nnan"/"ninf": the
# results stay IEEE-correct for any finite input, and deterministic for a
# given build whatever the chunking or thread.
FAST = {**JIT, "fastmath": {"reassoc", "contract", "nsz"}}


@numba.njit(**FAST)
def row_sqdist(X, row, centers, c):  # pragma: no cover - compiled
    """Exact squared distance from ``X[row]`` to ``centers[c]``, in float64."""
    dist = 0.0
    for f in range(X.shape[1]):
        diff = np.float64(X[row, f]) - np.float64(centers[c, f])
        dist += diff * diff
    return dist


@numba.njit(**FAST)
def bound_holds(dist, half_sep_a, lower, c_norm_a, err_scale, cmax2):  # pragma: no cover
    """Whether a row at squared distance ``dist`` from its center ``a`` provably
    keeps it: every other center is at least ``max(2 half_sep_a - u, lower)``
    away, by more than the GEMM's rounding could hide (|x| <= u + |c_a|)."""
    u = np.sqrt(dist)
    bound = max(2.0 * half_sep_a - u, lower)
    return bound > 0.0 and bound * bound - dist > err_scale * ((u + c_norm_a) ** 2 + cmax2)


def gemm_buffer(X: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    """Scratch space for one block's products, made once per call, and
    whether they are computed rows-first: (rows, k) or else (k, rows)."""
    rows = block_rows(X.shape[1], X.dtype.itemsize)
    first = rows_first(X.shape[1], k)
    return np.empty((rows, k) if first else (k, rows), dtype=X.dtype), first


@numba.njit(**FAST)
def block_step(buf, rows_first):  # pragma: no cover - compiled
    """Rows per block of a kernel using ``buf`` (see :func:`gemm_buffer`)."""
    return buf.shape[0] if rows_first else buf.shape[1]


@numba.njit(**FAST)
def gemm_block(rows, centers, centers_t, buf, rows_first):  # pragma: no cover - compiled
    """``rows @ centers_t`` or ``centers @ rows.T``, into ``buf`` (or, rows-first,
    its first rows). Two GEMM calls, not four: numba compiles each one, and
    the first fit in a fresh environment waits for it (the assignment kernel
    compiled in 1.6 s with four, 1.2 s with two).

    Not a fresh array per block: distributed's workers set glibc's
    MALLOC_TRIM_THRESHOLD_, which also freezes its mmap threshold at 128 KiB,
    so a (32, 1024) float32 product was mapped, faulted in and unmapped for
    every block (measured in a worker: a 500,000-row Lloyd task took 56 ms
    instead of 26, and a streamed Lloyd pass ran at 0.75 x a raw read).
    """
    m = rows.shape[0]
    if rows_first:
        out = buf[:m]
        np.dot(rows, centers_t, out)
        return out
    # a short last block gets its own (k, m) array: buf[:, :m] is not contiguous
    out = buf if m == buf.shape[1] else np.empty((buf.shape[0], m), dtype=buf.dtype)
    np.dot(centers, rows.T, out)
    return out


@numba.njit(**FAST)
def assign_block(X, centers, centers_t, c_sqnorm, start, stop, labels, buf,
                  rows_first):  # pragma: no cover - compiled
    """Nearest center (GEMM + argmin of the products) of rows ``start:stop``,
    into ``labels[:stop - start]``; ties keep the lowest index."""
    k = centers.shape[0]
    b = stop - start
    # (_search_rows has the same loops plus the second-best center; kept
    # apart so this hot loop of every Lloyd pass does not pay for it.)
    g = gemm_block(X[start:stop], centers, centers_t, buf, rows_first)
    if rows_first:
        # each row's k products are contiguous
        for i in range(b):
            best = c_sqnorm[0] - 2 * g[i, 0]
            lab = 0
            for j in range(1, k):
                v = c_sqnorm[j] - 2 * g[i, j]
                if v < best:
                    best = v
                    lab = j
            labels[i] = lab
        return
    # (k, b): the argmin runs along rows, where it vectorises
    best_v = c_sqnorm[0] - 2 * g[0]
    for i in range(b):
        labels[i] = 0
    for j in range(1, k):
        cj = c_sqnorm[j]
        for i in range(b):
            v = cj - 2 * g[j, i]
            if v < best_v[i]:
                best_v[i] = v
                labels[i] = j


@numba.njit(**FAST)
def nearest_impl(X, centers, centers_t, c_sqnorm, labels, d2, buf,
                  rows_first):  # pragma: no cover - compiled
    step = block_step(buf, rows_first)
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        assign_block(X, centers, centers_t, c_sqnorm, start, stop, labels[start:stop], buf,
                      rows_first)
        for row in range(start, stop):
            d2[row] = row_sqdist(X, row, centers, labels[row])


@numba.njit(**FAST)
def accumulate_block(X, w, centers, labels, d2, start, stop, sums, wsums, far_keys,
                      far_pos, far_lab):  # pragma: no cover - compiled
    """Add rows ``start:stop`` (labelled ``labels[:stop - start]``) to the
    sums and weights; return their inertia.

    The exact squared distances come from ``d2[:stop - start]``, or when
    ``d2`` is empty are computed here, in the loop that reads each row for
    its sum (one read of the row instead of two). ``far_*`` (m,), unless
    empty, keep the m rows of positive weight farthest from their center
    (keys start at 0: only positive distances enter), as
    :data:`~dkmeans.passes.FAR_ROWS` ranks them.
    """
    d = X.shape[1]
    unweighted = w.shape[0] == 0
    given = d2.shape[0] > 0
    m = far_keys.shape[0]
    inertia = 0.0
    for row in range(start, stop):
        c = labels[row - start]
        wi = 1.0 if unweighted else np.float64(w[row])
        if given:
            dist = d2[row - start]
            for f in range(d):
                sums[c, f] += wi * X[row, f]
        else:
            dist = 0.0
            for f in range(d):
                x = np.float64(X[row, f])
                diff = x - np.float64(centers[c, f])
                dist += diff * diff
                sums[c, f] += wi * x
        inertia += wi * dist
        wsums[c] += wi
        if m > 0 and wi > 0.0 and dist > far_keys[m - 1]:
            keep_far(far_keys, far_pos, far_lab, dist, row, c)
    return inertia


@numba.njit(**FAST)
def lloyd_impl(X, w, centers, centers_t, c_sqnorm, sums, wsums, buf, rows_first,
                far_keys, far_pos, far_lab):  # pragma: no cover - compiled
    n = X.shape[0]
    inertia = 0.0
    step = block_step(buf, rows_first)
    # One block's labels and distances, not the chunk's: a chunk-sized array
    # per call is mapped and faulted in afresh each time once glibc returns
    # freed memory to the OS (distributed's workers make it), which cost 10
    # of 59 ms per D1 pass on one core.
    labels = np.empty(step, dtype=np.int32)
    no_d2 = np.empty(0, dtype=np.float64)
    for start in range(0, n, step):
        stop = min(start + step, n)
        assign_block(X, centers, centers_t, c_sqnorm, start, stop, labels, buf, rows_first)
        # accumulate while the block is still in cache
        inertia += accumulate_block(X, w, centers, labels, no_d2, start, stop, sums, wsums,
                                     far_keys, far_pos, far_lab)
    return inertia


@numba.njit(**FAST)
def sqnorms(centers):  # pragma: no cover - compiled
    """Squared norms of the rows, summed in float64, in the rows' dtype (one
    definition for the per-pass kernels and the compiled local loops)."""
    out = np.empty(centers.shape[0], dtype=centers.dtype)
    for c in range(centers.shape[0]):
        total = 0.0
        for f in range(centers.shape[1]):
            v = np.float64(centers[c, f])
            total += v * v
        out[c] = total
    return out


def prepare_centers(centers: np.ndarray, dtype: np.dtype):
    """Centers in X's dtype, also transposed (d, k) for the GEMM, and their
    squared norms."""
    c = np.ascontiguousarray(centers, dtype=dtype)
    return c, np.ascontiguousarray(c.T), sqnorms(c)


def nearest(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and exact squared distance to the nearest center of every row.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    centers : ndarray of shape (k, d)

    Returns
    -------
    labels : ndarray of shape (n,), int32
        Index of the nearest center; ties go to the lowest index.
    d2 : ndarray of shape (n,), float64
        Squared Euclidean distance to that center.
    """
    X = np.ascontiguousarray(X)
    c, c_t, c_sqnorm = prepare_centers(centers, X.dtype)
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int32)
    d2 = np.empty(n, dtype=np.float64)
    nearest_impl(X, c, c_t, c_sqnorm, labels, d2, *gemm_buffer(X, len(c)))
    return labels, d2


def nearest_two(X: np.ndarray, centers: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest center of every row, and the exact squared distances to
    it and to the second nearest.

    The second nearest is chosen from float64 products (``|c|^2 - 2 x.c``)
    in blocks of rows (no (n, k) matrix for the whole block), then its
    distance is recomputed exactly.

    Returns
    -------
    labels : ndarray of shape (n,), int32
    d1, d2 : ndarray of shape (n,), float64
        ``d2`` is inf when there is one center.
    """
    labels, d1 = nearest(X, centers)
    n, k = X.shape[0], len(centers)
    d2 = np.full(n, np.inf)
    c = np.asarray(centers, dtype=np.float64)
    step = max(1, (1 << 20) // max(k, 1))  # a (rows, k) float64 block of 8 MB
    for start in range(0, n if k > 1 else 0, step):
        x = np.asarray(X[start : start + step], dtype=np.float64)
        g = sqdist(x, c)
        g[np.arange(len(x)), labels[start : start + step]] = np.inf
        second = g.argmin(axis=1)
        d2[start : start + step] = ((x - c[second]) ** 2).sum(axis=1)
    return labels, d1, d2


def lloyd_partials(X: np.ndarray, w: np.ndarray, centers: np.ndarray):
    """One Lloyd step's partial results on one block, in a single fused pass.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    w : ndarray of shape (n,) or (0,)
        Sample weights; empty means unit weights.
    centers : ndarray of shape (k, d)

    Returns
    -------
    sums : ndarray of shape (k, d), float64
        Weighted sum of the rows nearest to each center.
    wsums : ndarray of shape (k,), float64
        Total weight nearest to each center.
    inertia : float
        Weighted sum of squared distances to the nearest center.
    """
    sums, wsums, inertia, _ = lloyd_partials_far(X, w, centers, 0)
    return sums, wsums, inertia


def lloyd_partials_far(X: np.ndarray, w: np.ndarray, centers: np.ndarray, m: int):
    """:func:`lloyd_partials`, also keeping the ``m`` rows of positive weight
    farthest from their nearest center, found in the same pass: the rows
    empty clusters move onto, without another pass over the data.

    Returns
    -------
    sums, wsums, inertia
        As :func:`lloyd_partials`.
    far : (positions, squared distances, labels)
        At most ``m`` rows, farthest first, ties to the earlier row (as
        :func:`~dkmeans.kernels.small.top_m` ranks them); positions in X.
    """
    X = np.ascontiguousarray(X)
    c, c_t, c_sqnorm = prepare_centers(centers, X.dtype)
    k, d = c.shape[0], X.shape[1]
    sums, wsums = np.zeros((k, d)), np.zeros(k)
    keys, pos, lab = np.zeros(m), np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int32)
    inertia = lloyd_impl(X, w, c, c_t, c_sqnorm, sums, wsums, *gemm_buffer(X, k), keys, pos,
                         lab)
    found = keys > 0
    return sums, wsums, float(inertia), (pos[found], keys[found], lab[found])


def pairwise_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distances from every row to every center, in X's dtype.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    centers : ndarray of shape (k, d)

    Returns
    -------
    ndarray of shape (n, k)
    """
    c = np.asarray(centers, dtype=X.dtype)
    d2 = np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * (X @ c.T)
    d2 += np.einsum("ij,ij->i", c, c)[None, :]
    np.maximum(d2, 0, out=d2)
    return np.sqrt(d2, out=d2)
