"""Passes that evaluate a clustering: per-cluster moments, distances to the
cluster means, contingency tables and labelled samples.

Like :mod:`dkmeans.passes`, each pass is a chunk / combine pair over blocks
with a small frozen-dataclass intermediate. Their blocks pair rows with
labels: ``Block.x`` is the rows (or the true labels) and ``Block.w`` the
labels of the same rows (see :func:`dkmeans.evaluate.metrics.paired_blocks`).
Clusters are keyed by their label value, so any integer labels work and a
label absent from a block costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dkmeans import kernels
from dkmeans.kernels import sampling
from dkmeans.passes import TopRows
from dkmeans.runner import Pass


@dataclass(frozen=True)
class ClusterMoments:
    """Count, mean and sum of squared deviations of every cluster.

    Attributes
    ----------
    labels : ndarray of shape (c,)
        The label values present, sorted.
    counts : ndarray of shape (c,), float64
    means : ndarray of shape (c, d), float64
    m2 : ndarray of shape (c,), float64
        Sum over the cluster's rows of the squared distance to its mean.
    """

    labels: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    m2: np.ndarray


def cluster_moments_chunk(x, labels, offset: int) -> ClusterMoments:
    values, inverse = np.unique(labels, return_inverse=True)
    if kernels.is_sparse(x):
        return ClusterMoments(values, *kernels.csr_group_moments(x, inverse, values.size))
    counts = np.bincount(inverse, minlength=values.size).astype(np.float64)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.intp)
    sums = np.add.reduceat(x[order].astype(np.float64), starts, axis=0)
    means = sums / counts[:, None]
    diff = x - means[inverse]
    m2 = np.bincount(inverse, weights=np.einsum("ij,ij->i", diff, diff),
                     minlength=values.size)
    return ClusterMoments(values, counts, means, m2)


def cluster_moments_combine(parts: Sequence[ClusterMoments]) -> ClusterMoments:
    """Merge per cluster with Chan et al.'s pairwise update (stable in one pass)."""
    labels = np.unique(np.concatenate([p.labels for p in parts]))
    d = parts[0].means.shape[1]
    counts = np.zeros(labels.size)
    means = np.zeros((labels.size, d))
    m2 = np.zeros(labels.size)
    for p in parts:
        at = np.searchsorted(labels, p.labels)
        n_a, n_b = counts[at], p.counts
        n = n_a + n_b
        delta = p.means - means[at]
        means[at] += delta * (n_b / n)[:, None]
        m2[at] += p.m2 + np.einsum("ij,ij->i", delta, delta) * n_a * n_b / n
        counts[at] = n
    return ClusterMoments(labels, counts, means, m2)


CLUSTER_MOMENTS = Pass("dkmeans-cluster-moments", cluster_moments_chunk,
                       cluster_moments_combine)


@dataclass(frozen=True)
class LabelTotals:
    """A float64 total per label value (sums of distances to cluster means)."""

    labels: np.ndarray
    values: np.ndarray


def mean_distance_chunk(x, labels, offset: int, label_values: np.ndarray,
                        means: np.ndarray) -> LabelTotals:
    """Sum over each cluster's rows of the (unsquared) distance to its mean."""
    at = np.searchsorted(label_values, labels)
    dist = np.sqrt(kernels.row_sqdist_to(x, means, at))
    return LabelTotals(label_values, np.bincount(at, weights=dist,
                                                 minlength=label_values.size))


def label_totals_combine(parts: Sequence[LabelTotals]) -> LabelTotals:
    return LabelTotals(parts[0].labels, np.sum([p.values for p in parts], axis=0))


MEAN_DISTANCE = Pass("dkmeans-mean-distance", mean_distance_chunk, label_totals_combine)


@dataclass(frozen=True)
class Contingency:
    """Counts of (true label, predicted label) pairs.

    Attributes
    ----------
    pairs : ndarray of shape (p, 2), int64
        Distinct pairs, sorted.
    counts : ndarray of shape (p,), int64
    """

    pairs: np.ndarray
    counts: np.ndarray

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true label values, predicted label values, dense (t, p) counts)."""
        true, ti = np.unique(self.pairs[:, 0], return_inverse=True)
        pred, pi = np.unique(self.pairs[:, 1], return_inverse=True)
        table = np.zeros((true.size, pred.size), dtype=np.int64)
        table[ti, pi] = self.counts
        return true, pred, table


def contingency_chunk(true, pred, offset: int) -> Contingency:
    pairs, counts = np.unique(np.stack([np.asarray(true, np.int64),
                                        np.asarray(pred, np.int64)], axis=1),
                              axis=0, return_counts=True)
    return Contingency(pairs.reshape(-1, 2), counts.astype(np.int64))


def contingency_combine(parts: Sequence[Contingency]) -> Contingency:
    pairs = np.concatenate([p.pairs for p in parts])
    counts = np.concatenate([p.counts for p in parts])
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return Contingency(unique.reshape(-1, 2),
                       np.bincount(inverse.ravel(), weights=counts,
                                   minlength=len(unique)).astype(np.int64))


CONTINGENCY = Pass("dkmeans-contingency", contingency_chunk, contingency_combine)


def labelled_sample_chunk(x, labels, offset: int, key: np.ndarray, m: int) -> TopRows:
    """A uniform sample of ``m`` rows with their labels (exponential race)."""
    pos, keys = sampling.race_top_m(key, offset, np.ones(x.shape[0]), m)
    return TopRows.at(m, pos, keys, x, None, offset, np.asarray(labels, np.int32))


LABELLED_SAMPLE = Pass("dkmeans-labelled-sample", labelled_sample_chunk, TopRows.merge)


@dataclass(frozen=True)
class Agreement:
    """Contingency tables of several clusterings of the same rows, each pair
    counted on the rows both clusterings were fitted on.

    Attributes
    ----------
    runs : ndarray of shape (p, k, k), int64
        One table per pair ``(a, b)``, ``a < b``, of the subsample runs
        (in :func:`itertools.combinations` order).
    reference : ndarray of shape (r, k, k), int64
        For each run, the reference clustering's labels (rows) against the
        run's (columns) on that run's rows.
    """

    runs: np.ndarray
    reference: np.ndarray


def agreement_chunk(x, w, offset: int, reference: np.ndarray, centers: Sequence[np.ndarray],
                    keys: Sequence[np.ndarray], subsample: float) -> Agreement:
    """The tables on one block: every run's labels and subsample (rows whose
    uniform under the run's key is below ``subsample``, of positive weight)."""
    k = len(reference)
    n = x.shape[0]
    ref = kernels.nearest(x, reference)[0]
    positive = np.ones(n, bool) if w is None else np.asarray(w) > 0
    labels = [kernels.nearest(x, c)[0] for c in centers]
    members = [positive & (sampling.row_uniforms(key, offset, n) < subsample)
               for key in keys]

    def table(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.bincount(a[rows].astype(np.int64) * k + b[rows],
                           minlength=k * k).reshape(k, k)

    r = len(centers)
    runs = [table(labels[a], labels[b], members[a] & members[b])
            for a in range(r) for b in range(a + 1, r)]
    return Agreement(np.array(runs, dtype=np.int64).reshape(-1, k, k),
                     np.array([table(ref, labels[a], members[a]) for a in range(r)],
                              dtype=np.int64).reshape(-1, k, k))


def agreement_combine(parts: Sequence[Agreement]) -> Agreement:
    return Agreement(sum(p.runs for p in parts), sum(p.reference for p in parts))


AGREEMENT = Pass("dkmeans-agreement", agreement_chunk, agreement_combine, exact=True)
"""Every pair of clusterings' contingency table on their shared rows, in one pass."""
