"""Whole algorithms on one in-memory block, compiled: weighted k-means++
and Lloyd's iterations.

Used where the rows are few and in memory, and calling the per-pass
kernels step by step from Python would cost more than the arithmetic: the
k-means|| candidates reclustered on the client (several starts, which
release the GIL and run on several threads; one long start runs each
k-means++ step on several threads), and the Lloyd iterations of a
fit of a small numpy array. Each Lloyd iteration is the fused kernel of the
distributed pass and the same update, so the centers are those of the
pass-by-pass loop.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from dkmeans.kernels import exact
from dkmeans.kernels.assign import (
    FAST,
    JIT,
    gemm_buffer,
    lloyd_impl,
    nearest_impl,
    sqnorms,
)


@numba.njit(**FAST)
def _draw(cum, u):  # pragma: no cover - compiled
    """Row drawn with probability proportional to its increment of ``cum``
    (side='right': a row of zero probability is never drawn)."""
    return min(np.searchsorted(cum, u * cum[-1], side="right"), cum.shape[0] - 1)


@numba.njit(**FAST)
def _sqdist_rows(X, i, j):  # pragma: no cover - compiled
    """Squared distance between rows ``i`` and ``j``, summed in X's dtype
    (float32 rows: twice the lanes of float64 a vector instruction)."""
    dist = X[i, 0] - X[i, 0]  # 0 in X's dtype
    for f in range(X.shape[1]):
        diff = X[i, f] - X[j, f]
        dist += diff * diff
    return np.float64(dist)


#: Rows per partial potential of greedy k-means++: a trial's potential is
#: summed over blocks of this many rows, then over the blocks in order, so the
#: same center is chosen whether one thread sums the blocks or several do.
PLUSPLUS_BLOCK = 2048


@numba.njit(**FAST)
def _first_center(X, w, u0, mind):  # pragma: no cover - compiled
    """The first center drawn ~ weight; ``mind`` its squared distances."""
    first = _draw(np.cumsum(w), u0)
    for i in range(X.shape[0]):
        mind[i] = _sqdist_rows(X, i, first)
    return first


@numba.njit(**FAST)
def _draw_trials(w, mind, u, cum, trials):  # pragma: no cover - compiled
    """``trials`` drawn ~ weight x ``mind`` from the uniforms ``u``; returns
    the potential (0: every row already is a center, nothing drawn)."""
    total = 0.0
    for i in range(mind.shape[0]):
        total += w[i] * mind[i]
        cum[i] = total
    if total > 0.0:
        for t in range(trials.shape[0]):
            trials[t] = _draw(cum, u[t])
    return total


@numba.njit(**FAST)
def _trial_blocks(X, w, mind, trials, cand, parts, first, last):  # pragma: no cover
    """For the row blocks ``first`` to ``last - 1``: ``cand[t, i]`` the
    distance row i would have with trial t added, ``parts[b, t]`` its
    weighted sum over block b."""
    n, d = X.shape
    n_trials = trials.shape[0]
    pots = np.empty(n_trials)
    dist = np.empty(n_trials, dtype=X.dtype)
    T = np.empty((n_trials, d), dtype=X.dtype)
    for t in range(n_trials):
        T[t] = X[trials[t]]
    for b in range(first, last):
        pots[:] = 0.0
        # rows outer, trials inner: each row is read once a step, not once a
        # trial (at k = 4,096 over 40,961 candidates the recluster took 63 s,
        # memory-bound on re-reading them). Two trials a pass over the row,
        # against a copy of the trial rows side by side: a step over 24,576 x
        # 128 float32 rows with 10 trials 3.1-3.5 → 2.1-2.2 ms, 32 float64
        # features with 8 trials 1.2-1.5 → 0.9 ms, the same sums to the bit
        # (four trials a pass ran slower; a GEMM of the rows by the trials,
        # 128 x 10, slower still: 3.6 ms).
        for i in range(b * PLUSPLUS_BLOCK, min(n, (b + 1) * PLUSPLUS_BLOCK)):
            t = 0
            while t + 1 < n_trials:
                a0 = X[i, 0] - X[i, 0]  # 0 in X's dtype
                a1 = a0
                for f in range(d):
                    x = X[i, f]
                    e0 = x - T[t, f]
                    e1 = x - T[t + 1, f]
                    a0 += e0 * e0
                    a1 += e1 * e1
                dist[t] = a0
                dist[t + 1] = a1
                t += 2
            if t < n_trials:
                dist[t] = _sqdist_rows(X, i, trials[t])
            for t in range(n_trials):
                dd = min(mind[i], np.float64(dist[t]))
                cand[t, i] = dd
                pots[t] += w[i] * dd
        parts[b, :] = pots


@numba.njit(**FAST)
def _keep_best(parts, cand, mind):  # pragma: no cover - compiled
    """The trial of least potential (the blocks' sums added in order; ties to
    the earlier trial); ``mind`` becomes its distances."""
    pots = np.zeros(parts.shape[1])
    for b in range(parts.shape[0]):
        for t in range(parts.shape[1]):
            pots[t] += parts[b, t]
    best_t, best_pot = 0, np.inf
    for t in range(pots.shape[0]):
        if pots[t] < best_pot:
            best_t, best_pot = t, pots[t]
    for i in range(mind.shape[0]):
        mind[i] = cand[best_t, i]
    return best_t


@numba.njit(**JIT)
def _plusplus_buffers(n, n_trials):  # pragma: no cover - compiled
    """``mind``, ``cum``, ``cand``, ``parts`` and ``trials`` of one greedy
    k-means++ over ``n`` rows."""
    n_blocks = -(-n // PLUSPLUS_BLOCK)
    return (np.empty(n), np.empty(n), np.empty((n_trials, n)), np.empty((n_blocks, n_trials)),
            np.empty(n_trials, dtype=np.int64))


@numba.njit(**FAST)
def _plusplus(X, w, k, n_trials, u):  # pragma: no cover - compiled
    """Greedy k-means++ from the uniforms ``u``: the chosen rows."""
    mind, cum, cand, parts, trials = _plusplus_buffers(X.shape[0], n_trials)
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = _first_center(X, w, u[0], mind)
    count = 1
    for step in range(1, k):
        lo = 1 + (step - 1) * n_trials
        if _draw_trials(w, mind, u[lo:lo + n_trials], cum, trials) <= 0.0:
            break
        _trial_blocks(X, w, mind, trials, cand, parts, 0, parts.shape[0])
        chosen[count] = trials[_keep_best(parts, cand, mind)]
        count += 1
    return chosen[:count]


def plusplus_threads(X: np.ndarray, w: np.ndarray, k: int, n_trials: int, u: np.ndarray,
                     threads: int) -> np.ndarray:
    """Greedy k-means++'s chosen rows, each step's trial distances on
    ``threads`` threads (each a run of row blocks; the compiled kernels
    release the GIL): the rows :func:`_plusplus` chooses in one compiled
    call (``threads=1``), as the blocks' sums are added in one order. Pays
    when a step's work (rows x trials x d) is far above the thread hand-off,
    tens of microseconds. The compiled loop stays for one thread: this
    loop's steps from Python took a start of 5 centers over 51 candidates
    from 3.5 to 12 us, and a small fit reclusters with up to 10 starts."""
    if threads == 1:
        return _plusplus(X, w, k, n_trials, u)
    mind, cum, cand, parts, trials = _plusplus_buffers(X.shape[0], n_trials)
    edges = np.linspace(0, parts.shape[0], threads + 1).round().astype(np.int64)
    chosen = [_first_center(X, w, u[0], mind)]
    with ThreadPoolExecutor(threads) as pool:
        for step in range(1, k):
            lo = 1 + (step - 1) * n_trials
            if _draw_trials(w, mind, u[lo:lo + n_trials], cum, trials) <= 0.0:
                break
            list(pool.map(lambda j: _trial_blocks(X, w, mind, trials, cand, parts, edges[j],
                                                  edges[j + 1]), range(threads)))
            chosen.append(trials[_keep_best(parts, cand, mind)])
    return np.array(chosen, dtype=np.int64)


@numba.njit(**FAST)
def _relocate(sums, wsums, X, w, far_d2, far_row, far_lab):  # pragma: no cover - compiled
    """Move each empty cluster onto the farthest remaining row (ties to the
    earlier row), taking it out of its old cluster, as the distributed
    aggregate does."""
    taken = np.zeros(far_d2.shape[0], dtype=np.bool_)
    moved = 0
    empty = [c for c in range(wsums.shape[0]) if wsums[c] == 0.0]  # before any move
    for c in empty:
        best = -1
        for s in range(far_d2.shape[0]):
            if taken[s] or far_d2[s] <= 0.0:
                continue
            if best < 0 or far_d2[s] > far_d2[best] or (
                    far_d2[s] == far_d2[best] and far_row[s] < far_row[best]):
                best = s
        if best < 0:
            break
        taken[best] = True
        moved += 1
        row, old = far_row[best], far_lab[best]
        wt = 1.0 if w.shape[0] == 0 else np.float64(w[row])
        for f in range(X.shape[1]):
            sums[old, f] -= wt * X[row, f]
            sums[c, f] = wt * X[row, f]
        wsums[old] -= wt
        wsums[c] = wt
    return moved


@numba.njit(**FAST)
def _to_grid(sums, wsums, quanta):  # pragma: no cover - compiled
    """Sums and weights rounded, in place, to multiples of ``quanta`` (powers
    of two), as the distributed pass carries them
    (:func:`dkmeans.kernels.exact.to_grid`)."""
    # loops, not array expressions: each of those compiles numba's shape
    # checks and their messages (seconds of a cold first fit)
    k, d = sums.shape
    for c in range(k):
        for f in range(d):
            sums[c, f] = np.rint(sums[c, f] / quanta[f]) * quanta[f]
        wsums[c] = np.rint(wsums[c] / quanta[d]) * quanta[d]


@numba.njit(**FAST)
def _lloyd(X, w, centers, buf, rows_first, max_iter, tol, quanta, history):  # pragma: no cover
    """Lloyd from ``centers`` (X's dtype) until the squared center shift is at
    most ``tol``; ``history[i]`` gets the inertia of iteration i's assignment.
    Returns (centers, iterations, clusters relocated)."""
    k, d = centers.shape
    n = X.shape[0]
    n_relocated = 0
    for it in range(max_iter):
        sums, wsums = np.zeros((k, d)), np.zeros(k)
        history[it] = lloyd_impl(X, w, centers, np.ascontiguousarray(centers.T),
                                  sqnorms(centers), sums, wsums, buf, rows_first,
                                  np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int32))
        _to_grid(sums, wsums, quanta)
        if wsums.min() == 0.0:  # the rows farthest from their centers, as FAR_ROWS finds
            labels, d2 = np.empty(n, dtype=np.int32), np.empty(n)
            nearest_impl(X, centers, np.ascontiguousarray(centers.T), sqnorms(centers),
                          labels, d2, buf, rows_first)
            if w.shape[0]:
                for i in range(n):
                    if not w[i] > 0:
                        d2[i] = 0.0
            n_relocated += _relocate(sums, wsums, X, w, d2, np.arange(n), labels)
        new = np.empty((k, d))
        for c in range(k):
            for f in range(d):
                new[c, f] = sums[c, f] / wsums[c] if wsums[c] > 0.0 else centers[c, f]
        new_x = new.astype(X.dtype)
        shift = 0.0
        for c in range(k):
            for f in range(d):
                diff = np.float64(new_x[c, f]) - np.float64(centers[c, f])
                shift += diff * diff
        centers = new_x
        if shift <= tol:
            return centers, it + 1, n_relocated
    return centers, max_iter, n_relocated


def plusplus_trials(k: int) -> int:
    """k-means++ trials per center: scikit-learn's ``2 + log(k)``."""
    return 2 + int(np.log(k))


def recluster_starts(X: np.ndarray, w: np.ndarray, k: int, u: np.ndarray,
                     max_iter: int = 300, threads: int = 1) -> tuple[np.ndarray, float]:
    """Weighted k-means++ then Lloyd from each row of uniforms ``u``; the best
    start's centers and inertia (ties to the earlier start).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    w : ndarray of shape (n,), non-negative, positive sum
    k : int, at most the number of rows of positive weight
    u : ndarray of shape (starts, 1 + (k - 1) x n_trials)
        Uniform [0, 1) draws, a row per start; ``n_trials`` k-means++ trials
        per center (:func:`plusplus_trials` is scikit-learn's choice).
    max_iter : int
        Lloyd's iterations at most per start (to its fixed point if fewer).
    threads : int, default=1
        Threads for each k-means++ step (:func:`plusplus_threads`): the same
        centers for any number. Lloyd's products run on BLAS' threads
        either way (on 24,576 x 128 rows at k = 1,024, Lloyd over row blocks
        on two threads was no faster).

    Returns
    -------
    centers : ndarray of shape (k, d), float32 for float32 rows, else float64
    inertia : float
        Of the best start's last assignment.
    """
    X = _rows(X)
    w = np.asarray(w, dtype=np.float64)
    quanta = exact.grid(len(X), w.max(), np.abs(X).max(axis=0).astype(np.float64))
    n_trials = max(1, (u.shape[1] - 1) // max(k - 1, 1))
    best, best_inertia = None, np.inf
    buf, rows_first = gemm_buffer(X, k)
    history = np.empty(max_iter)
    for row in u:
        chosen = plusplus_threads(X, w, k, n_trials, row, threads)
        centers, n_iter, _ = _lloyd(X, w, X[chosen[np.arange(k) % len(chosen)]], buf,
                                    rows_first, max_iter, 0.0, quanta, history)
        if best is None or history[n_iter - 1] < best_inertia:
            best, best_inertia = centers, history[n_iter - 1]
    return best, float(best_inertia)


def kmeans_plusplus(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator,
                    n_trials: int | None = None, threads: int = 1) -> np.ndarray:
    """Weighted greedy k-means++ on a small in-memory set of points.

    Each step draws ``n_trials`` candidates with probability proportional to
    weight x D^2 and keeps the one that lowers the potential most (Arthur &
    Vassilvitskii 2007, with scikit-learn's default of ``2 + log(k)`` trials).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    w : ndarray of shape (n,), non-negative, positive sum
    k : int
    rng : numpy Generator
    n_trials : int, optional
    threads : int, default=1
        Threads for each step's trials (:func:`plusplus_threads`): the same
        centers for any number.

    Returns
    -------
    ndarray of shape (m, d), X's dtype, m <= k (fewer when X has fewer
    distinct points of positive weight)
    """
    n_trials = n_trials or plusplus_trials(k)
    u = rng.random(1 + (k - 1) * n_trials)
    w = np.asarray(w, dtype=np.float64)
    return X[plusplus_threads(_rows(X), w, k, n_trials, u, threads)]


def _rows(X: np.ndarray) -> np.ndarray:
    """The rows k-means++ and the recluster's Lloyd work on: float32 rows as
    they are (24,576 x 128 rows, k = 1,024: greedy k-means++ 3.8 s in float64,
    2.0 s, the same first choices; a Lloyd iteration 76 → 43 ms, the same
    iterations and inertia to 7 digits), others as float64."""
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    return np.ascontiguousarray(X, dtype=dtype)


def lloyd_local(X: np.ndarray, w: np.ndarray, centers: np.ndarray, max_iter: int,
                tol: float, quanta: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Lloyd's iterations on one in-memory block, as one compiled call.

    The same iterations as :func:`dkmeans.algorithms.lloyd.lloyd` (without its final
    assignment): the fused kernel of its pass, its update and relocation.

    Parameters
    ----------
    X, w, centers
        As for :func:`~dkmeans.kernels.lloyd_partials` (X float32 or float64,
        w empty for unit weights).
    max_iter : int
    tol : float
        Absolute tolerance on the sum of squared center shifts.
    quanta : ndarray of shape (d + 1,)
        The grid the distributed pass rounds its sums to
        (:func:`dkmeans.kernels.exact.grid`), applied here too.

    Returns
    -------
    centers : ndarray of shape (k, d), X's dtype
    history : ndarray of shape (n_iter,)
        Inertia of each iteration's assignment, before its update.
    n_relocated : int
    """
    X = np.ascontiguousarray(X)
    history = np.empty(max_iter)
    centers, n_iter, n_relocated = _lloyd(X, w, np.ascontiguousarray(centers, dtype=X.dtype),
                                          *gemm_buffer(X, len(centers)), max_iter,
                                          float(tol), np.asarray(quanta, np.float64), history)
    return centers, history[:n_iter], int(n_relocated)
