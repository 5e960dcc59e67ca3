"""Per-chunk kernels for random draws: row-indexed uniforms, the exponential
race, and the fused k-means|| / k-means++ seeding round.

Like :mod:`dkmeans.kernels.assign` (whose assignment loops these reuse), nothing
here imports dask; every function takes plain arrays, and the tests check
them against numpy oracles (``tests/test_kernels.py``).

Every random number is a function of a stream key and the *global row
index* (SplitMix64 over the row as counter), so a draw is the same however
the data is chunked and whichever worker computes a block.
"""

from __future__ import annotations

import numba
import numpy as np

from dkmeans.kernels.assign import (
    FAST,
    JIT,
    assign_block,
    block_step,
    gemm_buffer,
    prepare_centers,
    row_sqdist,
)

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U53 = 1.0 / (1 << 53)
# The race skips a row whose key provably cannot enter the current top m:
# key = weight / E <= weight / u since E >= u, so weight <= bar x u with bar
# just under the smallest key kept (this margin covers the rounding of E, so
# the skip never changes the draw). The test is inline in each loop: calling
# the offer for every row instead cost 23 ns a row (47 against 2 ms for
# 2,000,000 rows).
_SKIP_MARGIN = 1.0 - 1e-9


@numba.njit(**JIT)
def _mix(z):  # pragma: no cover - compiled
    """SplitMix64's output function (Steele, Lea & Flood 2014)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@numba.njit(**JIT)
def _uniform(seed, row):  # pragma: no cover - compiled
    """Uniform in [0, 1) for global row ``row``: SplitMix64's row-th output."""
    z = _mix(seed + (np.uint64(row) + np.uint64(1)) * _GAMMA)
    return np.float64(z >> np.uint64(11)) * _U53


def stream_seed(key: np.ndarray) -> np.uint64:
    """One 64-bit SplitMix64 seed from a stream's two-word key."""
    k0, k1 = (np.uint64(v) for v in np.asarray(key, dtype=np.uint64)[:2])
    return np.uint64(_mix(k0 ^ _mix(k1)))


@numba.njit(**JIT)
def _uniforms_impl(seed, start, out):  # pragma: no cover - compiled
    for i in range(out.shape[0]):
        out[i] = _uniform(seed, start + i)


def row_uniforms(key: np.ndarray, start: int, n: int) -> np.ndarray:
    """Uniform numbers in [0, 1) for rows ``start .. start + n - 1``.

    Parameters
    ----------
    key : ndarray of shape (2,), uint64
        The stream's key, derived from the random state and the purpose.
    start, n : int
        First global row and number of rows.

    Returns
    -------
    ndarray of shape (n,), float64
    """
    out = np.empty(n)
    _uniforms_impl(stream_seed(key), start, out)
    return out


@numba.njit(**FAST)
def _race_offer(top_key, top_pos, slot, weight, u, pos):  # pragma: no cover - compiled
    """Enter row ``pos`` of positive ``weight`` into the race's top m if its
    key ``weight / E`` (E = -log(1 - u) ~ Exp(1)) beats the smallest kept.

    The top m is a min-heap (slot 0 holds the entry given up next), so an
    entry costs O(log m), not a scan of all m: with m = 20,000 (a sweep's or
    a plot's sample) the scan made a 125,000-row block take 1.3 s. Returns
    the slot of the smallest key, 0.
    """
    e = -np.log1p(-u)
    key = weight / e if e > 0.0 else np.inf
    # strict: rows come in order, so on a tie the earlier row stays
    if key > top_key[0]:
        _heap_replace_min(top_key, top_pos, key, pos)
    return 0


@numba.njit(**FAST)
def _heap_replace_min(keys, pos, key, p):  # pragma: no cover - compiled
    """Replace the smallest entry of a min-heap by (key, p) and restore the
    heap. Order: by key, ties to the larger position first (so ties keep
    the earlier row, as a scan for the minimum would)."""
    n = keys.shape[0]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        right = child + 1
        if right < n and (keys[right] < keys[child]
                          or (keys[right] == keys[child] and pos[right] > pos[child])):
            child = right
        if keys[child] < key or (keys[child] == key and pos[child] > p):
            keys[i] = keys[child]
            pos[i] = pos[child]
            i = child
        else:
            break
    keys[i] = key
    pos[i] = p


@numba.njit(**FAST)
def _race_impl(seed, start, weights, top_key, top_pos):  # pragma: no cover - compiled
    slot, bar = 0, 0.0
    for i in range(weights.shape[0]):
        weight = np.float64(weights[i])
        if weight > 0.0:
            u = _uniform(seed, start + i)
            if weight > bar * u:
                slot = _race_offer(top_key, top_pos, slot, weight, u, i)
                bar = top_key[slot] * _SKIP_MARGIN


def _ranked(top_key: np.ndarray, top_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filled slots, largest key first, ties by position."""
    kept = top_pos >= 0
    keys, pos = top_key[kept], top_pos[kept]
    order = np.lexsort((pos, -keys))
    return pos[order], keys[order]


def _empty_top(m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(m), np.full(m, -1, dtype=np.int64)


def race_top_m(key: np.ndarray, start: int, weights: np.ndarray,
               m: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``m`` rows without replacement with probability ~ weight.

    An exponential race (Efraimidis & Spirakis): row i's key is ``w_i / E_i``
    with E_i ~ Exp(1) from :func:`row_uniforms`, and the m largest keys are
    the sample. "The m largest" merges across blocks, so a draw over the
    whole data needs one pass and no global normaliser. Rows of zero weight
    are never drawn.

    Parameters
    ----------
    key : ndarray of shape (2,), uint64
    start : int
        Global index of the block's first row.
    weights : ndarray of shape (n,), non-negative
    m : int

    Returns
    -------
    positions : ndarray of shape (r,), int64, r <= m
        Within the block, largest key first (ties by position).
    keys : ndarray of shape (r,), float64
    """
    top_key, top_pos = _empty_top(m)
    if m > 0:
        _race_impl(stream_seed(key), start, np.asarray(weights, dtype=np.float64), top_key,
                   top_pos)
    return _ranked(top_key, top_pos)


@numba.njit(**FAST)
def _seed_round_impl(X, w, old_mind, old_arg, mind, arg, centers, centers_t, c_sqnorm,
                     center_offset, seed, start_row, top_key, top_pos, buf,
                     rows_first):  # pragma: no cover - compiled
    n = X.shape[0]
    fresh = old_mind.shape[0] == 0
    k = centers.shape[0]
    step = block_step(buf, rows_first)
    labels = np.empty(step, dtype=np.int32)
    unweighted = w.shape[0] == 0
    draw = top_key.shape[0] > 0
    slot, bar = 0, 0.0
    cost = 0.0
    for start in range(0, n, step):
        stop = min(start + step, n)
        if k > 0:
            assign_block(X, centers, centers_t, c_sqnorm, start, stop, labels, buf,
                          rows_first)
        for row in range(start, stop):
            if fresh:
                mind[row], arg[row] = np.inf, 0
            else:
                mind[row], arg[row] = old_mind[row], old_arg[row]
            if k > 0:
                a = labels[row - start]
                dist = row_sqdist(X, row, centers, a)
                if dist < mind[row]:
                    mind[row] = dist
                    arg[row] = a + center_offset
            d2 = np.float64(mind[row])
            weight = d2 if unweighted else np.float64(w[row]) * d2
            cost += weight
            if draw and weight > 0.0:
                u = _uniform(seed, start_row + row)
                if weight > bar * u:
                    slot = _race_offer(top_key, top_pos, slot, weight, u, row)
                    bar = top_key[slot] * _SKIP_MARGIN
    return cost


def seed_round_partials(X: np.ndarray, w: np.ndarray, state: tuple | None,
                        centers: np.ndarray, center_offset: int, key: np.ndarray,
                        start: int, m: int):
    """One seeding round on one block, in a single fused pass.

    Folds new centers into each row's running minimum squared distance and
    nearest center, then draws ``m`` rows ~ weight x D^2 (the race of
    :func:`race_top_m`) from the updated distances.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    w : ndarray of shape (n,) or (0,)
        Sample weights; empty means unit weights.
    state : (mind, arg) or None
        The previous round's ``mind`` (n,) in X's dtype and ``arg`` (n,) int32;
        None: no center yet (distances infinite). Not modified.
    centers : ndarray of shape (c, d)
        The new centers; c may be 0.
    center_offset : int
        Index of ``centers[0]`` among all centers so far (``arg`` counts all).
    key : ndarray of shape (2,), uint64
        The round's random stream.
    start : int
        Global index of the block's first row.
    m : int
        Rows to draw (0: none).

    Returns
    -------
    state : (mind, arg)
        New arrays.
    cost : float
        Weighted sum of the updated squared distances.
    positions, keys : ndarray
        The draw, as :func:`race_top_m` returns it.
    """
    X = np.ascontiguousarray(X)
    n = X.shape[0]
    # New arrays, written once by the kernel from the old (no copy first).
    # The distances in X's dtype: the GEMM that finds the nearest center
    # works in it anyway, and for float32 data the state is 8 bytes a row,
    # not 12 (D1's seeding: 24 MB less allocated and written per round).
    mind, arg = np.empty(n, dtype=X.dtype), np.empty(n, dtype=np.int32)
    old_mind, old_arg = (mind[:0], arg[:0]) if state is None else state
    c, c_t, c_sqnorm = prepare_centers(centers, X.dtype)
    top_key, top_pos = _empty_top(m)
    cost = _seed_round_impl(X, w, old_mind, old_arg, mind, arg, c, c_t, c_sqnorm, center_offset,
                            stream_seed(key), start, top_key, top_pos,
                            *gemm_buffer(X, len(c)))
    return (mind, arg), float(cost), *_ranked(top_key, top_pos)
