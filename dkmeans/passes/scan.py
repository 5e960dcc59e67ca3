"""Pass 0: validity, column moments and a weighted draw of rows."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from dkmeans import kernels
from dkmeans.kernels import sampling
from dkmeans.passes.common import ScanStats, TopRows, weights_or_ones
from dkmeans.runner import Pass


def scan_chunk(x, w, offset: int, key: np.ndarray, m: int, rate: float = 0.0) -> ScanStats:
    """Check, summarise and sample a block.

    With ``rate`` 0 the draw is the block's ``m`` largest exponential-race
    keys (merged, exactly ``m`` rows ~ weight without replacement). With
    ``rate`` > 0 it is a Poisson sample instead: each row independently with
    probability ``min(1, rate x weight)``, so a block ships only its own
    share of a large sample (about ``rate x`` its weight), not ``m`` rows.
    """
    n, d = x.shape
    bad_row, mean, m2, max_abs = kernels.column_scan(x) if n else (-1, *np.zeros((3, d)))
    bad_weight = -1
    if w is not None:
        invalid = ~np.isfinite(w) | (w < 0)
        bad_weight = int(np.argmax(invalid)) + offset if invalid.any() else -1
    if bad_row >= 0 or bad_weight >= 0:
        empty = TopRows(m, np.empty(0), np.empty(0, np.int64), np.empty((0, d), x.dtype),
                        np.empty(0), np.empty(0, np.int32))
        return ScanStats(bad_row + offset if bad_row >= 0 else -1, bad_weight, 0,
                         np.zeros(d), np.zeros(d), 0.0, empty, np.zeros(d), 0.0)
    weights = weights_or_ones(w, n)
    if rate > 0:  # members get a positive key, the others 0 (never selected)
        u = sampling.row_uniforms(key, offset, n)
        keys = np.where(u < np.minimum(1.0, rate * weights), 2.0 - u, 0.0)
        draw = TopRows.from_block(m, keys, x, w, offset)
    else:
        draw = TopRows.at(m, *sampling.race_top_m(key, offset, weights, m), x, w, offset)
    max_w = 0.0 if not n else 1.0 if w is None else float(w.max())
    return ScanStats(-1, -1, n, mean, m2, float(weights.sum()), draw, max_abs, max_w)


def magnitude(x, w) -> tuple[int, np.ndarray, float]:
    """Rows, largest absolute value of each column, largest weight: what
    bounds the Lloyd passes' sums (:func:`dkmeans.kernels.exact.grid`)."""
    if not x.shape[0]:
        return 0, np.zeros(x.shape[1]), 0.0
    max_abs = np.maximum(x.max(axis=0), -x.min(axis=0)).astype(np.float64)
    max_w = 1.0 if w is None else float(w.max())
    return x.shape[0], max_abs, max_w


def magnitude_chunk(x, w, offset: int) -> tuple[int, np.ndarray, float]:
    return magnitude(x, w)


def magnitude_combine(parts: Sequence[tuple]) -> tuple[int, np.ndarray, float]:
    return (sum(p[0] for p in parts), np.max([p[1] for p in parts], axis=0),
            max(p[2] for p in parts))


MAGNITUDE = Pass("dkmeans-magnitude", magnitude_chunk, magnitude_combine, exact=True)
"""The bounds of :func:`magnitude` over all rows, for a Lloyd run whose
caller has no scan (the fits take them from their scan)."""


def _first_bad(values) -> int:
    bad = [v for v in values if v >= 0]
    return min(bad) if bad else -1


def scan_combine(parts: Sequence[ScanStats]) -> ScanStats:
    n, mean, m2 = functools.reduce(kernels.merge_moments, [(p.n, p.mean, p.m2) for p in parts])
    return ScanStats(
        bad_row=_first_bad(p.bad_row for p in parts),
        bad_weight=_first_bad(p.bad_weight for p in parts),
        n=n, mean=mean, m2=m2,
        weight_sum=sum(p.weight_sum for p in parts),
        draw=TopRows.merge([p.draw for p in parts]),
        max_abs=np.max([p.max_abs for p in parts], axis=0),
        max_weight=max(p.max_weight for p in parts),
    )


SCAN = Pass("dkmeans-scan", scan_chunk, scan_combine)


def draw_chunk(x, w, offset: int, key: np.ndarray, m: int) -> TopRows:
    weights = weights_or_ones(w, x.shape[0])
    return TopRows.at(m, *sampling.race_top_m(key, offset, weights, m), x, w, offset)


DRAW = Pass("dkmeans-draw", draw_chunk, TopRows.merge)
"""Draw ``m`` rows ~ weight (random init of later runs; the first run's draw
comes free with the scan)."""
