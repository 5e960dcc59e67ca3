"""Clustering metrics over chunked data, in one or two passes, never n^2.

Each function takes what :mod:`sklearn.metrics` takes (rows and labels, or
two labelings) as numpy, dask or Zarr, and agrees with it on data that fits
in memory. Rows and labels stay on the workers; only per-cluster summaries
(counts, means, sums of squares, a contingency table, a sample) reach the
client.

- :func:`inertia`: one pass, from centers;
- :func:`calinski_harabasz_score`: one pass of per-cluster moments;
- :func:`davies_bouldin_score`: that pass, then one of distances to the means;
- :func:`silhouette_score`: exact on a uniform sample of rows (the full score
  is O(n^2)), with its standard error;
- :func:`adjusted_rand_score`, :func:`normalized_mutual_info_score`,
  :func:`v_measure_score`: from a contingency table reduced across chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from dkmeans import kernels
from dkmeans.algorithms.seeding import stream_key
from dkmeans.data import Dataset, as_chunked
from dkmeans.data.validation import as_weights
from dkmeans.errors import InvalidInputError
from dkmeans.evaluate.scoring import (
    CLUSTER_MOMENTS,
    CONTINGENCY,
    LABELLED_SAMPLE,
    MEAN_DISTANCE,
    ClusterMoments,
)
from dkmeans.passes import ASSIGN_STREAM
from dkmeans.runner import Block, run_pass


def _labels(labels: Any, what: str, n: int | None = None,
            chunks: tuple | None = None) -> da.Array:
    """Labels (numpy, dask, zarr.Array or Zarr path) as a 1-D integer dask
    array, of length ``n`` and chunked like the rows when given."""
    if isinstance(labels, str) or type(labels).__module__.startswith("zarr"):
        import zarr

        labels = da.from_zarr(zarr.open_array(labels, mode="r") if isinstance(labels, str)
                              else labels)
    arr = labels if isinstance(labels, da.Array) else da.from_array(np.asarray(labels))
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        expected = "a 1-D array" if n is None else f"({n},), one label per row"
        raise InvalidInputError(f"{what} has shape {arr.shape}; expected {expected}.")
    if np.dtype(arr.dtype).kind not in "iub":
        raise InvalidInputError(f"{what} has dtype {arr.dtype}; expected integer labels.")
    return arr if chunks is None else arr.rechunk((chunks,))


def paired_blocks(first: da.Array, second: da.Array) -> list[Block]:
    """Blocks pairing two arrays with the same row chunks (rows and labels,
    or two labelings): ``Block.x`` from the first, ``Block.w`` the second."""
    xs = first.to_delayed().ravel()
    ys = second.to_delayed().ravel()
    offsets = np.concatenate([[0], np.cumsum(first.chunks[0])[:-1]])
    return [Block(x, y, int(o), int(n), (first, second))
            for x, y, o, n in zip(xs, ys, offsets, first.chunks[0], strict=True)]


def _rows_and_labels(X: Any, labels: Any) -> tuple[da.Array, list[Block]]:
    arr, _ = as_chunked(X)
    lab = _labels(labels, "labels", arr.shape[0], arr.chunks[0])
    return arr, paired_blocks(arr, lab)


def _moments(X: Any, labels: Any):
    _, blocks = _rows_and_labels(X, labels)
    moments = run_pass(CLUSTER_MOMENTS, blocks)
    n_labels, n = moments.labels.size, moments.counts.sum()
    if not 1 < n_labels < n:
        raise InvalidInputError(f"Number of labels is {n_labels}. Valid values are 2 to "
                                f"n_samples - 1 (inclusive)")
    return blocks, moments


def inertia(X: Any, centers: np.ndarray, sample_weight: Any = None) -> float:
    """Weighted sum of squared distances of the rows to their nearest center.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array or Zarr path, of shape (n, d)
    centers : ndarray of shape (k, d)
    sample_weight : array-like of shape (n,), optional

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from dkmeans import metrics
    >>> metrics.inertia(np.array([[0.0], [2.0], [10.0]]), np.array([[1.0], [10.0]]))
    2.0
    """
    arr, _ = as_chunked(X)
    centers = np.asarray(centers, dtype=arr.dtype)
    if centers.ndim != 2 or centers.shape[1] != arr.shape[1]:
        raise InvalidInputError(f"centers have shape {centers.shape}; expected (k, "
                                f"{arr.shape[1]}).")
    blocks = Dataset(arr, as_weights(sample_weight, arr), "dask").blocks()
    return float(run_pass(ASSIGN_STREAM, blocks, centers).inertia)


def calinski_harabasz_score(X: Any, labels: Any) -> float:
    """Calinski-Harabasz index (between- over within-cluster dispersion), one pass.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array or path, of shape (n_samples, n_features)
    labels : array-like or dask array of shape (n_samples,)
        Integer labels (any values), chunked as X's rows or not.

    Returns
    -------
    float
        As :func:`sklearn.metrics.calinski_harabasz_score`.
    """
    _, m = _moments(X, labels)
    return calinski_harabasz_from(m)


def calinski_harabasz_from(m: ClusterMoments) -> float:
    """The Calinski-Harabasz index from per-cluster moments."""
    n, k = m.counts.sum(), m.labels.size
    mean = (m.counts @ m.means) / n
    between = float(m.counts @ ((m.means - mean) ** 2).sum(axis=1))
    within = float(m.m2.sum())
    return 1.0 if within == 0 else between * (n - k) / (within * (k - 1))


def davies_bouldin_score(X: Any, labels: Any) -> float:
    """Davies-Bouldin index: a pass for the cluster means, one for each
    cluster's mean distance to its mean.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array or path, of shape (n_samples, n_features)
    labels : array-like or dask array of shape (n_samples,)
        Integer labels (any values), chunked as X's rows or not.

    Returns
    -------
    float
        As :func:`sklearn.metrics.davies_bouldin_score`.
    """
    blocks, m = _moments(X, labels)
    return davies_bouldin_from(blocks, m)


def davies_bouldin_from(blocks: list[Block], m: ClusterMoments) -> float:
    """The Davies-Bouldin index from per-cluster moments and one more pass."""
    spread = run_pass(MEAN_DISTANCE, blocks, m.labels, m.means).values / m.counts
    gaps = np.sqrt(((m.means[:, None] - m.means[None]) ** 2).sum(axis=2))
    if np.allclose(spread, 0) or np.allclose(gaps, 0):
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (spread[:, None] + spread[None]) / gaps
    ratio[~np.isfinite(ratio)] = 0
    np.fill_diagonal(ratio, 0)
    return float(np.mean(ratio.max(axis=1)))


@dataclass(frozen=True)
class SilhouetteEstimate:
    """The silhouette of a uniform sample of rows.

    Attributes
    ----------
    score : float
        Mean silhouette coefficient of the sampled rows (exact on the sample).
    stderr : float
        Standard error of that mean as an estimate of the full score.
    sample_size : int
    """

    score: float
    stderr: float
    sample_size: int

    def __float__(self) -> float:
        return self.score


def silhouette_score(X: Any, labels: Any, sample_size: int = 10_000,
                     random_state: Any = None) -> float:
    """Silhouette on a uniform sample of ``sample_size`` rows (one pass).

    The full silhouette compares every pair of rows; this draws a uniform
    sample without replacement where the rows live, then computes the exact
    silhouette of the sample (:func:`sklearn.metrics.silhouette_samples`).
    With ``sample_size >= n`` it equals scikit-learn's full score.
    :func:`silhouette_estimate` gives the standard error too.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array or path, of shape (n_samples, n_features)
    labels : array-like or dask array of shape (n_samples,)
    sample_size : int
    random_state : int, RandomState or None
        Seeds the sample; None draws a new one each call, as scikit-learn does.

    Returns
    -------
    float
    """
    return silhouette_estimate(X, labels, sample_size, random_state).score


def silhouette_estimate(X: Any, labels: Any, sample_size: int = 10_000,
                        random_state: Any = None) -> SilhouetteEstimate:
    """:func:`silhouette_score` with its standard error and sample size.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array or path, of shape (n_samples, n_features)
    labels : array-like or dask array of shape (n_samples,)
        Integer labels (any values), chunked as X's rows or not.
    sample_size : int, default 10,000
    random_state : int, RandomState or None

    Returns
    -------
    SilhouetteEstimate
    """
    from sklearn.utils import check_random_state

    _, blocks = _rows_and_labels(X, labels)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    estimate = sampled_silhouette(blocks, stream_key(seed, 9), int(sample_size))
    if np.isnan(estimate.score):
        raise InvalidInputError(f"The sample of {estimate.sample_size} rows has fewer than "
                                "2 labels, or one per row; the silhouette needs 2 to "
                                "n_samples - 1.")
    return estimate


def sampled_silhouette(blocks: list[Block], key: np.ndarray, size: int,
                       ) -> SilhouetteEstimate:
    """Draw a uniform sample of ``size`` labelled rows (one pass) and return
    its exact silhouette (NaN when the sample has one label or one per row)."""
    sample = run_pass(LABELLED_SAMPLE, blocks, key, size)
    # in row order: the same rows give the same bits, whatever order the
    # draw ranked them in (a sample of every row is the data, in order)
    order = np.argsort(sample.index, kind="stable")
    return silhouette_of(sample.rows[order], sample.labels[order])


def silhouette_of(rows: np.ndarray, labels: np.ndarray) -> SilhouetteEstimate:
    """The exact silhouette of in-memory sampled rows, with its standard error
    (NaN when the rows have one label or one per row)."""
    from sklearn.metrics import silhouette_samples

    if not 1 < np.unique(labels).size < len(labels):
        return SilhouetteEstimate(float("nan"), float("nan"), len(labels))
    s = silhouette_samples(kernels.compact(rows).astype(np.float64), labels)
    return SilhouetteEstimate(float(s.mean()), float(s.std(ddof=1) / np.sqrt(s.size)),
                              int(s.size))


def contingency_matrix(labels_true: Any, labels_pred: Any,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contingency table of two labelings, reduced across chunks.

    Parameters
    ----------
    labels_true, labels_pred : array-like or dask array of shape (n_samples,)
        Two labelings of the same rows (integers, any values).

    Returns
    -------
    classes : ndarray of shape (t,)
    clusters : ndarray of shape (p,)
    table : ndarray of shape (t, p), int64
    """
    true = _labels(labels_true, "labels_true")
    pred = _labels(labels_pred, "labels_pred", true.shape[0], true.chunks[0])
    return run_pass(CONTINGENCY, paired_blocks(true, pred)).table()


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _mutual_info(table: np.ndarray) -> float:
    n = table.sum()
    rows, cols = np.nonzero(table)
    nij = table[rows, cols].astype(np.float64)
    a, b = table.sum(axis=1)[rows], table.sum(axis=0)[cols]
    return float(max(0.0, (nij / n * (np.log(nij * n) - np.log(a.astype(float) * b))).sum()))


def _pairs(counts: np.ndarray) -> np.ndarray:
    """Number of unordered pairs, n (n - 1) / 2, in float64."""
    counts = np.asarray(counts, dtype=np.float64)
    return counts * (counts - 1) / 2


def adjusted_rand_score(labels_true: Any, labels_pred: Any) -> float:
    """Adjusted Rand index, as :func:`sklearn.metrics.adjusted_rand_score`.

    Parameters
    ----------
    labels_true, labels_pred : array-like or dask array of shape (n_samples,)
        Two labelings of the same rows (integers, any values).

    Returns
    -------
    float
        1.0 for identical partitions (up to renaming), about 0 for random ones.

    Examples
    --------
    >>> from dkmeans import metrics
    >>> metrics.adjusted_rand_score([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    return ari_from_table(contingency_matrix(labels_true, labels_pred)[2])


def ari_from_table(table: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table (rows: one labeling,
    columns: the other); 1.0 when both put every row together or apart."""
    n = int(table.sum())
    sum_comb = _pairs(table).sum()
    sum_a, sum_b = _pairs(table.sum(axis=1)).sum(), _pairs(table.sum(axis=0)).sum()
    expected = sum_a * sum_b / _pairs(n)
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:  # one cluster each, or every row its own
        return 1.0
    return float((sum_comb - expected) / (maximum - expected))


def _entropies(labels_true: Any, labels_pred: Any) -> tuple[float, float, float]:
    _, _, table = contingency_matrix(labels_true, labels_pred)
    return (_mutual_info(table), _entropy(table.sum(axis=1)),
            _entropy(table.sum(axis=0)))


def normalized_mutual_info_score(labels_true: Any, labels_pred: Any) -> float:
    """Normalized mutual information, with the arithmetic mean of the
    entropies (scikit-learn's default), from the contingency table.

    Parameters
    ----------
    labels_true, labels_pred : array-like or dask array of shape (n_samples,)
        Two labelings of the same rows (integers, any values).

    Returns
    -------
    float
    """
    mi, h_true, h_pred = _entropies(labels_true, labels_pred)
    if h_true == 0 and h_pred == 0:
        return 1.0
    return float(mi / max((h_true + h_pred) / 2, np.finfo(float).eps))


def v_measure_score(labels_true: Any, labels_pred: Any, beta: float = 1.0) -> float:
    """Harmonic mean of homogeneity and completeness, as scikit-learn's.

    Parameters
    ----------
    labels_true, labels_pred : array-like or dask array of shape (n_samples,)
        Two labelings of the same rows (integers, any values).
    beta : float, default 1.0
        Weight of homogeneity against completeness.

    Returns
    -------
    float
    """
    mi, h_true, h_pred = _entropies(labels_true, labels_pred)
    homogeneity = 1.0 if h_true == 0 else mi / h_true
    completeness = 1.0 if h_pred == 0 else mi / h_pred
    if homogeneity + completeness == 0:
        return 0.0
    return float((1 + beta) * homogeneity * completeness
                 / (beta * homogeneity + completeness))
