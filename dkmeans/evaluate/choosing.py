"""Choosing k: fit every k of a range on one dataset and score each fit.

:func:`sweep` loads the data once (persisted when it fits, else streamed),
draws one set of k-means|| candidates for the largest k and reclusters that
same set for every k (the seeding passes are shared), runs Lloyd for each k,
and scores each model with :mod:`dkmeans.evaluate.metrics` passes: inertia,
Calinski-Harabasz, Davies-Bouldin, and the silhouette of one sample of rows
drawn in the first pass for every k.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dkmeans import kernels
from dkmeans.algorithms.apply import predict_labels
from dkmeans.algorithms.fit import sample_scan, scan, should_persist
from dkmeans.algorithms.lloyd import lloyd
from dkmeans.algorithms.seeding import draw_key, kmeans_parallel_candidates, recluster
from dkmeans.data import as_dataset
from dkmeans.data.preprocessing import prepare
from dkmeans.errors import InvalidParameterError
from dkmeans.evaluate import gap as gap_statistic
from dkmeans.evaluate.metrics import (
    SilhouetteEstimate,
    calinski_harabasz_from,
    davies_bouldin_from,
    paired_blocks,
    silhouette_of,
)
from dkmeans.evaluate.resampling import as_frame, stability_of
from dkmeans.evaluate.scoring import CLUSTER_MOMENTS
from dkmeans.runner import run_pass


@dataclass(frozen=True)
class SweepResult:
    """Scores of one fit per k.

    Attributes
    ----------
    ks : ndarray of shape (m,)
    inertia, calinski_harabasz, davies_bouldin, silhouette, silhouette_stderr, seconds :
        ndarray of shape (m,), one value per k (``seconds``: Lloyd and scoring
        time of that k; the shared seeding is in ``seeding_seconds``).
    centers : list of ndarray, one (k, d) array per k
    knee : int
        The suggested k: the elbow of the log-inertia curve (the point
        farthest below the chord from the first to the last k, both axes
        scaled to [0, 1], as in the "kneedle" method of Satopää et al. 2011,
        on the logarithm of the inertia: on the raw inertia, whose first
        drops dwarf the rest, it picked k too small on 148 of 279 datasets of
        well-separated blobs, on the log none; see :func:`knee`).
    seeding_seconds : float
    gap, gap_stderr : ndarray of shape (m,) or None
        With ``gap=True``: the gap statistic and its s_k
        (:mod:`dkmeans.evaluate.gap`); ``ref_log_w`` (m, B) holds the references'
        log W.
    gap_k : int or None
        The paper's choice: the smallest k with gap(k) >= gap(k+1) - s_{k+1}.
    stability : ndarray of shape (m,) or None
        With ``stability=True``: the mean pairwise adjusted Rand index of
        each k over subsamples (:func:`dkmeans.stability`).
    """

    ks: np.ndarray
    inertia: np.ndarray
    calinski_harabasz: np.ndarray
    davies_bouldin: np.ndarray
    silhouette: np.ndarray
    silhouette_stderr: np.ndarray
    seconds: np.ndarray
    centers: list = field(repr=False)
    knee: int = 0
    seeding_seconds: float = 0.0
    gap: np.ndarray | None = None
    gap_stderr: np.ndarray | None = None
    gap_k: int | None = None
    ref_log_w: np.ndarray | None = field(default=None, repr=False)
    stability: np.ndarray | None = None

    @property
    def suggestions(self) -> dict[str, int]:
        """The k each score suggests: the inertia's knee, the highest
        Calinski-Harabasz, the lowest Davies-Bouldin, the highest silhouette
        (NaN scores ignored)."""
        def pick(values: np.ndarray, best: Any) -> int:
            values = np.asarray(values, dtype=np.float64)
            if np.isnan(values).all():
                return int(self.ks[0])
            return int(self.ks[best(np.where(np.isnan(values), np.nan, values))])

        out = {"inertia": int(self.knee),
               "calinski_harabasz": pick(self.calinski_harabasz, np.nanargmax),
               "davies_bouldin": pick(self.davies_bouldin, np.nanargmin),
               "silhouette": pick(self.silhouette, np.nanargmax)}
        if self.gap_k is not None:
            out["gap"] = int(self.gap_k)
        return out

    def records(self) -> list[dict[str, float]]:
        """One dict per k: ``k`` and every score computed."""
        names = [n for n in ("inertia", "calinski_harabasz", "davies_bouldin", "silhouette",
                             "silhouette_stderr", "gap", "gap_stderr", "stability", "seconds")
                 if getattr(self, n) is not None]
        return [{"k": int(k), **{n: float(getattr(self, n)[i]) for n in names}}
                for i, k in enumerate(self.ks)]

    def table(self) -> Any:
        """A pandas DataFrame, one row per k (as scikit-learn's ``cv_results_``
        reads with pandas); :meth:`records` without pandas."""
        return as_frame(self.records())


def knee(ks: Sequence[int], inertia: Sequence[float]) -> int:
    """The k at the elbow of a decreasing inertia curve: kneedle on the
    logarithm of the inertia.

    Measured on 279 datasets of 2 to 12 well-separated Gaussian blobs (2, 5
    and 16 features; k ranges 2-15, 1-20 and 2 to 3 past the truth): kneedle
    on the inertia itself found the true k in 131, on its logarithm in all
    279. Returns the first k when there are fewer than three.
    """
    ks = np.asarray(ks, dtype=np.float64)
    y = np.log(np.maximum(np.asarray(inertia, dtype=np.float64), np.finfo(np.float64).tiny))
    if len(ks) < 3 or y[0] == y[-1]:
        return int(ks[0])
    xs = (ks - ks[0]) / (ks[-1] - ks[0])
    ys = (y - y[-1]) / (y[0] - y[-1])
    # below the chord from (0, 1) to (1, 0): the elbow is farthest from it
    return int(ks[np.argmax(1 - xs - ys)])


def _scores(X, centers, sample: np.ndarray) -> tuple[float, float, Any]:
    """Calinski-Harabasz and Davies-Bouldin (2 passes) of the assignment to
    ``centers``, and the silhouette of the sample (drawn once for every k)."""
    pairs = paired_blocks(X, predict_labels(X, centers))
    m = run_pass(CLUSTER_MOMENTS, pairs)
    if m.labels.size < 2:
        return float("nan"), float("nan"), SilhouetteEstimate(float("nan"), float("nan"), 0)
    return (calinski_harabasz_from(m), davies_bouldin_from(pairs, m),
            silhouette_of(sample, kernels.nearest(sample, centers)[0]))


def sweep(X: Any, ks: Sequence[int], *, sample_weight: Any = None, random_state: int = 0,
          max_iter: int = 300, tol: float = 1e-4, oversampling_factor: float = 2.0,
          persist: bool | str = "auto", silhouette_sample: int = 10_000,
          gap: bool = False, n_refs: int = 10, gap_reference: str = "pca",
          stability: bool = False, stability_runs: int = 5, subsample: float = 0.8,
          plot: bool = False, verbose: int = 0, scale: bool = False, missing: str = "error",
          metric: str = "euclidean") -> SweepResult:
    """Fit k-means for every k in ``ks`` and score each fit.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array or Zarr path, of shape (n, d)
    ks : sequence of int
        Numbers of clusters, each >= 1 and <= n.
    sample_weight : array-like of shape (n,), optional
    random_state : int
    max_iter, tol, oversampling_factor
        As for :class:`~dkmeans.KMeans`.
    persist : bool or "auto"
        As for :class:`~dkmeans.KMeans`; the data is loaded once for all k.
    silhouette_sample : int
        About this many rows (a Poisson sample ~ weight, drawn in the first
        pass and shared by every k) for the silhouette.
    gap, n_refs, gap_reference : bool, int, {"pca", "box"}
        Also compute the gap statistic against ``n_refs`` uniform reference
        data sets (over the principal axes' box, ``gap_reference="pca"``, or
        the bounding box, ``"box"``), made block by block on the workers and
        clustered with the same settings (:mod:`dkmeans.evaluate.gap`).
    stability, stability_runs, subsample : bool, int, float
        Also the mean pairwise adjusted Rand index of ``stability_runs`` fits
        on ``subsample`` row subsamples, per k (:func:`dkmeans.stability`).
    plot : bool
        Draw the curves (:func:`dkmeans.evaluate.plots.plot_sweep`, needs matplotlib).
    verbose : int
    scale, missing : bool, {"error", "impute"}
        As for :class:`~dkmeans.KMeans`: every k (and the gap statistic's
        references, and the scores) sees the rows standardized / imputed
        as a fit with these options would; ``centers`` are in X's units.
    metric : {"euclidean", "cosine"}
        ``"cosine"``: spherical k-means on unit rows, as :class:`~dkmeans.KMeans`.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import numpy as np
    >>> from dkmeans import sweep
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.1, size=(100, 2)) for c in (0, 5, 10)])
    >>> result = sweep(X, range(1, 7))
    >>> result.knee
    3
    """
    ks = sorted({int(k) for k in ks})
    data = as_dataset(X, sample_weight)
    data, prep = prepare(data, scale=scale, missing=missing, metric=metric,
                         metrics=("euclidean", "cosine"))
    unit = metric == "cosine"
    if not ks or ks[0] < 1 or ks[-1] > data.n_samples:
        raise InvalidParameterError(f"ks must hold integers from 1 to n_samples="
                                    f"{data.n_samples}; got {ks}.")
    if gap and data.sparse:
        raise InvalidParameterError(
            "gap=True draws dense uniform reference data over the data's box, which has "
            "no meaning for sparse X (and would not fit in memory); use the other scores "
            "or stability=True.")
    if should_persist(data, persist):
        data = data.persist()
    blocks = data.blocks()
    seed = int(random_state)
    t0 = time.perf_counter()
    # one scan: validation, tol, the first center and the silhouette's sample
    stats = sample_scan(data, blocks, draw_key(seed, 0), silhouette_sample)
    fits = _fits(data, blocks, stats, ks, seed, max_iter, tol, oversampling_factor, unit)
    seeding_seconds = time.perf_counter() - t0 - sum(s for _, s in fits)
    sample = kernels.compact(stats.draw.rows)  # sparse data's sample as CSR
    rows: dict[str, list] = {n: [] for n in ("inertia", "ch", "db", "sil", "err", "s")}
    for k, (result, seconds) in zip(ks, fits, strict=True):
        t1 = time.perf_counter()
        ch, db, sil = _scores(data.X, result.centers, sample)
        for name, value in zip(rows, (result.inertia, ch, db, sil.score, sil.stderr,
                                      seconds + time.perf_counter() - t1), strict=True):
            rows[name].append(value)
        if verbose:
            print(f"k={k}: inertia {result.inertia:.6g}, CH {ch:.4g}, DB {db:.4g}, "
                  f"silhouette {sil.score:.3f} +- {sil.stderr:.3f}")
    extra: dict[str, Any] = {}
    if gap:
        extra.update(_gap(data, ks, rows["inertia"], seed, n_refs, gap_reference, max_iter,
                          tol, oversampling_factor, unit))
    if stability:
        extra["stability"] = np.array([
            stability_of(data, k, n_runs=stability_runs, subsample=subsample,
                         random_state=seed, max_iter=max_iter, tol=tol,
                         unit_centers=unit).ari_mean
            for k in ks])
    out = SweepResult(np.array(ks), *(np.array(rows[n]) for n in rows),
                      centers=[prep.to_original(r.centers) for r, _ in fits],
                      knee=knee(ks, rows["inertia"]),
                      seeding_seconds=seeding_seconds, **extra)
    if plot:
        from dkmeans.evaluate.plots import plot_sweep

        plot_sweep(out)
    return out


def _fits(data, blocks, stats, ks: list[int], seed: int, max_iter: int, tol: float,
          oversampling_factor: float, unit: bool = False) -> list[tuple[Any, float]]:
    """Lloyd for every k from one set of k-means|| candidates (drawn for the
    largest k, reclustered for each), with each k's seconds."""
    C, mass, _ = kmeans_parallel_candidates(blocks, ks[-1], seed, 0, first=stats.draw,
                                            oversampling_factor=oversampling_factor,
                                            stream=not data.persisted)
    out = []
    for k in ks:
        t = time.perf_counter()
        result = lloyd(blocks, recluster(C, mass, k, seed, 0).astype(data.dtype),
                       max_iter=max_iter, tol=tol * stats.mean_variance,
                       keep_labels=False, quanta=stats.quanta, unit_centers=unit)
        out.append((result, time.perf_counter() - t))
    return out


def _gap(data, ks: list[int], inertia: list[float], seed: int, n_refs: int,
         reference: str, max_iter: int, tol: float, oversampling_factor: float,
         unit: bool) -> dict:
    """The gap statistic's fields of :class:`SweepResult`: each reference
    clustered for every k exactly as the data was."""
    if not (isinstance(n_refs, int) and n_refs >= 1):
        raise InvalidParameterError(f"n_refs must be an integer >= 1; got {n_refs!r}.")
    box = gap_statistic.bounding_box(data, reference)
    ref_log_w = np.empty((len(ks), n_refs))
    for b in range(n_refs):
        ref = gap_statistic.reference_data(data, box, seed, b)
        blocks = ref.blocks()
        stats = scan(blocks, draw_key(seed, 0), 1)
        for i, (result, _) in enumerate(_fits(ref, blocks, stats, ks, seed, max_iter, tol,
                                              oversampling_factor, unit)):
            ref_log_w[i, b] = np.log(result.inertia)
    values, s = gap_statistic.gap_from(np.log(np.asarray(inertia)), ref_log_w)
    return {"gap": values, "gap_stderr": s, "ref_log_w": ref_log_w,
            "gap_k": gap_statistic.choose_k(np.asarray(ks), values, s)}
