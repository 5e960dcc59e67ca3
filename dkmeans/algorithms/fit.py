"""The whole k-means fit, from a dataset to a fitted model.

:func:`fit_kmeans` decides whether to persist the data, runs the first pass
(validation, moments, first random draw), then seeding and Lloyd for each of
``n_init`` runs, and keeps the best. Data never leaves the workers: only the
small intermediates of each pass reach the client.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import numpy as np
from dask.delayed import delayed
from sklearn.exceptions import ConvergenceWarning

from dkmeans import kernels
from dkmeans.algorithms.apply import predict_labels
from dkmeans.algorithms.kmedians import kmedians
from dkmeans.algorithms.kmedians import labels as kmedians_labels
from dkmeans.algorithms.lloyd import LloydProgress, LloydResult, lloyd
from dkmeans.algorithms.seeding import INIT_METHODS, draw_key, init_rounds_for
from dkmeans.data import Dataset
from dkmeans.data.dataset import row_blocks
from dkmeans.data.storage import active_client
from dkmeans.data.workers import memory_budget
from dkmeans.errors import InvalidInputError, InvalidParameterError, not_finite
from dkmeans.passes import SCAN, ScanStats
from dkmeans.runner import Block, blas_pinned, compute, pair_state, run_pass


@dataclass(frozen=True)
class KMeansResult:
    """A fitted k-means model, as the algorithms layer returns it.

    Attributes
    ----------
    centers : ndarray of shape (k, d)
    labels : dask.array.Array or ndarray of shape (n,), int32
        Labels of the best run, persisted where the data was; for streamed
        data, a lazy assignment computed from the source when asked for; for
        local data (:attr:`Dataset.local`), in memory.
    inertia : float
    n_iter : int
    inertia_history : ndarray of shape (n_iter,)
    tol : float
        The absolute tolerance used (``tol`` x mean feature variance).
    timings : dict
        Seconds spent in each phase ("scan", "seeding", "lloyd").
    n_seeding_passes : int
    counts : ndarray of shape (k,), optional
        Total sample weight assigned to each center.
    """

    centers: np.ndarray
    labels: da.Array
    inertia: float
    n_iter: int
    inertia_history: np.ndarray
    tol: float
    timings: dict = field(default_factory=dict)
    n_seeding_passes: int = 0
    counts: np.ndarray | None = None


def _as_block(labels: Any, n: int) -> da.Array:
    """One block of labels: a future on a cluster, an array locally."""
    if isinstance(labels, np.ndarray):
        return da.from_array(labels, chunks=(n,))
    # a distributed Future of the pass's (labels, result) pair: the task depends
    # on it, so it stays alive with labels_
    return da.from_delayed(delayed(pair_state, pure=True)(labels), shape=(n,),
                           dtype=np.int32)


def should_persist(data: Dataset, persist: bool | str) -> bool:
    """Persist in-memory and fitting data; stream what would not fit.

    ``"auto"`` persists when the data takes at most half the workers' memory.
    """
    if data.source == "numpy":
        return True
    if persist == "auto":
        return data.memory_bytes() <= 0.5 * memory_budget()
    return bool(persist)


def scan(blocks: Sequence[Block], key: np.ndarray, m: int, split_every: int = 8,
         rate: float = 0.0) -> ScanStats:
    """Pass 0: check every value, compute the moments, draw ``m`` rows ~ weight
    (with ``rate``, a Poisson sample of about ``rate x`` total weight rows, at
    most ``m``: see :func:`dkmeans.passes.scan_chunk`).

    Raises
    ------
    InvalidInputError
        Naming the first row with NaN or infinity, or the first bad weight.
    """
    stats = run_pass(SCAN, blocks, key, m, rate, split_every=split_every)
    if stats.bad_row >= 0:
        raise not_finite(stats.bad_row)
    if stats.bad_weight >= 0:
        raise InvalidInputError(
            "sample_weight must be finite and non-negative; found a bad value at "
            f"index {stats.bad_weight}.")
    if not stats.weight_sum > 0:
        raise InvalidInputError("sample_weight sums to zero; at least one row must have a "
                                "positive weight.")
    return stats


def sample_scan(data: Dataset, blocks: Sequence[Block], key: np.ndarray,
                size: int) -> ScanStats:
    """:func:`scan` drawing a Poisson sample of about ``size`` rows ~ weight.

    Each block ships only its share of the sample (not ``size`` rows, as an
    exact draw of ``size`` would: measured on 120 blocks, 196,608 rows each
    made the workers spill). The row with the largest key (a random member)
    serves as a first center.
    """
    total = data.n_samples if data.weights is None else float(compute(data.weights.sum())[0])
    return scan(blocks, key, 2 * size + 100, rate=size / total)


InitFn = Callable[[Sequence[Block], int, int], np.ndarray]

#: ``init_size="auto"`` seeds on a sample of this many rows, or of
#: :data:`SAMPLE_ROWS_PER_CENTER` x k if more, when the data has at least
#: :data:`SAMPLE_WHEN_RATIO` times as many rows. k-means|| over all rows
#: costs ``init_rounds + 1`` passes over the data; over streamed data each
#: is a read of it from storage, the whole fit's main cost.
SAMPLE_ROWS = 1 << 17
SAMPLE_ROWS_PER_CENTER = 128
SAMPLE_WHEN_RATIO = 8
#: and at most this many bytes of rows, the sample being held in this process
SAMPLE_MAX_BYTES = 256 << 20


def seeding_sample_size(init_size: int | str | None, data: Dataset, k: int) -> int | None:
    """The rows to seed on for ``init_size`` (see :func:`fit_kmeans`), or
    None to seed over all rows: ``"auto"`` samples data of at least
    :data:`SAMPLE_WHEN_RATIO` times the sample's rows; an integer samples
    data larger than it."""
    n = data.n_samples
    if init_size is None or data.local is not None:
        return None
    if init_size != "auto":
        return int(init_size) if int(init_size) < n else None
    size = max(SAMPLE_ROWS, SAMPLE_ROWS_PER_CENTER * k)
    if n < SAMPLE_WHEN_RATIO * size:
        return None  # the data is small
    # sparse rows are drawn as CSR: their non-zeros' bytes, not their width
    row_bytes = (data.memory_bytes() / n if data.sparse
                 else data.n_features * data.dtype.itemsize)
    size = min(size, int(SAMPLE_MAX_BYTES // max(row_bytes, 1)))
    if size < SAMPLE_ROWS_PER_CENTER * k // 4 or n < SAMPLE_WHEN_RATIO * size:
        return None  # wide rows leave too small a sample; or the data is small
    return size


def first_pass(data: Dataset, blocks: Sequence[Block], seed: int, sample: int | None,
               draw_m: int = 1, split_every: int = 8) -> tuple[ScanStats, list[Block]]:
    """The scan, and the blocks seeding runs on: with ``sample`` rows (see
    :func:`seeding_sample_size`), the sample it draws as one in-memory
    block; else the data's blocks (and ``draw_m`` rows drawn ~ weight)."""
    if not sample:
        return scan(blocks, draw_key(seed, 0), draw_m, split_every), list(blocks)
    stats = sample_scan(data, blocks, draw_key(seed, 0), sample)
    return stats, sample_blocks(stats.draw.rows)


#: A sample of at least this many values is split into blocks that the
#: threaded scheduler runs on every core; a smaller one is one block, run in
#: this thread (where a pass costs no scheduling). At k = 1,024, 10 Lloyd
#: iterations on a 30,000 x 128 sample took 1.14 s as one block, 0.6 s split.
SAMPLE_THREADED_VALUES = 1 << 20


def sample_blocks(rows: np.ndarray) -> list[Block]:
    """The in-memory sample as the blocks seeding and iterations run on: on
    a local scheduler and when large, two blocks per core (the passes'
    results do not depend on the blocks: counter-based draws by row, exact
    sums); else one block. On a distributed cluster it stays here, in one
    block, rather than travel to the workers every pass."""
    threads = os.cpu_count() or 1
    if kernels.is_sparse(rows):  # CSR rows drawn from sparse data: one block
        return [Block(rows, None, 0, rows.shape[0])]
    if rows.size < SAMPLE_THREADED_VALUES or threads == 1 or active_client() is not None:
        return [Block(rows, None, 0, len(rows))]
    arr = row_blocks(rows, -(-len(rows) // (2 * threads)))
    return Dataset(arr, None, "numpy", persisted=True).blocks()


def _min_size(min_cluster_size: float | None, total: float, k: int) -> float | None:
    """The minimum cluster weight, warning when the data cannot allow it."""
    if not min_cluster_size:
        return None
    size = min_cluster_size * total if min_cluster_size < 1 else float(min_cluster_size)
    if k * size > total:
        warnings.warn(f"min_cluster_size: {k} clusters of weight {size:g} need {k * size:g}, "
                      f"more than the data's total weight {total:g}; some will be smaller.",
                      ConvergenceWarning, stacklevel=4)
    return size


def fit_kmeans(data: Dataset, n_clusters: int, *, init: str | np.ndarray | InitFn,
               n_init: int = 1, max_iter: int = 300, tol: float = 1e-4, seed: int = 0,
               oversampling_factor: float = 2.0, init_rounds: int | None = None,
               persist: bool | str = "auto", split_every: int = 8,
               verbose: int = 0, bounds: bool = False, start: LloydProgress | None = None,
               on_iteration: Callable[[LloydProgress], None] | None = None,
               unit_centers: bool = False,
               min_cluster_size: float | None = None,
               manhattan: bool = False, init_size: int | str | None = None,
               train_size: int | None = None) -> KMeansResult:
    """Fit k-means on a dataset: seeding, then Lloyd, best of ``n_init`` runs.

    Parameters
    ----------
    data : Dataset
    n_clusters : int
    init : {"k-means||", "k-means++", "random"}, ndarray of shape (k, d), or callable
        A callable takes ``(blocks, n_clusters, run)`` and returns centers.
    n_init : int
    max_iter : int
    tol : float
        Relative to the mean feature variance.
    seed : int
    oversampling_factor, init_rounds
        k-means|| parameters (``init_rounds`` None:
        :func:`~dkmeans.algorithms.seeding.init_rounds_for`).
    persist : bool or "auto"
    split_every : int
    verbose : int
    bounds : bool
        Keep per-row distance bounds between Lloyd iterations (Hamerly); used
        only when the data is persisted, since the bounds take memory per row.
    start : LloydProgress, optional
        Resume from a checkpoint (``n_init`` must be 1): no seeding, Lloyd
        continues from the checkpoint's centers and history.
    on_iteration : callable, optional
        Passed to :func:`~dkmeans.algorithms.lloyd.lloyd` (progress, checkpoints).
    unit_centers : bool
        Spherical k-means (rows already of unit length): centers are scaled
        to unit length after seeding and every update.
    min_cluster_size : float, optional
        Minimum cluster weight (a fraction of the total weight if below 1),
        enforced by splitting the largest cluster (see :func:`lloyd`).
    manhattan : bool
        k-medians (:func:`dkmeans.algorithms.kmedians.kmedians`) instead of Lloyd.
    init_size : int, "auto" or None
        Seed ``"k-means||"`` and ``"k-means++"`` on about this many rows
        drawn ~ weight in the scan pass, in memory, instead of over all rows
        (see :func:`seeding_sample_size`); None: over all rows.
    train_size : int, optional
        Seed *and iterate* on about this many rows drawn ~ weight in the scan
        pass, in memory, then assign every row to the centers found in one
        more pass: two passes over the data in all, an approximation (the
        iterations see a sample). Ignored when the data is not larger.

    Returns
    -------
    KMeansResult
    """
    if start is not None and train_size:
        raise InvalidParameterError("A train_size fit keeps no checkpoints to resume from: it "
                                    "reads the data twice; fit it again.")
    if start is not None and n_init != 1:
        raise InvalidParameterError("Resuming needs n_init=1: a checkpoint holds one run, "
                                    f"and n_init={n_init}.")
    timings = {}
    t0 = time.perf_counter()
    if should_persist(data, persist):
        data = data.persist()
    blocks = data.blocks()
    stream = not data.persisted
    draw_m = n_clusters if isinstance(init, str) and init == "random" else 1
    sample = (seeding_sample_size(init_size, data, n_clusters)
              if start is None and isinstance(init, str) and init != "random" else None)
    if train_size and manhattan:
        raise InvalidParameterError("train_size applies to metric='euclidean' or 'cosine': "
                                    "k-medians iterates over every row.")
    train = bool(train_size and train_size < data.n_samples)
    if train:
        sample = train_size
    # in-memory data: BLAS pinned once for the fit, not once per pass
    with blas_pinned(data.local is not None):
        stats, seed_blocks = first_pass(data, blocks, seed, sample, draw_m, split_every)
        tol_abs = tol * stats.mean_variance
        min_size = _min_size(min_cluster_size, stats.weight_sum, n_clusters)
        timings["scan"] = time.perf_counter() - t0

        best: LloydResult | None = None
        n_passes = 0
        timings["seeding"] = timings["lloyd"] = 0.0
        for run in range(n_init):
            t1 = time.perf_counter()
            if start is not None:
                centers = start.centers
            elif isinstance(init, str):
                seeding = INIT_METHODS[init](
                    seed_blocks, n_clusters, seed, run,
                    first=stats.draw if run == 0 and not sample else None,
                    oversampling_factor=oversampling_factor,
                    init_rounds=init_rounds_for(n_clusters) if init_rounds is None
                    else init_rounds,
                    stream=stream and not sample)
                # passes over an in-memory sample are not passes over the data
                centers = seeding.centers
                n_passes += 0 if sample else seeding.n_passes
            elif callable(init):
                centers = init(blocks, n_clusters, run)
            else:
                centers = init
            centers = np.asarray(centers, dtype=data.dtype)
            if unit_centers:
                centers = kernels.unit_length(centers)
            t2 = time.perf_counter()
            if train:  # the iterations on the sample: no pass over the data
                # (the minimum cluster weight in the sample's units: its
                # rows are unweighted, drawn ~ weight)
                rows = sum(b.n for b in seed_blocks)
                result = lloyd(seed_blocks, centers, max_iter=max_iter, tol=tol_abs,
                               verbose=verbose, keep_labels=False, unit_centers=unit_centers,
                               min_size=min_size and min_size * rows / stats.weight_sum)
            elif manhattan:
                result = kmedians(blocks, centers, max_iter=max_iter, tol=tol_abs,
                                  split_every=split_every, start=start,
                                  on_iteration=on_iteration)
            else:
                result = lloyd(blocks, centers, max_iter=max_iter, tol=tol_abs,
                               verbose=verbose, split_every=split_every,
                               keep_bounds=bounds and not stream, keep_labels=not stream,
                               start=start, on_iteration=on_iteration,
                               unit_centers=unit_centers, quanta=stats.quanta,
                               min_size=min_size)
            timings["seeding"] += t2 - t1
            timings["lloyd"] += time.perf_counter() - t2
            if verbose:
                print(f"Run {run}: inertia {result.inertia:.6g} after {result.n_iter} "
                      "iterations")
            if best is None or result.inertia < best.inertia:
                best = result
    assert best is not None
    if train:  # every row assigned to the sample's centers: the one pass that reads them
        t3 = time.perf_counter()
        full = lloyd(blocks, best.centers, max_iter=0, keep_labels=not stream,
                     split_every=split_every, quanta=stats.quanta)
        best = replace(full, n_iter=best.n_iter, inertia_history=best.inertia_history,
                       n_relocated=best.n_relocated)
        n_passes += 1
        timings["lloyd"] += time.perf_counter() - t3

    if min_size and (best.counts < min_size).any():
        warnings.warn(f"{int((best.counts < min_size).sum())} clusters weigh less than "
                      f"min_cluster_size ({min_size:g}): the data could not be split so.",
                      ConvergenceWarning, stacklevel=3)
    n_distinct = int((best.counts > 0).sum())
    if n_distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({n_distinct}) found smaller than n_clusters "
            f"({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning, stacklevel=3)
    if manhattan and data.local is not None:
        labels = kmedians_labels(data.local, best.centers)
    elif stream or manhattan:  # nothing per row kept: labels are read again when asked for
        labels = predict_labels(data.X, best.centers, "manhattan" if manhattan else "euclidean")
    elif data.local is not None:
        labels = np.concatenate(best.labels)
    else:
        labels = da.concatenate([_as_block(s, b.n) for s, b in
                                 zip(best.labels, blocks, strict=True)])
    return KMeansResult(best.centers, labels, best.inertia, best.n_iter,
                        best.inertia_history, tol_abs, timings, n_passes, best.counts)
