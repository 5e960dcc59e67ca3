"""The scikit-learn compatible estimator, :class:`KMeans`.

``__init__`` only stores its arguments; :meth:`KMeans.fit` validates them
against :data:`~dkmeans.estimators.params.KMEANS_PARAMETERS` and calls
:func:`~dkmeans.algorithms.fit.fit_kmeans` on a Dataset.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
from sklearn.utils.validation import check_is_fitted

from dkmeans.algorithms.apply import ambiguity, checked_temperature, soft_assignments
from dkmeans.algorithms.fit import fit_kmeans
from dkmeans.data import as_dataset
from dkmeans.data.preprocessing import prepare
from dkmeans.errors import InvalidInputError, InvalidParameterError
from dkmeans.estimators.base import BaseKMeans, table_reading
from dkmeans.estimators.params import (
    KMEANS_PARAMETERS,
    check_centers,
    is_int,
    wrap_init_callable,
)
from dkmeans.progress import chain, show_progress
from dkmeans.runner import compute


class KMeans(BaseKMeans):
    """K-means clustering of chunked data, distributed with Dask.

    Each Lloyd iteration is one pass over the data: every chunk is assigned
    to its nearest centers where it lives and returns only partial sums,
    weights and inertia, which are tree-reduced into the new centers. The
    data never travels to the client.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means||", "k-means++", "random"}, array of shape (n_clusters, n_features) \
or callable, default="k-means||"
        How to choose the initial centers. ``"k-means||"`` (Bahmani et al.
        2012) takes ``init_rounds + 2`` passes over the data whatever
        ``n_clusters``; ``"k-means++"`` takes two passes per center;
        ``"random"`` draws ``n_clusters`` rows with probability proportional
        to their weight. A callable is called as ``init(X, n_clusters,
        random_state)`` and returns the centers.
    n_init : "auto" or int, default="auto"
        Number of runs with different seeds; the best inertia wins. "auto"
        is 1 for "k-means||", "k-means++" and an array, 10 otherwise.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run.
    tol : float, default=1e-4
        Convergence when the sum of squared center shifts is at most ``tol``
        times the mean feature variance of X, so the scale of the data does
        not change the number of iterations. Labels that no longer change
        always stop the run.
    oversampling_factor : float, default=2.0
        k-means|| draws ``ceil(oversampling_factor * n_clusters)`` candidates
        per round.
    init_rounds : "auto" or int, default="auto"
        Number of k-means|| rounds after the first center. "auto": 5, and 3
        from 1,024 clusters up (each round's pass costs two Lloyd iterations).
    init_max_iter : int, optional
        dask-ml's name for ``init_rounds``: accepted, with a ``FutureWarning``.
    init_size : "auto", int or None, default="auto"
        ``"k-means||"`` and ``"k-means++"`` run in memory on about this many
        rows, drawn ~ weight in the first pass, not over all rows (more passes
        over the data, each a read of it when streamed). "auto": a sample of
        max(131,072, 128 x n_clusters) rows (at most 256 MB) from data of 8
        times as many rows or more; None: all rows.
    random_state : int, RandomState instance or None, default=None
        Seeds every random choice; the same value gives the same centers on
        any scheduler, any number of workers and any chunking.
    verbose : int, default=0
        Print the inertia and center shift of every iteration.
    persist : bool or "auto", default="auto"
        Whether to load chunked data into the workers' memory once for all
        passes. "auto" persists when the data takes at most half the memory
        of the workers (of this machine, on the local scheduler); otherwise
        every pass streams the chunks from their source.
    algorithm : {"lloyd", "hamerly"}, default="lloyd"
        "hamerly" gives the same iterations but keeps per-row distance
        bounds on the workers (12 bytes per row, persisted data only), so
        rows whose nearest center cannot have changed skip the distances to
        all centers: it pays in long runs, not in the few iterations that
        follow k-means|| seeding (benchmarks/README.md), hence "lloyd" by
        default. "full" (dask-ml's name) is "lloyd" with a ``FutureWarning``.
        Sparse X runs "lloyd" whatever is asked (the same iterations).
    scale : bool, default=False
        Standardize every feature (mean 0, standard deviation 1, learned in
        one extra streaming pass; a constant feature is only centred) before
        clustering. ``cluster_centers_`` stay in X's units; distances,
        ``transform``, ``score`` and ``inertia_`` are in the scaled space.
    missing : {"error", "impute"}, default="error"
        NaN in X is an error naming its row; "impute" replaces it by the
        feature's mean (learned in the same extra pass), in fit and after.
    metric : {"euclidean", "cosine"}, default="euclidean"
        "cosine" is spherical k-means (text, embeddings): rows are scaled to
        unit length (zero rows stay zero) and every center is the unit-length
        direction of its cluster's mean. Not combined with ``scale``.
        "manhattan" is k-medians (:mod:`dkmeans.algorithms.kmedians`): L1 distances,
        centers at coordinate-wise weighted medians, ``inertia_``, ``score``
        and ``transform`` in L1; seeded by k-means|| as the others.
    copy_x : bool, default=True
        Accepted for scikit-learn compatibility; dkmeans never modifies X
        (preprocessing and the numerical shift are applied chunk by chunk to
        copies), so it has no effect.
    progress : bool, default=False
        Show a bar per pass and one for the Lloyd iterations, with the time
        left (``tqdm.auto``: a widget in Jupyter, text on a terminal).
    min_cluster_size : float, optional
        Smallest cluster weight wanted (below 1: a fraction of the total
        weight). A cluster left lighter after an iteration is moved onto a
        random row of the heaviest cluster, splitting it as bisecting k-means
        does (one small extra pass; see :func:`dkmeans.algorithms.lloyd.lloyd`). Clusters
        still lighter at the end (the data cannot allow it) are warned about.
        Off by default: plain k-means.
    train_size : int, float or None, default=None
        Approximate: seed and iterate on a sample of about this many rows (a
        float: that fraction of them), drawn ~ weight in the first pass and
        held in memory, then assign every row to the centers found in one
        more pass. Two passes over the data in all; the centers see only
        the sample, so the inertia is higher (measured in
        ``benchmarks/bench_large_k.py``). For many clusters on many rows,
        as training a vector index's coarse quantizer: faiss's
        ``max_points_per_centroid=256`` is ``train_size=256 * n_clusters``.
        ``labels_`` and ``inertia_`` are over all rows;
        ``inertia_history_`` is the sample's. None: every row, every
        iteration.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        In X's dtype (float32 stays float32; other types become float64).
    labels_ : ndarray or dask array of shape (n_samples,), int32
        Index of each row's nearest center, always equal to ``predict(X)``
        on the training data. A dask array when X was chunked. Not pickled.
    inertia_ : float
        Weighted sum of squared distances of the rows to their center.
    n_iter_ : int
        Lloyd iterations run.
    inertia_history_ : ndarray of shape (n_iter,)
        The inertia of each Lloyd iteration: that of the centers it assigned
        the rows to, before its update. The first is the seeding's inertia;
        ``inertia_`` (after the last update) is at most the last. ``verbose``
        and the command line print these same numbers.
    n_features_in_ : int
    within_variance_ : float
        Pooled within-cluster variance per feature, ``inertia_ / (total
        weight x n_features)``: the default temperature of
        :meth:`predict_proba`.
    timings_ : dict
        Seconds spent scanning the data, seeding and in Lloyd iterations.

    See Also
    --------
    sklearn.cluster.KMeans : the in-memory estimator this one mirrors.

    Notes
    -----
    Partial sums are accumulated in float64 whatever the data's dtype, so
    the result does not depend on the chunking beyond rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from dkmeans import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> km.cluster_centers_[np.argsort(km.cluster_centers_[:, 0])]
    array([[ 1.,  2.],
           [10.,  2.]])
    """

    def __init__(self, n_clusters: int = 8, *, init: Any = "k-means||",
                 n_init: int | str = "auto", max_iter: int = 300, tol: float = 1e-4,
                 oversampling_factor: float = 2.0, init_rounds: int | str = "auto",
                 init_size: int | str | None = "auto", random_state: Any = None, verbose: int = 0,
                 persist: bool | str = "auto", algorithm: str = "lloyd",
                 scale: bool = False, missing: str = "error",
                 metric: str = "euclidean", copy_x: bool = True,
                 progress: bool = False, min_cluster_size: float | None = None,
                 init_max_iter: int | None = None, train_size: int | float | None = None,
                 ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.oversampling_factor = oversampling_factor
        self.init_rounds = init_rounds
        self.init_size = init_size
        self.random_state = random_state
        self.verbose = verbose
        self.persist = persist
        self.algorithm = algorithm
        self.scale = scale
        self.missing = missing
        self.metric = metric
        self.copy_x = copy_x
        self.progress = progress
        self.min_cluster_size = min_cluster_size
        self.init_max_iter = init_max_iter
        self.train_size = train_size

    _parameters = KMEANS_PARAMETERS

    def _dask_ml_names(self) -> int | None:
        """The k-means|| rounds (None: by k); warnings for dask-ml's names."""
        for old, new, used in (("algorithm='full'", "algorithm='lloyd'", self.algorithm == "full"),
                               ("init_max_iter", "init_rounds", self.init_max_iter is not None)):
            if used:
                warnings.warn(f"{old} is dask-ml's name: use {new}.", FutureWarning, stacklevel=4)
        if self.init_max_iter is not None:
            return self.init_max_iter
        return None if self.init_rounds == "auto" else self.init_rounds

    def _train_rows(self, n_samples: int) -> int | None:
        """``train_size`` as a number of rows (at least ``n_clusters``)."""
        v = self.train_size
        if v is None:
            return None
        rows = int(v) if is_int(v) else math.ceil(v * n_samples)
        return max(rows, self.n_clusters)

    def _resolve_n_init(self) -> int:
        if self.n_init != "auto":
            return int(self.n_init)
        return 10 if (callable(self.init) or (isinstance(self.init, str)
                                                 and self.init == "random")) else 1

    def fit(self, X: Any, y: None = None, sample_weight: Any = None, *,
            storage_options: dict | None = None, columns: list | None = None,
            sep: str | None = None, header: bool = True) -> KMeans:
        """Compute k-means clustering.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL (Zarr, .npy, \
Parquet / CSV), of shape (n_samples, n_features)
            Training data. Integers and booleans become float64; float32
            stays float32.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Non-negative weight of each row; None means unit weights.
        storage_options : dict, optional
            When X is a URL: passed to fsspec (endpoint, credentials); they
            travel to the workers with the tasks.
        columns, sep, header
            When X is a table (Parquet, CSV, TSV): its feature columns
            (names, or positions from 0), as :func:`dkmeans.open_array`; the
            columns' names become ``feature_names_in_``.

        Returns
        -------
        KMeans
            The fitted estimator.
        """
        return self._fit(X, sample_weight, storage_options=storage_options,
                         table={"columns": columns, "sep": sep, "header": header})

    def _fit(self, X: Any, sample_weight: Any = None, start: Any = None,
             on_iteration: Any = None, storage_options: dict | None = None,
             table: dict | None = None) -> KMeans:
        """:meth:`fit`, optionally resuming from a checkpoint and reporting
        every iteration (the command line's scheduled jobs use these)."""
        self._check_params()
        if self.min_cluster_size is not None and self.metric == "manhattan":
            raise InvalidParameterError("min_cluster_size applies to metric='euclidean' or "
                                        "'cosine': k-medians does not split clusters.")
        self._check_feature_names(X, reset=True)
        data = as_dataset(X, sample_weight, storage_options, table_reading(
            self, X, storage_options, **(table or {}), fitting=True))
        if self.metric == "manhattan":
            data.require_dense("metric='manhattan' (k-medians)")
        raw = data.X
        data, prep = prepare(data, scale=self.scale, missing=self.missing, metric=self.metric)
        if data.n_samples < self.n_clusters:
            raise InvalidInputError(
                f"n_samples={data.n_samples} should be >= n_clusters={self.n_clusters}.")
        seed = self._seed()
        n_init = self._n_init = self._resolve_n_init()
        rounds = self._dask_ml_names()
        if self.algorithm == "elkan" and self.n_clusters == 1:
            warnings.warn("algorithm='elkan' doesn't make sense for a single cluster. Using "
                          "'lloyd' instead.", RuntimeWarning, stacklevel=3)
        init = self.init
        if callable(init):
            init = wrap_init_callable(init, prep.impute(raw), data.source == "numpy", prep,
                                  data.n_features, data.dtype, seed)
        elif not isinstance(init, str):
            init = prep.to_model(check_centers(init, self.n_clusters, data.n_features,
                                               data.dtype))
            if n_init != 1:
                warnings.warn(
                    "Explicit initial center position passed: performing only one init "
                    f"in {type(self).__name__} instead of n_init={n_init}.",
                    RuntimeWarning, stacklevel=2)
                n_init = 1
        with show_progress(self.progress, self.max_iter) as shown:
            result = fit_kmeans(
                data, self.n_clusters, init=init, n_init=n_init, max_iter=self.max_iter,
                tol=self.tol, seed=seed, oversampling_factor=self.oversampling_factor,
                init_rounds=rounds, persist=self.persist, verbose=self.verbose,
                bounds=self.algorithm in ("hamerly", "elkan") and not data.sparse, start=start,
                on_iteration=chain(on_iteration, shown), unit_centers=self.metric == "cosine",
                min_cluster_size=self.min_cluster_size, manhattan=self.metric == "manhattan",
                init_size=self.init_size, train_size=self._train_rows(data.n_samples))
        self._preprocessing = prep
        self.cluster_centers_ = prep.to_original(result.centers)
        self.labels_ = (result.labels if isinstance(result.labels, np.ndarray)
                        else compute(result.labels)[0] if data.source == "numpy"
                        else result.labels)
        self.inertia_ = float(result.inertia)
        self.n_iter_ = int(result.n_iter)
        self.inertia_history_ = result.inertia_history
        self.n_features_in_ = data.n_features
        weight = float(np.sum(result.counts)) if result.counts is not None else 0.0
        self.within_variance_ = self.inertia_ / (weight * data.n_features) if weight else 0.0
        self.timings_ = result.timings
        return self

    def ambiguity(self, X: Any, storage_options: dict | None = None,
                  ) -> np.ndarray | da.Array:
        """How unsure each row's assignment is: ``d1 / d2``.

        ``d1`` and ``d2`` are the distances to the nearest and the second
        nearest center: 0 on a center (certain), 1 on the boundary between
        two clusters, 0 for every row when there is a single center. (Its
        complement ``1 - d1 / d2`` is the assignment's margin.)

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, \
of shape (n_samples, n_features)
        storage_options : dict, optional

        Returns
        -------
        ndarray (for in-memory X) or lazy dask array of shape (n_samples,), float64
        """
        arr, in_memory = self._chunked(X, storage_options)
        self._euclidean_only("ambiguity")
        out = ambiguity(arr, self._model_centers())
        return compute(out)[0] if in_memory else out

    def predict_proba(self, X: Any, temperature: float | None = None,
                      storage_options: dict | None = None) -> np.ndarray | da.Array:
        """Soft assignments: responsibilities ``exp(-d^2 / (2 temperature))``,
        normalised over the centers.

        They are the posterior of an equal-weight mixture of isotropic
        Gaussians at the centers with variance ``temperature`` per feature,
        whose maximum is ``predict``'s label. Distances are in the space the
        model compares rows in (scaled features with ``scale=True``).

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, \
of shape (n_samples, n_features)
        temperature : float > 0, optional
            Default :attr:`within_variance_`, the pooled within-cluster
            variance per feature: smaller is harder, larger is softer.
        storage_options : dict, optional

        Returns
        -------
        ndarray (for in-memory X) or lazy dask array of shape (n_samples, n_clusters),
        float64, rows summing to 1
        """
        check_is_fitted(self)
        temperature = checked_temperature(temperature, getattr(self, "within_variance_", 0.0))
        arr, in_memory = self._chunked(X, storage_options)
        self._euclidean_only("predict_proba")
        out = soft_assignments(arr, self._model_centers(), temperature)
        return compute(out)[0] if in_memory else out

    def _fitted_for_file(self) -> tuple[dict, dict[str, np.ndarray]]:
        fitted, arrays = super()._fitted_for_file()
        fitted["inertia_history"] = [float(v) for v in self.inertia_history_]
        fitted["within_variance"] = float(getattr(self, "within_variance_", 0.0))
        return fitted, arrays

    def _restore_fitted(self, fitted: dict, read: Callable[[str], np.ndarray]) -> None:
        history = np.asarray(fitted["inertia_history"], dtype=np.float64)
        if history.shape != (fitted["n_iter"],):
            raise InvalidInputError(f"inertia_history has {history.size} values in the "
                                    f"metadata, for {fitted['n_iter']} iterations.")
        self.inertia_history_ = history
        self.within_variance_ = float(fitted.get("within_variance", 0.0))
