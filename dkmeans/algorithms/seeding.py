"""Seeding: choosing the initial centers with as few passes as possible.

Strategies live in :data:`INIT_METHODS` under their string names, so the
estimator and the tests treat them alike (the tests run every registered
strategy). Each takes the data's blocks and returns a :class:`Seeding`.

All randomness comes from counter-based streams keyed by the seed, the run,
the purpose and the *global row index* (:func:`dkmeans.sampling.row_uniforms`),
so a seed gives the same centers on any scheduler, any number of workers and
any chunking.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from dkmeans import kernels
from dkmeans.passes import (
    CANDIDATE_MASS,
    CANDIDATE_MASS_STREAM,
    DRAW,
    POTENTIAL,
    POTENTIAL_STREAM,
    SEED_ROUND,
    SEED_ROUND_STREAM,
    TopRows,
)
from dkmeans.runner import Block, run_pass

#: Default number of k-means|| sampling rounds after the first center. Bahmani
#: et al. find 5 rounds with 2k candidates each enough; measured here, on
#: blobs and on load_digits, more rounds did not lower the final inertia
#: (see benchmarks/README.md).
INIT_ROUNDS = 5
#: k-means|| rounds from this many centers up (``init_rounds="auto"``): each
#: round's pass meets 2k new candidates, about two Lloyd iterations' work.
#: At k = 1,024 on 100,000 x 128 embeddings (2 seeds, bench_large_k.py's
#: data) 3 rounds took seeding from 14-18% of the fit to 8-9%, at a final
#: inertia 0.04% and 0.15% lower than 5 rounds' (2 rounds: 7%, 0.08-0.15%
#: higher).
LARGE_K, LARGE_K_ROUNDS = 1024, 3


def init_rounds_for(k: int) -> int:
    """The k-means|| rounds ``init_rounds="auto"`` means for ``k`` centers."""
    return LARGE_K_ROUNDS if k >= LARGE_K else INIT_ROUNDS

#: k-means++ starts tried when reclustering the k-means|| candidates. Measured
#: on load_digits (k=10) over 15 seeds: with 1 start the worst seed ended 7.9%
#: above scikit-learn's k-means++ median, with 10 starts 0.7%; on 20 blobs one
#: start ended 12% above the median over 7 seeds, 3 starts none.
RECLUSTER_TRIES = 10
#: Above this many candidate x feature x center products per start, fewer
#: starts (:func:`recluster_tries`), one above it; above ``PARALLEL_WORK``
#: they run on threads.
RECLUSTER_WORK = 1_250_000_000
PARALLEL_WORK = 10_000_000
#: Candidates with fewer non-zeros than this share of their values (after
#: dropping the columns none of them uses) are reclustered as CSR: sparse
#: text's k-means|| candidates at k = 50 (50,000 x 20,000 TF-IDF) took 0.94 s
#: dense (its 5,000-odd used columns), 0.21 s as CSR.
SPARSE_CANDIDATES = 0.1

# Purposes of the random streams, so two uses of one seed never share numbers.
_DRAW, _ROUND, _LOCAL, _PLUSPLUS = range(4)


def stream_key(seed: int, *purpose: int) -> np.ndarray:
    """The key of the random stream for ``seed`` and a purpose path (two
    words, see :func:`dkmeans.kernels.sampling.stream_seed`): SplitMix64's
    mixer chained over the seed and each purpose. (numpy's SeedSequence did
    the same job in 40 microseconds a key, a tenth of a small fit.)"""
    h = _splitmix(int(seed) & _MASK)
    for p in purpose:
        h = _splitmix(h ^ (int(p) & _MASK))
    return np.array([h, _splitmix(h)], dtype=np.uint64)


_MASK = (1 << 64) - 1


def _splitmix(z: int) -> int:
    """SplitMix64's output function of the state ``z`` (Steele et al. 2014)."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


@dataclass(frozen=True)
class Seeding:
    """Initial centers and what it took to find them.

    Attributes
    ----------
    centers : ndarray of shape (k, d)
    n_passes : int
        Passes over the data the strategy made (the shared first draw aside).
    n_candidates : int
        Points considered before the final choice (k-means||: the weighted
        candidates reclustered locally).
    """

    centers: np.ndarray
    n_passes: int
    n_candidates: int


def draw_key(seed: int, run: int) -> np.ndarray:
    """The stream of a run's first draw ~ weight (the scan makes run 0's)."""
    return stream_key(seed, run, _DRAW)


def draw_rows(blocks: Sequence[Block], seed: int, run: int, m: int) -> TopRows:
    """Draw ``m`` rows without replacement with probability ~ weight (one pass)."""
    return run_pass(DRAW, blocks, draw_key(seed, run), m)


def init_random(blocks: Sequence[Block], k: int, seed: int, run: int,
                first: TopRows | None = None, **_: object) -> Seeding:
    """``k`` distinct rows drawn with probability ~ weight."""
    draw = first if first is not None and first.m >= k else draw_rows(blocks, seed, run, k)
    return Seeding(_fill(kernels.dense(draw.rows[:k]), k), int(first is None), k)


def _dense_stack(parts: list) -> np.ndarray:
    return kernels.dense(kernels.stack(parts))


def init_kmeans_parallel(blocks: Sequence[Block], k: int, seed: int, run: int,
                         first: TopRows | None = None, oversampling_factor: float = 2.0,
                         init_rounds: int = INIT_ROUNDS, stream: bool = False,
                         **_: object) -> Seeding:
    """k-means|| (Bahmani et al. 2012), one pass per round.

    Draws weighted candidates (:func:`kmeans_parallel_candidates`), then
    reduces them to ``k`` centers on the client by weighted k-means++ and
    weighted Lloyd (:func:`recluster`).
    """
    C, mass, n_passes = kmeans_parallel_candidates(blocks, k, seed, run, first,
                                                   oversampling_factor, init_rounds, stream)
    return Seeding(recluster(C, mass, k, seed, run), n_passes, C.shape[0])


def kmeans_parallel_candidates(blocks: Sequence[Block], k: int, seed: int, run: int,
                               first: TopRows | None = None,
                               oversampling_factor: float = 2.0,
                               init_rounds: int = INIT_ROUNDS, stream: bool = False,
                               ) -> tuple[np.ndarray, np.ndarray, int]:
    """The weighted candidates of k-means||, one pass per round and one to weigh.

    After a first center drawn ~ weight, each round draws ``oversampling_factor
    x k`` new candidates ~ weight x D^2. On persisted data each round compares
    every row only with the previous round's candidates (the running minimum
    distance and nearest candidate stay on the workers); with ``stream`` no
    per-row state is kept and rows are compared with every candidate so far.
    A last pass weighs each candidate by the mass of the rows nearest to it.
    Candidates drawn for some ``k`` serve any smaller number of centers too
    (:func:`dkmeans.evaluate.choosing.sweep` reclusters one set for every k).

    Returns
    -------
    candidates : ndarray of shape (c, d)
    mass : ndarray of shape (c,), float64
    n_passes : int
    """
    first = first if first is not None else draw_rows(blocks, seed, run, 1)
    ell = max(1, math.ceil(oversampling_factor * k))
    # each round's candidates as drawn (CSR from sparse data: 10,001 of
    # 20,000 terms at k = 1,000 are 1.6 GB dense), made dense for the pass
    # that compares rows with them
    candidates = [first.rows[:1]]
    n_seen, states, n_passes = 0, None, 0
    for r in range(init_rounds):
        key = stream_key(seed, run, _ROUND, r)
        if stream:
            step = run_pass(SEED_ROUND_STREAM, blocks, _dense_stack(candidates), 0, key, ell)
        else:
            states, step = run_pass(SEED_ROUND, blocks, kernels.dense(candidates[-1]), n_seen,
                                    key, ell, states=states)
        n_seen += candidates[-1].shape[0]
        n_passes += 1
        if step.cost <= 0 or not len(step.draw.keys):
            candidates.append(step.draw.rows[:0])
            break  # every row already coincides with a candidate
        candidates.append(step.draw.rows)
    n_cand = n_seen + candidates[-1].shape[0]
    if stream:
        mass = run_pass(CANDIDATE_MASS_STREAM, blocks, _dense_stack(candidates), 0, n_cand)
    else:
        _, mass = run_pass(CANDIDATE_MASS, blocks, kernels.dense(candidates[-1]), n_seen,
                           n_cand, states=states)
    return kernels.stack([kernels.compact(c) for c in candidates]), mass.values, n_passes + 1


def recluster(C: Any, mass: np.ndarray, k: int, seed: int, run: int,
              tries: int | None = None, max_iter: int = 300) -> np.ndarray:
    """Reduce weighted candidates to ``k`` centers: weighted k-means++, then
    Lloyd (to its fixed point, or ``max_iter`` iterations).

    The candidates are few (about ``1 + init_rounds x 2k``) and in memory, so
    this tries several k-means++ starts (:func:`recluster_tries`), on
    several threads when they are long, and keeps the lowest weighted
    inertia (ties to the earlier start, so the result does not depend on
    the threads).
    """
    keep = mass > 0
    C, mass, dtype = C[keep], mass[keep], C.dtype
    if C.shape[0] <= k:
        return _fill(C.toarray() if kernels.is_sparse(C) else C, k)
    used = (np.unique(C.indices) if kernels.is_sparse(C)
            else np.flatnonzero((C != 0).any(axis=0)))
    if len(used) < C.shape[1]:
        # columns where every candidate is 0 add nothing to a distance, and
        # the centers (means of candidates) are 0 there: sparse text's
        # candidates use a few thousand of 20,000 terms
        full = np.zeros((k, C.shape[1]), dtype=C.dtype)
        full[:, used] = recluster(C[:, used], mass, k, seed, run, tries, max_iter)
        return full
    tries = tries or recluster_tries(*C.shape, k)
    rng = np.random.default_rng(stream_key(seed, run, _LOCAL))
    u = rng.random((tries, 1 + (k - 1) * kernels.plusplus_trials(k)))  # a row per start
    starts = kernels.recluster_starts
    nonzero = C.nnz if kernels.is_sparse(C) else np.count_nonzero(C)
    if nonzero < SPARSE_CANDIDATES * C.shape[0] * C.shape[1]:  # text's: reclustered as CSR
        C, starts = kernels.as_csr(sp.csr_matrix(C)), kernels.csr_recluster_starts
    elif kernels.is_sparse(C):
        C = C.toarray()
    if nonzero * k < PARALLEL_WORK:
        best, _ = starts(C, mass, k, u, max_iter)
    elif len(u) == 1 and starts is kernels.recluster_starts:  # its steps on every core
        best, _ = starts(C, mass, k, u, max_iter, threads=os.cpu_count() or 1)
    else:  # a group of starts per thread; the best of each group, then of the groups
        groups = np.array_split(u, min(tries, os.cpu_count() or 1))
        with ThreadPoolExecutor(len(groups)) as pool:
            results = list(pool.map(lambda g: starts(C, mass, k, g, max_iter), groups))
        best = min(results, key=lambda r: r[1])[0]  # ties: the first group
    return _fill(best.astype(dtype), k)


def plusplus_starts(C: Any, k: int, seed: int, run: int, tries: int) -> np.ndarray:
    """The best of ``tries`` greedy k-means++ starts on in-memory sparse rows,
    by their potential, without refining them by Lloyd as
    :func:`recluster` does: mini-batch k-means' init on sparse data. On TF-IDF
    rows (200,000 x 20,000, k = 50, 3 seeds) mini-batch fits from the
    refined starts of a 3,072-row sample ended 1.051 x full k-means'
    inertia (1.024 from 10,000 rows), from plain k-means++ 1.003: Lloyd on a
    few dozen sparse rows per cluster fits the sample, not the corpus."""
    rng = np.random.default_rng(stream_key(seed, run, _LOCAL))
    u = rng.random((tries, 1 + (k - 1) * kernels.plusplus_trials(k)))
    centers, _ = kernels.csr_plusplus_starts(sp.csr_matrix(C), np.ones(C.shape[0]), k, u)
    return centers.astype(C.dtype)


def recluster_tries(n_candidates: int, d: int, k: int) -> int:
    """k-means++ starts for reclustering: :data:`RECLUSTER_TRIES` while a
    start is cheap, down to 1 when ``n x d x k`` is large, where the starts
    differ little (at 10,001 x 128 candidates and k = 1,000, four starts'
    inertias were within 0.2% of each other; on load_digits, 8%). At k =
    1,024 on 100,000 x 128 embeddings (benchmarks/bench_large_k.py) a second
    start cost 1.5 s of a 4.4 s seeding under load and left the final
    inertia unchanged."""
    work = n_candidates * d * k
    return int(min(RECLUSTER_TRIES, max(1, RECLUSTER_WORK // max(work, 1))))


def init_kmeans_plusplus(blocks: Sequence[Block], k: int, seed: int, run: int,
                         first: TopRows | None = None, n_trials: int | None = None,
                         stream: bool = False, **_: object) -> Seeding:
    """Greedy k-means++ over the chunks: two passes per center.

    The first pass folds the last chosen center into each block's running
    minimum distance (with ``stream``, recomputes it from every center so
    far, keeping no per-row state) and draws ``n_trials`` trial rows ~ weight
    x D^2; the second computes the potential each trial would leave, and the
    best trial becomes the next center.
    """
    first = first if first is not None else draw_rows(blocks, seed, run, 1)
    n_trials = n_trials or 2 + int(np.log(k))
    centers = [kernels.dense(first.rows[:1])]
    states, n_passes = None, 0
    for i in range(1, k):
        key = stream_key(seed, run, _PLUSPLUS, i)
        if stream:
            chosen = np.concatenate(centers)
            step = run_pass(SEED_ROUND_STREAM, blocks, chosen, 0, key, n_trials)
        else:
            states, step = run_pass(SEED_ROUND, blocks, centers[-1], i - 1, key, n_trials,
                                    states=states)
        n_passes += 1
        if step.cost <= 0 or not len(step.draw.keys):
            break  # fewer distinct points than k
        trials = kernels.dense(step.draw.rows)
        if stream:
            potential = run_pass(POTENTIAL_STREAM, blocks, chosen, trials)
        else:
            states, potential = run_pass(POTENTIAL, blocks, trials, states=states)
        n_passes += 1
        best = int(np.argmin(potential.values))
        centers.append(trials[best : best + 1])
    return Seeding(_fill(np.concatenate(centers), k), n_passes, k)


def _fill(centers: np.ndarray, k: int) -> np.ndarray:
    """Repeat centers cyclically up to ``k`` when the data has fewer distinct rows."""
    if len(centers) >= k:
        return centers[:k]
    return centers[np.arange(k) % len(centers)]


SeedFn = Callable[..., Seeding]

#: Seeding strategies by name.
INIT_METHODS: dict[str, SeedFn] = {
    "k-means||": init_kmeans_parallel,
    "k-means++": init_kmeans_plusplus,
    "random": init_random,
}
