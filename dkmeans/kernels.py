"""Per-chunk kernels: pure numpy and numba functions on one in-memory block.

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


_JIT = {"nogil": True, "cache": True}
# Reassociation lets LLVM vectorise the per-row reductions (the exact squared
# distance and the sums): the Lloyd kernel on 125,000 rows of D1 went from 4.6
# to 3.4 ms on one core. No "nnan"/"ninf": the
# results stay IEEE-correct for any finite input, and deterministic for a
# given build whatever the chunking or thread.
_FAST = {**_JIT, "fastmath": {"reassoc", "contract", "nsz"}}


@numba.njit(**_FAST)
def _row_sqdist(X, row, centers, c):  # pragma: no cover - compiled
    """Exact squared distance from ``X[row]`` to ``centers[c]``, in float64."""
    dist = 0.0
    for f in range(X.shape[1]):
        diff = np.float64(X[row, f]) - np.float64(centers[c, f])
        dist += diff * diff
    return dist


@numba.njit(**_FAST)
def _bound_holds(dist, half_sep_a, lower, c_norm_a, err_scale, cmax2):  # pragma: no cover
    """Whether a row at squared distance ``dist`` from its center ``a`` provably
    keeps it: every other center is at least ``max(2 half_sep_a - u, lower)``
    away, by more than the GEMM's rounding could hide (|x| <= u + |c_a|)."""
    u = np.sqrt(dist)
    bound = max(2.0 * half_sep_a - u, lower)
    return bound > 0.0 and bound * bound - dist > err_scale * ((u + c_norm_a) ** 2 + cmax2)


def _gemm_buffer(X: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    """Scratch space for one block's products, made once per call, and
    whether they are computed rows-first: (rows, k) or else (k, rows)."""
    rows = block_rows(X.shape[1], X.dtype.itemsize)
    first = rows_first(X.shape[1], k)
    return np.empty((rows, k) if first else (k, rows), dtype=X.dtype), first


@numba.njit(**_FAST)
def _block_step(buf, rows_first):  # pragma: no cover - compiled
    """Rows per block of a kernel using ``buf`` (see :func:`_gemm_buffer`)."""
    return buf.shape[0] if rows_first else buf.shape[1]


@numba.njit(**_FAST)
def _gemm_block(rows, centers, centers_t, buf, rows_first):  # pragma: no cover - compiled
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


@numba.njit(**_FAST)
def _assign_block(X, centers, centers_t, c_sqnorm, start, stop, labels, buf,
                  rows_first):  # pragma: no cover - compiled
    """Nearest center (GEMM + argmin of the products) of rows ``start:stop``,
    into ``labels[:stop - start]``; ties keep the lowest index."""
    k = centers.shape[0]
    b = stop - start
    # (_search_rows has the same loops plus the second-best center; kept
    # apart so this hot loop of every Lloyd pass does not pay for it.)
    g = _gemm_block(X[start:stop], centers, centers_t, buf, rows_first)
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


@numba.njit(**_FAST)
def _nearest_impl(X, centers, centers_t, c_sqnorm, labels, d2, buf,
                  rows_first):  # pragma: no cover - compiled
    step = _block_step(buf, rows_first)
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        _assign_block(X, centers, centers_t, c_sqnorm, start, stop, labels[start:stop], buf,
                      rows_first)
        for row in range(start, stop):
            d2[row] = _row_sqdist(X, row, centers, labels[row])


@numba.njit(**_FAST)
def _accumulate_block(X, w, centers, labels, d2, start, stop, sums, wsums, far_d2, far_row,
                      far_lab, far_min):  # pragma: no cover - compiled
    """Add rows ``start:stop`` (labelled ``labels[:stop - start]``) to the
    sums, weights and inertia, and keep the rows farthest from their center.
    Returns (inertia, far_min).

    The exact squared distances come from ``d2[:stop - start]``, or when
    ``d2`` is empty are computed here, in the loop that reads each row for
    its sum (one read of the row instead of two).
    """
    d = X.shape[1]
    n_far = far_d2.shape[0]
    unweighted = w.shape[0] == 0
    given = d2.shape[0] > 0
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
        # Keep the n_far rows (positive weight) farthest from their center,
        # the candidates for empty-cluster relocation: one compare per row;
        # ties keep the earlier row, whatever the chunking.
        if n_far > 0 and dist > far_d2[far_min] and wi > 0.0:
            far_d2[far_min] = dist
            far_row[far_min] = row
            far_lab[far_min] = c
            far_min = _min_slot(far_d2, far_row)
    return inertia, far_min


@numba.njit(**_FAST)
def _min_slot(keys, pos):  # pragma: no cover - compiled
    """Slot of the smallest key, ties to the largest position: the entry a
    top-m kept by replacement gives up next (so ties keep the earlier row)."""
    slot = 0
    for s in range(1, keys.shape[0]):
        if keys[s] < keys[slot] or (keys[s] == keys[slot] and pos[s] > pos[slot]):
            slot = s
    return slot


@numba.njit(**_FAST)
def _lloyd_impl(X, w, centers, centers_t, c_sqnorm, sums, wsums, far_d2, far_row, far_lab,
                buf, rows_first):  # pragma: no cover - compiled
    n = X.shape[0]
    far_min = 0  # slot holding the smallest of the farthest distances so far
    inertia = 0.0
    step = _block_step(buf, rows_first)
    # One block's labels and distances, not the chunk's: a chunk-sized array
    # per call is mapped and faulted in afresh each time once glibc returns
    # freed memory to the OS (distributed's workers make it), which cost 10
    # of 59 ms per D1 pass on one core.
    labels = np.empty(step, dtype=np.int32)
    no_d2 = np.empty(0, dtype=np.float64)
    for start in range(0, n, step):
        stop = min(start + step, n)
        _assign_block(X, centers, centers_t, c_sqnorm, start, stop, labels, buf, rows_first)
        # accumulate while the block is still in cache
        part, far_min = _accumulate_block(X, w, centers, labels, no_d2, start, stop, sums,
                                          wsums, far_d2, far_row, far_lab, far_min)
        inertia += part
    return inertia


@numba.njit(**_FAST)
def _search_rows(src, rows, centers, centers_t, c_sqnorm, err_scale, cmax2, labels, lower,
                 d2, first, buf, rows_first):  # pragma: no cover - compiled
    """Nearest center of each row of ``src`` (row ``rows[i]`` of the chunk) by
    GEMM + argmin, its exact squared distance (into ``d2[rows[i] - first]``),
    and a lower bound on the distance to every other center (the second-best,
    less rounding error)."""
    m, d = src.shape
    k = centers.shape[0]
    g = _gemm_block(src, centers, centers_t, buf, rows_first)
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


@numba.njit(**_FAST)
def _lloyd_bounded_impl(X, w, centers, centers_t, c_sqnorm, c_norm, half_sep, drift, search_all,
                        err_scale, old_labels, old_lower, labels, lower, sums, wsums, far_d2,
                        far_row, far_lab, counts, gt_buf,
                        rows_first):  # pragma: no cover - compiled
    """Lloyd step that skips the distances to all centers for rows whose
    nearest center provably cannot have changed (Hamerly 2010).

    ``lower[r]`` bounds the distance from row r to every center but its own;
    it shrinks by ``drift[a]`` (the largest move of any other center). A row
    keeps its label without the GEMM when :func:`_bound_holds`, so the label
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
    far_min = 0
    inertia = 0.0
    step = _block_step(gt_buf, rows_first)
    buf = np.empty((step, d), dtype=X.dtype)
    idx = np.empty(step, dtype=np.int64)
    d2 = np.empty(step)  # one block's exact distances
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
                spared = has_bounds and labels[start + i] == a and _bound_holds(
                    d2[i], half_sep[a], old_low[i], c_norm[a], err_scale, cmax2)
                if not spared:
                    counts[0] += 1
        else:
            m = 0
            for row in range(start, stop):
                a = labels[row]
                dist = _row_sqdist(X, row, centers, a)
                d2[row - start] = dist
                lower[row] -= drift[a]
                if _bound_holds(dist, half_sep[a], lower[row], c_norm[a], err_scale, cmax2):
                    continue
                idx[m] = row
                for f in range(d):
                    buf[m, f] = X[row, f]
                m += 1
            counts[0] += m
            if m > 0:
                _search_rows(buf[:m], idx[:m], centers, centers_t, c_sqnorm, err_scale, cmax2,
                             labels, lower, d2, start, gt_buf, rows_first)
        part, far_min = _accumulate_block(X, w, centers, labels[start:stop],
                                          d2[: stop - start], start, stop, sums, wsums,
                                          far_d2, far_row, far_lab, far_min)
        inertia += part
    return inertia


def _prepare_centers(centers: np.ndarray, dtype: np.dtype):
    """Centers in X's dtype, also transposed (d, k) for the GEMM, and their
    squared norms."""
    c = np.ascontiguousarray(centers, dtype=dtype)
    c_sqnorm = np.einsum("ij,ij->i", c, c, dtype=np.float64).astype(dtype)
    return c, np.ascontiguousarray(c.T), c_sqnorm


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
    c, c_t, c_sqnorm = _prepare_centers(centers, X.dtype)
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int32)
    d2 = np.empty(n, dtype=np.float64)
    _nearest_impl(X, c, c_t, c_sqnorm, labels, d2, *_gemm_buffer(X, len(c)))
    return labels, d2


def lloyd_partials(X: np.ndarray, w: np.ndarray, centers: np.ndarray, n_far: int):
    """One Lloyd step's partial results on one block, in a single fused pass.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    w : ndarray of shape (n,) or (0,)
        Sample weights; empty means unit weights.
    centers : ndarray of shape (k, d)
    n_far : int
        How many of the rows farthest from their center to report.

    Returns
    -------
    sums : ndarray of shape (k, d), float64
        Weighted sum of the rows nearest to each center.
    wsums : ndarray of shape (k,), float64
        Total weight nearest to each center.
    inertia : float
        Weighted sum of squared distances to the nearest center.
    far_d2 : ndarray of shape (m,), float64
        Squared distances of the farthest rows (m <= n_far), unordered.
    far_row : ndarray of shape (m,), int64
        Their row positions within the block.
    far_label : ndarray of shape (m,), int32
        Their nearest centers.
    """
    X = np.ascontiguousarray(X)
    c, c_t, c_sqnorm = _prepare_centers(centers, X.dtype)
    n, d = X.shape
    k = c.shape[0]
    sums = np.zeros((k, d), dtype=np.float64)
    wsums = np.zeros(k, dtype=np.float64)
    m = min(n_far, n)
    far_d2 = np.full(m, -1.0)
    far_row = np.full(m, -1, dtype=np.int64)
    far_lab = np.zeros(m, dtype=np.int32)
    inertia = _lloyd_impl(X, w, c, c_t, c_sqnorm, sums, wsums, far_d2, far_row, far_lab,
                          *_gemm_buffer(X, k))
    kept = far_row >= 0
    return sums, wsums, float(inertia), far_d2[kept], far_row[kept], far_lab[kept]


def lloyd_partials_bounded(X: np.ndarray, w: np.ndarray, centers: np.ndarray, n_far: int,
                           state: tuple | None, half_sep: np.ndarray, drift: np.ndarray,
                           search_all: bool = False):
    """:func:`lloyd_partials` that reuses per-row bounds from the previous step.

    Gives the labels and partial results of :func:`lloyd_partials` while
    computing the distances to every center only for rows whose nearest
    center may have changed.

    Parameters
    ----------
    X, w, centers, n_far
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
    The six results of :func:`lloyd_partials`, then
    state : (labels, lower)
        For the next step (new arrays: the input state is not modified).
    n_searched : int
        Rows that needed the distances to every center: those searched, or
        with ``search_all``, those the bounds would not have spared.
    """
    X = np.ascontiguousarray(X)
    c, c_t, c_sqnorm = _prepare_centers(centers, X.dtype)
    n, d = X.shape
    k = c.shape[0]
    fresh = state is None
    # new arrays, filled from the old block by block: the persisted state of
    # the previous step stays as it was
    labels, lower = np.empty(n, dtype=np.int32), np.empty(n)
    old_labels, old_lower = (labels[:0], lower[:0]) if fresh else state
    sums = np.zeros((k, d), dtype=np.float64)
    wsums = np.zeros(k, dtype=np.float64)
    m = min(n_far, n)
    far_d2 = np.full(m, -1.0)
    far_row = np.full(m, -1, dtype=np.int64)
    far_lab = np.zeros(m, dtype=np.int32)
    counts = np.zeros(1, dtype=np.int64)
    # generous bound on the rounding of |c|^2 - 2 x.c in X's dtype, relative
    # to |x|^2 + max |c|^2, for both the own and the other center
    err_scale = 4.0 * (d + 2) * float(np.finfo(X.dtype).eps)
    c_norm = np.sqrt(c_sqnorm.astype(np.float64))
    inertia = _lloyd_bounded_impl(X, w, c, c_t, c_sqnorm, c_norm, np.asarray(half_sep, np.float64),
                                  np.asarray(drift, np.float64), fresh or search_all,
                                  err_scale, old_labels, old_lower, labels, lower, sums,
                                  wsums, far_d2, far_row, far_lab, counts,
                                  *_gemm_buffer(X, k))
    kept = far_row >= 0
    return (sums, wsums, float(inertia), far_d2[kept], far_row[kept], far_lab[kept],
            (labels, lower), int(counts[0]))


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
        part = np.argpartition(-keys[positive], m - 1)[:m]
        positive = np.sort(positive[part])
    order = np.lexsort((positive, -keys[positive]))
    return positive[order]


def kmeans_plusplus(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator,
                    n_trials: int | None = None) -> np.ndarray:
    """Weighted greedy k-means++ on a small in-memory set of points.

    Used to recluster the weighted k-means|| candidates. Each step draws
    ``n_trials`` candidates with probability proportional to weight x D^2 and
    keeps the one that lowers the potential most (Arthur & Vassilvitskii 2007,
    with scikit-learn's default of ``2 + log(k)`` trials).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    w : ndarray of shape (n,), non-negative, positive sum
    k : int, at most the number of rows with positive weight
    rng : numpy Generator
    n_trials : int, optional

    Returns
    -------
    ndarray of shape (k, d), X's dtype
    """
    n = X.shape[0]
    if n_trials is None:
        n_trials = 2 + int(np.log(k))
    w = np.asarray(w, dtype=np.float64)
    first = rng.choice(n, p=w / w.sum())
    centers = [first]
    mind = sqdist(X, X[first : first + 1])[:, 0]
    for _ in range(1, k):
        p = w * mind
        total = p.sum()
        if total <= 0:  # every point already is a center
            break
        trials = np.minimum(np.searchsorted(np.cumsum(p), rng.random(n_trials) * total),
                            n - 1)
        cand_d = np.minimum(mind[:, None], sqdist(X, X[trials]))
        best = int(np.argmin(w @ cand_d))
        centers.append(int(trials[best]))
        mind = cand_d[:, best]
    return X[np.asarray(centers)]


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
