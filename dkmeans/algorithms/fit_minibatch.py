"""The mini-batch k-means fit: a scan that draws the seeding sample, then
epochs of batches streamed from the data's source."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from dkmeans import kernels
from dkmeans.algorithms.apply import predict_labels
from dkmeans.algorithms.fit import InitFn, sample_scan
from dkmeans.algorithms.minibatch import MiniBatchResult, StepRules, minibatch
from dkmeans.algorithms.seeding import (
    INIT_METHODS,
    RECLUSTER_WORK,
    draw_key,
    plusplus_starts,
    recluster,
    recluster_tries,
)
from dkmeans.data import Dataset
from dkmeans.passes import ASSIGN_STREAM
from dkmeans.runner import run_pass

#: k-means++ starts per init on a sparse sample (the best potential kept):
#: on TF-IDF rows, 1 and 3 starts ended within 0.1% of each other.
SPARSE_STARTS = 3
#: Lloyd's iterations at most refining a costly k-means++ start on the init
#: sample (rows x d x k over ``RECLUSTER_WORK``); the steps move the centers
#: on anyway. At k = 1,024 on 100,000 x 128 embeddings (a 24,576-row sample)
#: the fixed point took 35 iterations, 1.5 s of a 5-s fit; after 10 the fit
#: ended within 0.02% of its inertia over 2 seeds (benchmarks/README.md). On
#: load_digits (k = 10, a cheap start) it cost 0.04% over 8 seeds: cheap
#: starts still run to their fixed point.
INIT_LLOYD_ITER = 10


@dataclass(frozen=True)
class MiniBatchFit:
    """A fitted mini-batch model, as the algorithms layer returns it.

    Attributes
    ----------
    run : MiniBatchResult
        Final state (centers, counts, steps), epochs and rows read.
    inertia : float
        Over the whole data when ``compute_labels``, else the smoothed batch
        inertia scaled to the total weight (as scikit-learn reports it).
    labels : dask.array.Array of shape (n,) or None
        Lazy: computed from the source when asked for.
    n_passes_read : float
        Passes' worth of rows read: the scan, the epochs, the final
        assignment and any streamed seeding passes.
    timings : dict
    """

    run: MiniBatchResult
    inertia: float
    labels: da.Array | None
    n_passes_read: float
    timings: dict


def init_from_sample(sample: Any, n_clusters: int, init: str, n_init: int,
                     seed: int) -> np.ndarray:
    """Initial centers from an in-memory sample of rows (drawn ~ weight).

    ``"k-means++"``: greedy k-means++ refined by Lloyd on the sample (at
    most :data:`INIT_LLOYD_ITER` iterations when a start is costly), best
    of ``n_init x`` :func:`~dkmeans.algorithms.seeding.recluster_tries`
    starts (up to 10 per init: the sample is small, and one start often
    merges two clusters: on 20 blobs, 1 start of 3 seeds ended 32% above the
    optimum, 3 starts none; fewer when a start is costly); ``"random"``: ``n_clusters``
    rows of the (already random) sample, the best on the sample of
    ``n_init`` such draws. On a sample of mostly zeros (CSR after
    :func:`~dkmeans.kernels.compact`, from sparse or dense input alike),
    ``"k-means++"`` is the best of ``n_init x`` :data:`SPARSE_STARTS` greedy
    k-means++ starts without Lloyd
    (:func:`~dkmeans.algorithms.seeding.plusplus_starts`), as scikit-learn's
    init.
    """
    n = sample.shape[0]
    if init == "random":
        rng = np.random.default_rng([seed, n])
        draws = [kernels.rows(sample, rng.choice(n, n_clusters, replace=n < n_clusters))
                 for _ in range(n_init)]
        return min(draws, key=lambda c: kernels.nearest(sample, c)[1].sum())
    if kernels.is_sparse(sample):
        return plusplus_starts(sample, n_clusters, seed, 0, n_init * SPARSE_STARTS)
    # as many starts as reclustering k-means|| candidates would try: at k =
    # 1,024 on a 24,576-row sample, 30 starts took 85 s of an 87-s fit
    costly = n * sample.shape[1] * n_clusters > RECLUSTER_WORK
    return recluster(sample, np.ones(n), n_clusters, seed, 0,
                     tries=n_init * recluster_tries(*sample.shape, n_clusters),
                     max_iter=INIT_LLOYD_ITER if costly else 300)


def fit_minibatch_kmeans(data: Dataset, n_clusters: int, *, init: str | np.ndarray | InitFn,
                         n_init: int, max_iter: int, batch_size: int, tol: float,
                         max_no_improvement: int | None, reassignment_ratio: float,
                         init_size: int, seed: int, compute_labels: bool,
                         verbose: int = 0,
                         on_window: Callable[[Any, int], None] | None = None) -> MiniBatchFit:
    """Mini-batch k-means over a dataset, reading it from its source.

    One scan pass validates the data and draws about ``init_size`` rows ~
    weight (a Poisson sample);
    seeding runs on that sample (``"k-means||"`` instead streams its passes
    over the whole data); then :func:`dkmeans.algorithms.minibatch.minibatch` runs up
    to ``max_iter`` epochs (``on_window(state, epoch)`` after each window of
    groups); with ``compute_labels`` one last pass gives the inertia over all
    rows.

    Parameters
    ----------
    data : Dataset
        The rows and weights (:func:`dkmeans.data.as_dataset`).
    n_clusters, init, n_init, max_iter, batch_size, tol, max_no_improvement, \
reassignment_ratio, init_size, compute_labels, verbose : as MiniBatchKMeans
        Resolved values (``init_size`` an int, ``init`` a name, an array or
        a callable).
    seed : int
        The seed every random stream is keyed by.
    on_window : callable, optional
        Called as ``on_window(state, epoch)`` after each window of groups.

    Returns
    -------
    MiniBatchFit
    """
    timings = {}
    t0 = time.perf_counter()
    blocks = data.blocks()
    n = data.n_samples
    stats = sample_scan(data, blocks, draw_key(seed, 0), init_size)
    passes_read = 1.0
    timings["scan"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    if isinstance(init, str) and init in ("k-means++", "random"):
        centers = init_from_sample(kernels.compact(stats.draw.rows), n_clusters, init, n_init,
                                   seed)
    elif isinstance(init, str):  # k-means||: passes over the whole stream
        seeding = INIT_METHODS[init](blocks, n_clusters, seed, 0, first=stats.draw,
                                     stream=True)
        centers, passes_read = seeding.centers, passes_read + seeding.n_passes
    elif callable(init):
        centers = init(stats.draw.rows, n_clusters, 0)
    else:
        centers = init
    centers = np.asarray(centers, dtype=data.dtype)
    timings["seeding"] = time.perf_counter() - t1
    rules = StepRules(reassignment_ratio, tol * stats.mean_variance, max_no_improvement,
                      batch_size, n, seed)
    run = minibatch(blocks, centers, rules, max_epochs=max_iter,
                    row_bytes=data.n_features * data.dtype.itemsize, verbose=verbose,
                    on_window=on_window)
    timings["minibatch"] = run.seconds
    passes_read += run.rows_read / n
    labels = None
    if compute_labels:
        t2 = time.perf_counter()
        inertia = run_pass(ASSIGN_STREAM, blocks, run.state.centers).inertia
        labels = predict_labels(data.X, run.state.centers)
        passes_read += 1
        timings["labels"] = time.perf_counter() - t2
    else:
        inertia = run.state.ewa_inertia * stats.weight_sum
    return MiniBatchFit(run, float(inertia), labels, passes_read, timings)
