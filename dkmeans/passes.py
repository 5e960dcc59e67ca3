"""Distributed passes: each one a named chunk / combine / aggregate triple.

A pass runs ``chunk`` once per block of rows, where the block lives, turning
it into a small intermediate (a frozen dataclass); ``combine`` merges a list of
intermediates into one (it is associative, so they are tree-reduced with a
fan-in of ``split_every``); the client then calls the pass's aggregate on the
single result. Only those small intermediates ever leave the workers.

:func:`dkmeans.runner.run_pass` builds and runs the graph of any pass.
Some passes keep per-block state between passes (the running minimum distance
of k-means||, the labels of the final assignment): their chunk function takes
the block's previous state and returns ``(new_state, intermediate)``. The new
states are persisted where they were computed; only the intermediate is
gathered.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dkmeans import kernels
from dkmeans.kernels import sampling
from dkmeans.runner import Pass

# --------------------------------------------------------------------------
# Value objects


@dataclass(frozen=True)
class TopRows:
    """The (at most) ``m`` rows with the largest keys, largest first.

    Ties go to the lower global row index, so the selection is the same for
    any chunking and any reduction tree. Serves both weighted sampling (keys
    of an exponential race) and "farthest points" (keys are distances).

    Attributes
    ----------
    m : int
    keys : ndarray of shape (r,), float64, r <= m
    index : ndarray of shape (r,), int64, global row index
    rows : ndarray of shape (r, d)
    weights : ndarray of shape (r,), float64
    labels : ndarray of shape (r,), int32, the row's center (-1 if unused)
    """

    m: int
    keys: np.ndarray
    index: np.ndarray
    rows: np.ndarray
    weights: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_block(cls, m: int, keys: np.ndarray, x: np.ndarray, w: np.ndarray | None,
                   offset: int, labels: np.ndarray | None = None) -> TopRows:
        """The block's rows with the ``m`` largest of their ``keys``."""
        pos = kernels.top_m(keys, m)
        return cls.at(m, pos, keys[pos], x, w, offset, labels)

    @classmethod
    def at(cls, m: int, pos: np.ndarray, keys: np.ndarray, x: np.ndarray,
           w: np.ndarray | None, offset: int, labels: np.ndarray | None = None) -> TopRows:
        """The block's rows at positions ``pos`` (already ranked), with their keys."""
        return cls(
            m=m,
            keys=np.asarray(keys, dtype=np.float64),
            index=pos.astype(np.int64) + offset,
            rows=x[pos].copy(),
            weights=np.ones(pos.size) if w is None else w[pos].astype(np.float64),
            labels=np.full(pos.size, -1, np.int32) if labels is None else labels[pos],
        )

    @staticmethod
    def merge(parts: Sequence[TopRows]) -> TopRows:
        keys = np.concatenate([p.keys for p in parts])
        index = np.concatenate([p.index for p in parts])
        order = np.lexsort((index, -keys))[: parts[0].m]
        return TopRows(
            m=parts[0].m,
            keys=keys[order],
            index=index[order],
            rows=np.concatenate([p.rows for p in parts])[order],
            weights=np.concatenate([p.weights for p in parts])[order],
            labels=np.concatenate([p.labels for p in parts])[order],
        )


@dataclass(frozen=True)
class ScanStats:
    """Pass 0: validity, column moments, and a weighted draw of rows.

    Attributes
    ----------
    bad_row : int
        Global index of the first row with NaN or infinity, or -1.
    bad_weight : int
        Global index of the first negative or non-finite weight, or -1.
    n, mean, m2 : int, ndarray (d,), ndarray (d,)
        Unweighted row count, column means and centred sums of squares.
    weight_sum : float
    draw : TopRows
        ``m`` rows drawn without replacement with probability ~ weight.
    """

    bad_row: int
    bad_weight: int
    n: int
    mean: np.ndarray
    m2: np.ndarray
    weight_sum: float
    draw: TopRows

    @property
    def mean_variance(self) -> float:
        return float(np.mean(self.m2 / max(self.n, 1)))


@dataclass(frozen=True)
class SeedRound:
    """One seeding round: the current cost and the rows drawn ~ weight x D^2.

    Attributes
    ----------
    cost : float
        Weighted sum of squared distances to the nearest center so far.
    draw : TopRows
    """

    cost: float
    draw: TopRows


@dataclass(frozen=True)
class Totals:
    """A float64 array summed across blocks (candidate masses, potentials)."""

    values: np.ndarray


@dataclass(frozen=True)
class LloydStats:
    """One Lloyd iteration's partial results.

    Attributes
    ----------
    sums : ndarray of shape (k, d), float64
    weights : ndarray of shape (k,), float64
    inertia : float
        Inertia of the centers the pass assigned to.
    far : TopRows
        The rows farthest from their center, for empty-cluster relocation.
    n_searched : int
        Rows whose distances to every center were computed (the others kept
        their center, proved unchanged by their bounds).
    """

    sums: np.ndarray
    weights: np.ndarray
    inertia: float
    far: TopRows
    n_searched: int = 0


@dataclass(frozen=True)
class Assignment:
    """The final assignment's inertia and weight per center (k,)."""

    inertia: float
    counts: np.ndarray


# --------------------------------------------------------------------------
# Pass 0: scan


def scan_chunk(x, w, offset: int, key: np.ndarray, m: int, rate: float = 0.0) -> ScanStats:
    """Check, summarise and sample a block.

    With ``rate`` 0 the draw is the block's ``m`` largest exponential-race
    keys (merged, exactly ``m`` rows ~ weight without replacement). With
    ``rate`` > 0 it is a Poisson sample instead: each row independently with
    probability ``min(1, rate x weight)``, so a block ships only its own
    share of a large sample (about ``rate x`` its weight), not ``m`` rows.
    """
    n, d = x.shape
    bad_row = kernels.first_nonfinite_row(x)
    bad_weight = -1
    if w is not None:
        invalid = ~np.isfinite(w) | (w < 0)
        bad_weight = int(np.argmax(invalid)) + offset if invalid.any() else -1
    if bad_row >= 0 or bad_weight >= 0:
        empty = TopRows(m, np.empty(0), np.empty(0, np.int64), np.empty((0, d), x.dtype),
                        np.empty(0), np.empty(0, np.int32))
        return ScanStats(bad_row + offset if bad_row >= 0 else -1, bad_weight, 0,
                         np.zeros(d), np.zeros(d), 0.0, empty)
    count, mean, m2 = kernels.moments(x)
    weights = _weights_or_ones(w, n)
    if rate > 0:  # members get a positive key, the others 0 (never selected)
        u = sampling.row_uniforms(key, offset, n)
        keys = np.where(u < np.minimum(1.0, rate * weights), 2.0 - u, 0.0)
        draw = TopRows.from_block(m, keys, x, w, offset)
    else:
        draw = TopRows.at(m, *sampling.race_top_m(key, offset, weights, m), x, w, offset)
    return ScanStats(-1, -1, count, mean, m2, float(weights.sum()), draw)


def _weights_or_ones(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if w is None else w.astype(np.float64, copy=False)


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
    )


SCAN = Pass("dkmeans-scan", scan_chunk, scan_combine)


def draw_chunk(x, w, offset: int, key: np.ndarray, m: int) -> TopRows:
    weights = _weights_or_ones(w, x.shape[0])
    return TopRows.at(m, *sampling.race_top_m(key, offset, weights, m), x, w, offset)


DRAW = Pass("dkmeans-draw", draw_chunk, TopRows.merge)
"""Draw ``m`` rows ~ weight (random init of later runs; the first run's draw
comes free with the scan)."""


# --------------------------------------------------------------------------
# Seeding passes (k-means|| rounds and k-means++ steps)


def _no_weights(w):
    """The kernels' spelling of "every weight is 1"."""
    return np.empty(0) if w is None else w


_NO_KEY = np.zeros(2, dtype=np.uint64)  # for a round that draws nothing


def _update_nearest(x, w, state, new_centers: np.ndarray, center_offset: int):
    """Fold new centers into a block's running (min distance, nearest index)."""
    return sampling.seed_round_partials(x, _no_weights(w), state, new_centers, center_offset,
                                        _NO_KEY, 0, 0)[0]


def seed_round_chunk(x, w, offset: int, state, new_centers: np.ndarray, center_offset: int,
                     key: np.ndarray, m: int):
    """Compare rows only to the newest centers, then draw m rows ~ w x D^2."""
    state, cost, pos, keys = sampling.seed_round_partials(
        x, _no_weights(w), state, new_centers, center_offset, key, offset, m)
    return state, SeedRound(cost, TopRows.at(m, pos, keys, x, w, offset))


def seed_round_combine(parts: Sequence[SeedRound]) -> SeedRound:
    return SeedRound(sum(p.cost for p in parts), TopRows.merge([p.draw for p in parts]))


SEED_ROUND = Pass("dkmeans-seed-round", seed_round_chunk, seed_round_combine, stateful=True)


def candidate_mass_chunk(x, w, offset: int, state, new_centers: np.ndarray,
                         center_offset: int, n_candidates: int):
    """Weight of the rows nearest to each candidate (after the last round)."""
    mind, arg = _update_nearest(x, w, state, new_centers, center_offset)
    mass = np.bincount(arg, weights=w, minlength=n_candidates).astype(np.float64)
    return (mind, arg), Totals(mass)


def totals_combine(parts: Sequence[Totals]) -> Totals:
    return Totals(np.sum([p.values for p in parts], axis=0))


CANDIDATE_MASS = Pass("dkmeans-candidate-mass", candidate_mass_chunk, totals_combine,
                      stateful=True)


def potential_chunk(x, w, offset: int, state, trials: np.ndarray) -> Totals:
    """Cost if each trial center were added: sum of w x min(D^2, d(x, trial)^2)."""
    d2 = np.minimum(state[0][:, None], kernels.sqdist(x, trials))
    return state, Totals(_weights_or_ones(w, x.shape[0]) @ d2)


POTENTIAL = Pass("dkmeans-potential", potential_chunk, totals_combine, stateful=True)


# --------------------------------------------------------------------------
# Streaming versions: no per-row state, for data read from its source each
# pass. They compare each row with every center so far instead of keeping a
# running minimum (8 bytes a row for float32 data, 12 for float64) on the
# workers, so memory stays bounded by the chunks in flight, whatever the
# number of rows.


def _without_state(chunk, x, w, offset: int, *args):
    """Run a stateful chunk function from no state; keep only its result."""
    return chunk(x, w, offset, None, *args)[1]


def streaming(spec: Pass) -> Pass:
    """The stateless version of a stateful pass whose chunk function, given
    no state, computes from scratch what the state would have held."""
    return Pass(f"{spec.name}-stream", functools.partial(_without_state, spec.chunk),
                spec.combine)


def potential_stream_chunk(x, w, offset: int, centers: np.ndarray,
                           trials: np.ndarray) -> Totals:
    """:func:`potential_chunk` with the minimum distance recomputed from ``centers``."""
    return potential_chunk(x, w, offset, _update_nearest(x, w, None, centers, 0), trials)[1]


SEED_ROUND_STREAM = streaming(SEED_ROUND)
CANDIDATE_MASS_STREAM = streaming(CANDIDATE_MASS)
POTENTIAL_STREAM = Pass("dkmeans-potential-stream", potential_stream_chunk, totals_combine)


# --------------------------------------------------------------------------
# Lloyd iteration and final assignment


def _far_rows(x, w, offset, n_far, far_d2, far_row, far_label) -> TopRows:
    far = TopRows(n_far, far_d2, far_row + offset, x[far_row].copy(),
                  np.ones(far_row.size) if w is None else w[far_row].astype(np.float64),
                  far_label)
    return TopRows.merge([far])


def lloyd_chunk(x, w, offset: int, centers: np.ndarray, n_far: int) -> LloydStats:
    sums, wsums, inertia, far_d2, far_row, far_label = kernels.lloyd_partials(
        x, _no_weights(w), centers, n_far)
    return LloydStats(sums, wsums, inertia,
                      _far_rows(x, w, offset, n_far, far_d2, far_row, far_label), x.shape[0])


def lloyd_combine(parts: Sequence[LloydStats]) -> LloydStats:
    return LloydStats(
        sums=np.sum([p.sums for p in parts], axis=0),
        weights=np.sum([p.weights for p in parts], axis=0),
        inertia=sum(p.inertia for p in parts),
        far=TopRows.merge([p.far for p in parts]),
        n_searched=sum(p.n_searched for p in parts),
    )


LLOYD = Pass("dkmeans-lloyd", lloyd_chunk, lloyd_combine)


def lloyd_bounded_chunk(x, w, offset: int, state, centers: np.ndarray, n_far: int,
                        half_sep: np.ndarray, drift: np.ndarray, search_all: bool):
    """:func:`lloyd_chunk` keeping per-row bounds between iterations as state,
    so rows whose nearest center cannot have changed skip the distance GEMM."""
    (sums, wsums, inertia, far_d2, far_row, far_label, new_state,
     n_searched) = kernels.lloyd_partials_bounded(
        x, _no_weights(w), centers, n_far, state, half_sep, drift,
        search_all)
    return new_state, LloydStats(sums, wsums, inertia, _far_rows(x, w, offset, n_far, far_d2,
                                                                 far_row, far_label),
                                 n_searched)


LLOYD_BOUNDED = Pass("dkmeans-lloyd-bounded", lloyd_bounded_chunk, lloyd_combine,
                     stateful=True)
"""The Lloyd pass for persisted data: same results as :data:`LLOYD`, with
12 bytes per row of state kept on the workers between iterations."""


def lloyd_aggregate(stats: LloydStats, centers: np.ndarray) -> tuple[np.ndarray, int]:
    """New centers from a Lloyd pass, relocating empty clusters.

    Each empty cluster (zero total weight) moves onto one of the rows
    farthest from their centers, farthest first; that row is taken out of
    its old cluster's sums, as scikit-learn does. A cluster is never moved to
    the origin nor left with a stale center while a row with positive
    distance is available.

    Parameters
    ----------
    stats : LloydStats
        Combined over all blocks.
    centers : ndarray of shape (k, d)
        The centers the pass assigned to.

    Returns
    -------
    new_centers : ndarray of shape (k, d), centers' dtype
    n_relocated : int
    """
    sums = stats.sums.copy()
    weights = stats.weights.copy()
    empty = np.flatnonzero(weights == 0)
    far = stats.far
    n_relocated = 0
    if empty.size and far.keys.size and far.keys[0] > 0:
        for cluster, row, wt, old, dist in zip(empty, far.rows, far.weights, far.labels,
                                               far.keys, strict=False):
            if dist <= 0:
                break
            sums[old] -= wt * row
            weights[old] -= wt
            sums[cluster] = wt * row
            weights[cluster] = wt
            n_relocated += 1
    new = centers.astype(np.float64, copy=True)
    filled = weights > 0
    new[filled] = sums[filled] / weights[filled, None]
    return new.astype(centers.dtype), n_relocated


def assign_chunk(x, w, offset: int, state, centers: np.ndarray):
    """Labels of a block (kept as its state), its inertia and cluster weights."""
    labels, d2 = kernels.nearest(x, centers)
    # one summation order with and without weights: unit weights give the
    # very same inertia as no weights
    inertia = float(_weights_or_ones(w, x.shape[0]) @ d2)
    counts = np.bincount(labels, weights=w, minlength=centers.shape[0]).astype(np.float64)
    return labels, Assignment(inertia, counts)


def assignment_combine(parts: Sequence[Assignment]) -> Assignment:
    return Assignment(sum(p.inertia for p in parts), np.sum([p.counts for p in parts], axis=0))


ASSIGN = Pass("dkmeans-assign", assign_chunk, assignment_combine, stateful=True)
ASSIGN_STREAM = streaming(ASSIGN)
"""The final assignment without keeping labels: streamed data's labels are
computed again from the source when asked for."""
