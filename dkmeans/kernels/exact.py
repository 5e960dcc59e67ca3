"""Sums that combine exactly, so a pass's result does not depend on how its
chunks' partial results are grouped.

A Lloyd pass's per-cluster sums are reduced across chunks, and on a cluster
first on each worker (:func:`dkmeans.runner.run_pass`): which chunks meet in
which partial sum depends on where they ran. Floating-point addition is not
associative, so the centers would change in their last bits from run to run.
Instead each chunk's float64 sums are rounded once to a fixed grid and
carried as int64 multiples of it, whose additions are exact in any order;
the scalar inertia is carried as Shewchuk's exact partials and rounded once
(:func:`math.fsum`).

The grid is a power of two per column, from bounds that are maxima (exact
in any order) of the data: ``n_rows x max weight x max |x_f|`` bounds every
partial and total sum of column ``f``, and is at most ``2**GRID_BITS``
quanta, so int64 never overflows. Each chunk's rounding moves a sum by at
most half a quantum, 2**-62 of that bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

#: Quanta in the bound of a column's sum: int64 keeps 2 bits of headroom
#: for the half-quantum roundings of up to 2**61 chunks.
GRID_BITS = 61


def grid(n_rows: int, max_weight: float, max_abs: np.ndarray) -> np.ndarray:
    """The quanta of a pass's sums: one per column, then one for the weights.

    Parameters
    ----------
    n_rows : int
    max_weight : float
        Largest sample weight (1 without weights).
    max_abs : ndarray of shape (d,)
        Largest absolute value of each column.

    Returns
    -------
    ndarray of shape (d + 1,), float64 powers of two
    """
    bound = float(max(n_rows, 1)) * float(max_weight) * np.append(max_abs, 1.0)
    bound = np.maximum(bound.astype(np.float64), np.finfo(np.float64).tiny)
    exponent = np.ceil(np.log2(bound)).astype(np.int64) - GRID_BITS
    return np.ldexp(1.0, np.clip(exponent, -1000, 1000))


def to_grid(values: np.ndarray, quanta: np.ndarray) -> np.ndarray:
    """``values`` as int64 multiples of ``quanta`` (broadcast on the last axis)."""
    return np.rint(values / quanta).astype(np.int64)


def from_grid(ints: np.ndarray, quanta: np.ndarray) -> np.ndarray:
    """The float64 values of int64 multiples of ``quanta``."""
    return ints.astype(np.float64) * quanta


def exact_sum(values: Iterable[float]) -> tuple[float, ...]:
    """Non-overlapping partials whose exact sum is the exact sum of ``values``
    (Shewchuk 1997, as in :func:`math.fsum`): merge lists of them in any
    order, then round once with :func:`math.fsum`."""
    partials: list[float] = []
    for x in values:
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]
    return tuple(partials)


def exact_value(partials: Iterable[float]) -> float:
    """The correctly rounded sum of exact partials."""
    return math.fsum(partials)
