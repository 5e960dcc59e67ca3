"""Weighted k-means++ and Lloyd on one in-memory CSR block: the k-means||
candidates of sparse data reclustered on the client, in time proportional
to their non-zeros rather than to their width (the dense
:func:`~dkmeans.kernels.local.recluster_starts` reads every one of tens of
thousands of columns)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dkmeans.kernels.sparse import as_csr, csr_lloyd_partials_far, csr_sqdist


def _draw(cum: np.ndarray, u: float) -> int:
    """Row drawn with probability proportional to its increment of ``cum``."""
    return int(min(np.searchsorted(cum, u * cum[-1], side="right"), len(cum) - 1))


def csr_plusplus(X: Any, w: np.ndarray, k: int, n_trials: int, u: np.ndarray) -> np.ndarray:
    """Greedy weighted k-means++ on CSR rows (the draws of
    :func:`~dkmeans.kernels.local.kmeans_plusplus` from ``u``): the chosen
    rows' positions, at most ``k`` (fewer when fewer rows have weight and
    distance)."""
    chosen = [_draw(np.cumsum(w), u[0])]
    mind = csr_sqdist(X, X[chosen].toarray())[:, 0]
    for step in range(1, k):
        cum = np.cumsum(w * mind)
        if cum[-1] <= 0:  # every row already is a center
            break
        trials = [_draw(cum, u[1 + (step - 1) * n_trials + t]) for t in range(n_trials)]
        cand = np.minimum(mind[:, None], csr_sqdist(X, X[trials].toarray()))
        best = int(np.argmin(w @ cand))  # ties: the first trial
        chosen.append(trials[best])
        mind = cand[:, best]
    return np.array(chosen)


def csr_lloyd(X: Any, w: np.ndarray, centers: np.ndarray,
              max_iter: int) -> tuple[np.ndarray, int, float]:
    """Weighted Lloyd on CSR rows from ``centers`` until no center moves; an
    empty cluster keeps its center. Returns (centers, iterations, inertia of
    the last assignment)."""
    inertia = np.inf
    for it in range(max_iter):
        sums, wsums, inertia, _ = csr_lloyd_partials_far(X, w, centers, 0)
        new = centers.copy()
        moved = wsums > 0
        new[moved] = sums[moved] / wsums[moved, None]
        if np.array_equal(new, centers):
            return centers, it + 1, inertia
        centers = new
    return centers, max_iter, inertia


def _best_start(X: Any, w: np.ndarray, k: int, u: np.ndarray,
                finish: Callable[[Any, np.ndarray, np.ndarray], tuple[np.ndarray, float]],
                ) -> tuple[np.ndarray, float]:
    """Greedy k-means++ on CSR rows from each row of ``u``, each start then
    ``finish(X, w, start) -> (centers, cost)``; the lowest cost's centers
    (ties to the earlier start)."""
    X = as_csr(X).astype(np.float64)
    w = np.asarray(w, dtype=np.float64)
    n_trials = max(1, (u.shape[1] - 1) // max(k - 1, 1))
    best, best_cost = None, np.inf
    for row in u:
        chosen = csr_plusplus(X, w, k, n_trials, row)
        centers, cost = finish(X, w, X[chosen[np.arange(k) % len(chosen)]].toarray())
        if best is None or cost < best_cost:
            best, best_cost = centers, cost
    return best, float(best_cost)


def csr_recluster_starts(X: Any, w: np.ndarray, k: int, u: np.ndarray,
                         max_iter: int = 300) -> tuple[np.ndarray, float]:
    """:func:`~dkmeans.kernels.local.recluster_starts` of CSR rows: weighted
    k-means++ then Lloyd from each row of ``u`` (at most ``max_iter``
    iterations); the best start's centers (k, d) float64 and the inertia of
    its last assignment."""
    def lloyd(X: Any, w: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
        centers, _, inertia = csr_lloyd(X, w, start, max_iter)
        return centers, inertia

    return _best_start(X, w, k, u, lloyd)


def csr_plusplus_starts(X: Any, w: np.ndarray, k: int, u: np.ndarray) -> tuple[np.ndarray, float]:
    """Of the greedy k-means++ starts on CSR rows drawn from the rows of
    ``u`` (:func:`csr_plusplus`), without Lloyd's iterations, the one of
    lowest weighted potential (ties to the earlier start): its centers
    (k, d) float64 and potential."""
    def potential(X: Any, w: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, float]:
        return centers, float(w @ csr_sqdist(X, centers).min(axis=1))

    return _best_start(X, w, k, u, potential)
