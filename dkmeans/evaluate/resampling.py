"""Would the clusters come back? k-means refitted on row subsamples and
other seeds, compared on the rows the fits share.

Each run fits k-means on a subsample: row i belongs to run r when a uniform
number drawn for (r, i) by the counter-based streams
(:func:`dkmeans.kernels.sampling.row_uniforms`) is below ``subsample``, so
the subsample is the same on any chunking and scheduler. The subsample is
given to the fit as zero weights; nothing is copied. Then one pass
(:data:`dkmeans.evaluate.scoring.AGREEMENT`) labels every row under every run and a
reference fit on all rows, and counts the contingency table of every pair of
runs on their shared rows, and of the reference against each run on its
rows: the adjusted Rand index of each pair, and for each reference cluster
the Jaccard similarity of its best match in each run (Hennig's
``clusterboot``), come from those tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import numpy as np

from dkmeans.algorithms.fit import fit_kmeans, should_persist
from dkmeans.algorithms.seeding import stream_key
from dkmeans.data import Dataset, as_dataset
from dkmeans.data.preprocessing import prepare
from dkmeans.errors import InvalidParameterError
from dkmeans.evaluate.metrics import ari_from_table
from dkmeans.evaluate.scoring import AGREEMENT
from dkmeans.kernels import sampling
from dkmeans.runner import run_pass

_SUBSAMPLE = 0x73756273  # "subs": the subsamples' random streams


@dataclass(frozen=True)
class StabilityResult:
    """How alike k-means' clusters are across subsamples and seeds.

    Attributes
    ----------
    k : int
    ari : ndarray of shape (n_runs * (n_runs - 1) / 2,)
        Adjusted Rand index of every pair of runs, on the rows both used.
    ari_mean, ari_std : float
    jaccard : ndarray of shape (k,)
        For each cluster of the reference fit (all rows), the mean over runs
        of the Jaccard similarity of its best-matching cluster in the run, on
        the run's rows (NaN for a cluster the reference left empty). Hennig's
        rule of thumb: below 0.6 a cluster dissolves, above 0.75 it is stable.
    sizes : ndarray of shape (k,)
        Total sample weight of each reference cluster (its number of rows
        when no ``sample_weight`` is given).
    reference : ndarray of shape (k, d)
        The reference fit's centers.
    centers : list of ndarray
        Each run's centers.
    keys : list of ndarray
        Each run's subsample stream (see :meth:`members`).
    subsample : float
    """

    k: int
    ari: np.ndarray
    ari_mean: float
    ari_std: float
    jaccard: np.ndarray
    sizes: np.ndarray
    reference: np.ndarray = field(repr=False)
    centers: list = field(repr=False)
    keys: list = field(repr=False)
    subsample: float = 0.8

    def members(self, n: int) -> np.ndarray:
        """Which of ``n`` rows (of positive weight) each run was fitted on,
        shape (n_runs, n), bool."""
        return np.array([sampling.row_uniforms(key, 0, n) < self.subsample
                         for key in self.keys])

    def records(self) -> list[dict[str, float]]:
        """One dict per reference cluster: its size and mean Jaccard."""
        return [{"cluster": j, "size": int(self.sizes[j]), "jaccard": float(self.jaccard[j])}
                for j in range(self.k)]

    def table(self) -> Any:
        """:meth:`records` as a pandas DataFrame (the records without pandas)."""
        return as_frame(self.records())

    def plot(self, ax: Any = None) -> Any:
        """The pairwise ARIs and each cluster's Jaccard, as a matplotlib Figure.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw there; by default on a new figure (the backend is yours).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from dkmeans.evaluate.plots import plot_stability

        return plot_stability(self, ax)


def as_frame(records: list[dict]) -> Any:
    """``records`` as a pandas DataFrame, or as they are without pandas."""
    try:
        import pandas as pd
    except ImportError:
        return records
    return pd.DataFrame.from_records(records)


def _subsample_block(w: np.ndarray, key: np.ndarray, fraction: float,
                     block_info=None) -> np.ndarray:
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return w * (sampling.row_uniforms(key, start, len(w)) < fraction)


def subsampled(data: Dataset, key: np.ndarray, fraction: float) -> Dataset:
    """The dataset with weight 0 on rows outside the subsample of ``key``:
    lazily, block by block, where the rows are."""
    if data.local is not None:
        base = np.ones(data.n_samples) if data.local_weights is None else data.local_weights
        w = _subsample_block(base, key, fraction)
        return replace(data, weights=da.from_array(w, chunks=(data.X.chunks[0],)),
                       local_weights=w)
    base = (data.weights if data.weights is not None
            else da.ones(data.n_samples, chunks=(data.X.chunks[0],)))
    return replace(data, weights=base.map_blocks(_subsample_block, key, fraction,
                                                 dtype=np.float64))


def stability_of(data: Dataset, k: int, *, n_runs: int = 10, subsample: float = 0.8,
                 resample_seeds: bool = True, random_state: int = 0,
                 **fit_options: Any) -> StabilityResult:
    """:func:`stability` on a :class:`~dkmeans.data.dataset.Dataset` already loaded."""
    if not (isinstance(n_runs, int) and n_runs >= 2):
        raise InvalidParameterError(f"n_runs must be an integer >= 2; got {n_runs!r}.")
    if not 0 < subsample <= 1:
        raise InvalidParameterError(f"subsample must be in (0, 1]; got {subsample!r}.")
    seed = int(random_state)
    options = {"init": "k-means||", "persist": False, **fit_options}
    reference = fit_kmeans(data, k, seed=seed, **options)
    keys = [stream_key(seed, _SUBSAMPLE, r) for r in range(n_runs)]
    centers = [fit_kmeans(subsampled(data, key, subsample), k,
                          seed=seed + 1 + r if resample_seeds else seed, **options).centers
               for r, key in enumerate(keys)]
    tables = run_pass(AGREEMENT, data.blocks(), reference.centers,
                      [c.astype(data.dtype) for c in centers], keys, subsample)
    ari = np.array([ari_from_table(t) for t in tables.runs])
    return StabilityResult(k, ari, float(ari.mean()), float(ari.std()),
                           _jaccard(tables.reference), np.asarray(reference.counts),
                           reference.centers, centers, keys, subsample)


def _jaccard(tables: np.ndarray) -> np.ndarray:
    """Mean over runs of each reference cluster's best Jaccard similarity."""
    sizes, matched = tables.sum(axis=2), tables.sum(axis=1)
    union = sizes[:, :, None] + matched[:, None, :] - tables
    with np.errstate(invalid="ignore", divide="ignore"):
        best = np.where(sizes > 0, (tables / np.where(union > 0, union, 1)).max(axis=2),
                        np.nan)
    with np.errstate(invalid="ignore"):
        return np.nanmean(best, axis=0) if np.isfinite(best).any() else best[0]


def stability(X: Any, k: int, *, n_runs: int = 10, subsample: float = 0.8,
              resample_seeds: bool = True, random_state: int = 0, sample_weight: Any = None,
              persist: bool | str = "auto", scale: bool = False, missing: str = "error",
              metric: str = "euclidean", **fit_options: Any) -> StabilityResult:
    """Stability of k-means with ``k`` clusters over row subsamples and seeds.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array, or a path or URL, of shape (n, d)
    k : int
    n_runs : int, default=10
        Fits on subsamples; every pair is compared.
    subsample : float, default=0.8
        Share of the rows in each run's subsample (1: every row, so only the
        seeds differ).
    resample_seeds : bool, default=True
        Give each run its own seed (False: the same seed for all).
    random_state : int, default=0
    sample_weight : array-like of shape (n,), optional
    persist : bool or "auto"
        As for :class:`~dkmeans.KMeans`; the data is loaded once for all runs.
    scale, missing : bool, {"error", "impute"}
        As for :class:`~dkmeans.KMeans`: every run clusters the rows
        standardized / imputed as such a fit would; the centers are
        reported in X's units.
    metric : {"euclidean", "cosine"}
        ``"cosine"``: spherical k-means on unit rows.
    **fit_options
        ``max_iter``, ``tol``, ``init``, ... as for :func:`dkmeans.fit_kmeans`.

    Returns
    -------
    StabilityResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.2, size=(200, 2)) for c in (0, 4)])
    >>> from dkmeans import stability
    >>> st = stability(X, 2, n_runs=4, random_state=0)
    >>> round(st.ari_mean, 3), st.jaccard.round(2).tolist()
    (1.0, [1.0, 1.0])
    """
    data, prep = prepare(as_dataset(X, sample_weight), scale=scale, missing=missing,
                         metric=metric, metrics=("euclidean", "cosine"))
    if should_persist(data, persist):
        data = data.persist()
    result = stability_of(data, k, n_runs=n_runs, subsample=subsample,
                          resample_seeds=resample_seeds, random_state=random_state,
                          unit_centers=metric == "cosine", **fit_options)
    return replace(result, reference=prep.to_original(result.reference),
                   centers=[prep.to_original(c) for c in result.centers])
