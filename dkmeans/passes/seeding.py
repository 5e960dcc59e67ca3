"""Seeding passes: k-means|| rounds and k-means++ steps, with per-row
state kept on the workers, and their streaming versions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dkmeans import kernels
from dkmeans.passes.common import (
    SeedRound,
    TopRows,
    Totals,
    no_weights,
    streaming,
    weights_or_ones,
)
from dkmeans.runner import Pass

_NO_KEY = np.zeros(2, dtype=np.uint64)  # for a round that draws nothing


def _update_nearest(x, w, state, new_centers: np.ndarray, center_offset: int):
    """Fold new centers into a block's running (min distance, nearest index)."""
    return kernels.seed_round_partials(x, no_weights(w), state, new_centers, center_offset,
                                        _NO_KEY, 0, 0)[0]


def seed_round_chunk(x, w, offset: int, state, new_centers: np.ndarray, center_offset: int,
                     key: np.ndarray, m: int):
    """Compare rows only to the newest centers, then draw m rows ~ w x D^2."""
    state, cost, pos, keys = kernels.seed_round_partials(
        x, no_weights(w), state, new_centers, center_offset, key, offset, m)
    return state, SeedRound(cost, TopRows.at(m, pos, keys, x, w, offset))


def seed_round_combine(parts: Sequence[SeedRound]) -> SeedRound:
    return SeedRound(sum(p.cost for p in parts), TopRows.merge([p.draw for p in parts]))


SEED_ROUND = Pass("dkmeans-seed-round", seed_round_chunk, seed_round_combine, stateful=True,
                  exact=True)
"""Exact as :attr:`~dkmeans.runner.Pass.exact` means: the draw is a ranked
merge, and the cost is only compared with 0 (a sum of non-negative terms is
0 in any order exactly when each is), so each worker may merge its chunks'
draws first: one draw of ``m`` rows per worker crosses the network, not one
per chunk."""


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
    return state, Totals(weights_or_ones(w, x.shape[0]) @ d2)


POTENTIAL = Pass("dkmeans-potential", potential_chunk, totals_combine, stateful=True)


def potential_stream_chunk(x, w, offset: int, centers: np.ndarray,
                           trials: np.ndarray) -> Totals:
    """:func:`potential_chunk` with the minimum distance recomputed from ``centers``."""
    return potential_chunk(x, w, offset, _update_nearest(x, w, None, centers, 0), trials)[1]


SEED_ROUND_STREAM = streaming(SEED_ROUND)
CANDIDATE_MASS_STREAM = streaming(CANDIDATE_MASS)
POTENTIAL_STREAM = Pass("dkmeans-potential-stream", potential_stream_chunk, totals_combine)
