"""What the passes share: their small intermediates (frozen dataclasses)
and the streaming form of a stateful pass."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dkmeans import kernels
from dkmeans.kernels import exact
from dkmeans.runner import Pass

# --------------------------------------------------------------------------
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
    rows : ndarray or CSR matrix of shape (r, d)
        CSR when drawn from sparse blocks (:func:`~dkmeans.kernels.take`).
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
            rows=kernels.take(x, pos),
            weights=np.ones(pos.size) if w is None else w[pos].astype(np.float64),
            labels=np.full(pos.size, -1, np.int32) if labels is None else labels[pos],
        )

    @staticmethod
    def merge(parts: Sequence[TopRows]) -> TopRows:
        if len(parts) == 1:  # ranked already
            return parts[0]
        keys = np.concatenate([p.keys for p in parts])
        index = np.concatenate([p.index for p in parts])
        # each part is ranked, so a stable sort merges runs (a fraction of a
        # lexsort's time); equal keys from different parts need the index
        order = np.argsort(-keys, kind="stable")
        ranked = keys[order]
        if (ranked[1:] == ranked[:-1]).any():
            order = np.lexsort((index, -keys))
        order = order[: parts[0].m]
        return TopRows(
            m=parts[0].m,
            keys=keys[order],
            index=index[order],
            rows=kernels.stack([p.rows for p in parts])[order],
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
    max_abs : ndarray (d,)
        Largest absolute value of each column.
    max_weight : float
        Largest weight (1 without weights).
    """

    bad_row: int
    bad_weight: int
    n: int
    mean: np.ndarray
    m2: np.ndarray
    weight_sum: float
    draw: TopRows
    max_abs: np.ndarray
    max_weight: float

    @property
    def mean_variance(self) -> float:
        return float(np.mean(self.m2 / max(self.n, 1)))

    @property
    def quanta(self) -> np.ndarray:
        """The grid of the Lloyd passes' exact sums over these rows."""
        return exact.grid(self.n, self.max_weight, self.max_abs)


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
    """One Lloyd iteration's partial results, in a form whose combination is
    exact (:mod:`dkmeans.kernels.exact`): the same totals however the
    chunks' results are grouped, on any scheduler.

    Attributes
    ----------
    sums : ndarray of shape (k, d), int64
        Weighted sums of each cluster's rows, in quanta of ``quanta[:d]``.
    weights : ndarray of shape (k,), int64
        Each cluster's weight, in quanta of ``quanta[d]``.
    quanta : ndarray of shape (d + 1,), float64
    inertia_parts : tuple of float
        Exact partials of the inertia of the centers the pass assigned to.
    n_searched : int
        Rows whose distances to every center were computed (the others kept
        their center, proved unchanged by their bounds).
    far : TopRows or None
        The rows farthest from their centers (:data:`FAR_CANDIDATES` of
        them), found in the same pass, for clusters the pass left empty.
    """

    sums: np.ndarray
    weights: np.ndarray
    quanta: np.ndarray
    inertia_parts: tuple
    n_searched: int = 0
    far: TopRows | None = None

    @property
    def center_sums(self) -> np.ndarray:
        """(k, d) float64 sums."""
        return exact.from_grid(self.sums, self.quanta[:-1])

    @property
    def cluster_weights(self) -> np.ndarray:
        """(k,) float64 weights."""
        return exact.from_grid(self.weights, self.quanta[-1])

    @property
    def inertia(self) -> float:
        return exact.exact_value(self.inertia_parts)


@dataclass(frozen=True)
class Assignment:
    """The final assignment's inertia and weight per center (k,)."""

    inertia: float
    counts: np.ndarray


def weights_or_ones(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if w is None else w.astype(np.float64, copy=False)


def no_weights(w):
    """The kernels' spelling of "every weight is 1"."""
    return np.empty(0) if w is None else w


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
                spec.combine, exact=spec.exact)
