"""The k-medians passes: the L1 assignment with each cluster's bounds, and
the rounds that narrow every (cluster, feature) weighted median."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dkmeans.kernels import medians
from dkmeans.runner import Pass


@dataclass(frozen=True)
class MedianStart:
    """An L1 assignment's totals.

    Attributes
    ----------
    objective : float
        Weighted sum of L1 distances to the nearest center.
    weights : ndarray of shape (k,)
        Weight of each cluster (rows of positive weight only).
    rows : ndarray of shape (k,), int64
        Rows of positive weight in each cluster.
    low, high : ndarray of shape (k, d)
        Smallest and largest value of each feature in each cluster
        (+inf / -inf for an empty one).
    """

    objective: float
    weights: np.ndarray
    rows: np.ndarray
    low: np.ndarray
    high: np.ndarray


def start_chunk(x, w, offset: int, centers: np.ndarray) -> MedianStart:
    labels, dist = medians.nearest_l1(x, centers)
    objective = float(dist.sum() if w is None else w @ dist)
    return MedianStart(objective, *medians.cluster_bounds(x, w, labels, len(centers)))


def start_combine(parts: Sequence[MedianStart]) -> MedianStart:
    return MedianStart(sum(p.objective for p in parts), sum(p.weights for p in parts),
                       sum(p.rows for p in parts),
                       np.minimum.reduce([p.low for p in parts]),
                       np.maximum.reduce([p.high for p in parts]))


MEDIAN_START = Pass("dkmeans-median-start", start_chunk, start_combine)
"""Pass 1 of a k-medians iteration: the objective of the current centers and
each cluster's weight, rows and bounds (the medians' first intervals)."""


@dataclass(frozen=True)
class MedianRound:
    """One narrowing round, per (cluster, feature) still open.

    Attributes
    ----------
    below : ndarray of shape (k, d)
        Weight of the values below each interval.
    hist, rows, low, high : ndarray of shape (k, d, bins)
        Weight, row count, smallest and largest value of each bin (pairs
        being narrowed).
    pair, values, weights : ndarray of shape (m,)
        The values themselves (pairs with few rows left): ``cluster * d +
        feature``, value, weight.
    """

    below: np.ndarray
    hist: np.ndarray
    rows: np.ndarray
    low: np.ndarray
    high: np.ndarray
    pair: np.ndarray
    values: np.ndarray
    weights: np.ndarray


def round_chunk(x, w, offset: int, centers: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                narrow: np.ndarray, ship: np.ndarray, bins: int) -> MedianRound:
    labels, _ = medians.nearest_l1(x, centers)
    return MedianRound(*medians.median_round(x, w, labels, lo, hi, narrow, ship, bins))


def round_combine(parts: Sequence[MedianRound]) -> MedianRound:
    return MedianRound(sum(p.below for p in parts), sum(p.hist for p in parts),
                       sum(p.rows for p in parts), np.minimum.reduce([p.low for p in parts]),
                       np.maximum.reduce([p.high for p in parts]),
                       np.concatenate([p.pair for p in parts]),
                       np.concatenate([p.values for p in parts]),
                       np.concatenate([p.weights for p in parts]))


MEDIAN_ROUND = Pass("dkmeans-median-round", round_chunk, round_combine)
"""A narrowing round: histograms for the (cluster, feature) pairs with many
rows in their interval, the values themselves for those with few."""
