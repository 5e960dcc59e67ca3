"""The scikit-learn compatible estimator, :class:`KMeans`.

``__init__`` only stores its arguments; :meth:`KMeans.fit` validates them
against one table (:data:`_PARAMETERS`), turns the input into a chunked
:class:`~dkmeans.data.Dataset` and calls :func:`dkmeans.fit.fit_kmeans`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from dkmeans.data import Dataset, as_chunked, as_dataset, as_weights
from dkmeans.errors import InvalidInputError, InvalidParameterError
from dkmeans.fit import distances, fit_kmeans, nearest_sq_distances, predict_labels
from dkmeans.preprocessing import Preprocessing
from dkmeans.runner import compute
from dkmeans.seeding import INIT_METHODS, INIT_ROUNDS


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# name -> (test, what is expected), checked at fit time, in this order.
_PARAMETERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_clusters": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "init": (lambda v: (isinstance(v, str) and v in INIT_METHODS) or callable(v)
             or (not isinstance(v, str) and hasattr(v, "__len__")),
             f"one of {sorted(INIT_METHODS)}, an array of shape (n_clusters, "
             "n_features) or a callable"),
    "n_init": (lambda v: v == "auto" if isinstance(v, str) else _is_int(v) and v >= 1,
               "'auto' or an integer >= 1"),
    "max_iter": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "tol": (lambda v: _is_real(v) and 0 <= v < np.inf, "a finite number >= 0"),
    "oversampling_factor": (lambda v: _is_real(v) and 0 < v < np.inf,
                            "a finite number > 0"),
    "init_rounds": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "random_state": (lambda v: v is None or _is_int(v)
                     or isinstance(v, np.random.RandomState),
                     "None, an integer or a numpy RandomState"),
    "verbose": (lambda v: (_is_int(v) and v >= 0) or isinstance(v, bool),
                "an integer >= 0"),
    "persist": (lambda v: isinstance(v, bool) or v == "auto", "True, False or 'auto'"),
    "algorithm": (lambda v: v in ("lloyd", "hamerly"), "'lloyd' or 'hamerly'"),
    "scale": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "missing": (lambda v: v in ("error", "impute"), "'error' or 'impute'"),
    "metric": (lambda v: v in ("euclidean", "cosine"), "'euclidean' or 'cosine'"),
}


def check_centers(centers: Any, n_clusters: int, n_features: int,
                  dtype: np.dtype) -> np.ndarray:
    """Validate initial centers given as an array; return them in X's dtype."""
    centers = np.asarray(centers)
    if centers.dtype.kind not in "biuf":
        raise InvalidInputError(f"init has dtype {centers.dtype}; expected real numbers.")
    expected = (n_clusters, n_features)
    if centers.shape != expected:
        raise InvalidInputError(
            f"The shape of the initial centers {centers.shape} does not match the "
            f"expected shape {expected} (n_clusters, n_features).")
    if not np.isfinite(centers).all():
        raise InvalidInputError("init contains NaN or infinity; initial centers must be "
                                "finite.")
    return centers.astype(dtype)


def _wrap_callable(user_init: Callable, X_user: Any, data: Dataset, seed: int):
    """Adapt a scikit-learn style ``init(X, n_clusters, random_state)``.

    In-memory input is handed over as the validated numpy array; chunked
    input as it was given, so the callable decides what to read.
    """

    def init(blocks, k, run):
        X = compute(data.X)[0] if X_user is None else X_user
        centers = user_init(X, k, np.random.RandomState(seed + run))
        return check_centers(centers, k, data.n_features, data.dtype)

    return init


@dataclass(frozen=True)
class FarthestRows:
    """Rows farthest from their nearest center, farthest first.

    Attributes
    ----------
    index : ndarray of shape (n,), int64
        Global row indices.
    rows : ndarray of shape (n, d)
    distance : ndarray of shape (n,), float64
    labels : ndarray of shape (n,), int32
    """

    index: np.ndarray
    rows: np.ndarray
    distance: np.ndarray
    labels: np.ndarray


class _BaseKMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin,
                  BaseEstimator):
    """What every dkmeans estimator does once fitted: predict, transform,
    score, write labels to Zarr, save; and parameter checks from a table."""

    #: name -> (test, what is expected), checked at fit time, in this order
    _parameters: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {}

    def _check_params(self) -> None:
        for name, (test, expected) in self._parameters.items():
            value = getattr(self, name)
            if not test(value):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be {expected}; "
                    f"got {value!r}.")

    def _seed(self) -> int:
        rs = check_random_state(self.random_state)
        return int(rs.randint(np.iinfo(np.int32).max))

    def _chunked(self, X: Any) -> tuple[da.Array, bool]:
        """X checked against the fit and preprocessed as the fit's data was."""
        check_is_fitted(self)
        arr, source = as_chunked(X)
        if arr.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {arr.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input.")
        return self._prep().apply(arr), source == "numpy"

    def _prep(self) -> Preprocessing:
        return getattr(self, "_preprocessing", None) or Preprocessing()

    def _model_centers(self) -> np.ndarray:
        """The centers in the space the rows are compared in (scaled features)."""
        return self._prep().to_model(self.cluster_centers_)

    def predict(self, X: Any) -> np.ndarray | da.Array:
        """Index of the nearest center of each row.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array or Zarr path, of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray (for in-memory X) or lazy dask array, shape (n_samples,), int32
        """
        arr, in_memory = self._chunked(X)
        labels = predict_labels(arr, self._model_centers())
        return compute(labels)[0] if in_memory else labels

    def predict_to_zarr(self, X: Any, path: Any) -> Any:
        """Write the index of each row's nearest center to a Zarr array.

        For data larger than memory: the labels are computed and written
        chunk by chunk on the workers (one Zarr chunk per block of X), never
        gathered. They are written beside ``path`` and renamed into place
        only once complete, so an existing array at ``path`` is replaced
        whole or not at all.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array or Zarr path, of shape (n_samples, n_features)
        path : str or path-like
            A directory for the Zarr array.

        Returns
        -------
        pathlib.Path
        """
        from dkmeans.io import write_labels

        arr, _ = self._chunked(X)
        return write_labels(predict_labels(arr, self._model_centers()), path)

    def anomaly_score(self, X: Any) -> np.ndarray | da.Array:
        """Distance from each row to its nearest center: large means unusual.

        Returns
        -------
        ndarray (for in-memory X) or lazy dask array of shape (n_samples,), float64
        """
        arr, in_memory = self._chunked(X)
        out = da.sqrt(nearest_sq_distances(arr, self._model_centers()))
        return compute(out)[0] if in_memory else out

    def farthest(self, X: Any, n: int = 10) -> FarthestRows:
        """The ``n`` rows farthest from their nearest center, in one pass.

        Each block keeps only its own ``n`` farthest rows (a partial
        selection), merged across blocks: the data is never sorted, and only
        ``n`` rows per block reach the client.

        Returns
        -------
        FarthestRows
            Global row indices, the rows (as given, in original units),
            their distances and labels, farthest first.
        """
        from dkmeans.data import Dataset
        from dkmeans.runner import run_pass
        from dkmeans.scoring import FARTHEST

        if not (isinstance(n, numbers.Integral) and n >= 1):
            raise InvalidParameterError(f"n must be an integer >= 1; got {n!r}.")
        arr, _ = self._chunked(X)
        top = run_pass(FARTHEST, Dataset(arr, None, "dask").blocks(), self._model_centers(),
                       int(n))
        rows = top.rows
        if not self._prep().is_identity:  # the rows as given, not as preprocessed
            raw, _ = as_chunked(X)
            rows = compute(raw[np.sort(top.index)])[0][np.argsort(np.argsort(top.index))]
        return FarthestRows(top.index, rows, np.sqrt(top.keys), top.labels)

    def transform(self, X: Any) -> np.ndarray | da.Array:
        """Euclidean distance from each row to each center.

        Returns
        -------
        ndarray or lazy dask array of shape (n_samples, n_clusters), X's dtype
        """
        arr, in_memory = self._chunked(X)
        out = distances(arr, self._model_centers())
        return compute(out)[0] if in_memory else out

    def score(self, X: Any, y: None = None, sample_weight: Any = None) -> float:
        """Opposite of the (weighted) inertia of X under the fitted centers.

        Returns
        -------
        float
        """
        arr, _ = self._chunked(X)
        d2 = nearest_sq_distances(arr, self._model_centers())
        if sample_weight is not None:
            d2 = d2 * as_weights(sample_weight, arr)
        return -float(compute(d2.sum())[0])

    def save(self, path: Any) -> Any:
        """Write the fitted model to the directory ``path`` (JSON and .npy, no
        pickle); :func:`dkmeans.load` reads it back. See :mod:`dkmeans.io`.

        Returns
        -------
        pathlib.Path
        """
        from dkmeans.io import save_model

        return save_model(self, path)

    # -------------------------------------------------- sklearn plumbing

    @property
    def _n_features_out(self) -> int:
        return self.cluster_centers_.shape[0]

    def __getstate__(self) -> dict:
        # labels_ has one entry per training row (and may hold futures): a
        # pickled model carries only what predicts, a few KB for k x d centers.
        state = super().__getstate__()
        state.pop("labels_", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class KMeans(_BaseKMeans):
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
    init_rounds : int, default=5
        Number of k-means|| rounds after the first center.
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
        all centers. It pays in long runs: measured once bounds held, an
        iteration took 30 ms instead of 42 on 2,000,000 x 32 (k=16) and 63 ms
        instead of 107 on 500,000 x 256 (k=64), but early iterations, while
        most rows still move, cost up to 50% more. From k-means|| seeding
        those fits converged in 2 or 3 iterations, hence "lloyd" by default.
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
    inertia_history_ : ndarray of shape (n_iter_,)
        Inertia of the centers after each Lloyd iteration; ends with
        ``inertia_``.
    n_features_in_ : int
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
                 oversampling_factor: float = 2.0, init_rounds: int = INIT_ROUNDS,
                 random_state: Any = None, verbose: int = 0,
                 persist: bool | str = "auto", algorithm: str = "lloyd",
                 scale: bool = False, missing: str = "error",
                 metric: str = "euclidean") -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.oversampling_factor = oversampling_factor
        self.init_rounds = init_rounds
        self.random_state = random_state
        self.verbose = verbose
        self.persist = persist
        self.algorithm = algorithm
        self.scale = scale
        self.missing = missing
        self.metric = metric

    _parameters = _PARAMETERS

    def _n_init(self) -> int:
        if self.n_init != "auto":
            return int(self.n_init)
        return 10 if (callable(self.init) or (isinstance(self.init, str)
                                                 and self.init == "random")) else 1

    def fit(self, X: Any, y: None = None, sample_weight: Any = None) -> KMeans:
        """Compute k-means clustering.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array or path of a Zarr array, \
of shape (n_samples, n_features)
            Training data. Integers and booleans become float64; float32
            stays float32.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Non-negative weight of each row; None means unit weights.

        Returns
        -------
        self : KMeans
        """
        return self._fit(X, sample_weight)

    def _fit(self, X: Any, sample_weight: Any = None, start: Any = None,
             on_iteration: Any = None) -> KMeans:
        """:meth:`fit`, optionally resuming from a checkpoint and reporting
        every iteration (the command line's scheduled jobs use these)."""
        self._check_params()
        if self.scale and self.metric == "cosine":
            raise InvalidParameterError("scale=True with metric='cosine': rows are scaled "
                                        "to unit length already; choose one.")
        data = as_dataset(X, sample_weight)
        prep = Preprocessing.learn(data.X, scale=self.scale, impute=self.missing == "impute",
                                   unit=self.metric == "cosine")
        data = replace(data, X=prep.apply(data.X))
        if data.n_samples < self.n_clusters:
            raise InvalidInputError(
                f"n_samples={data.n_samples} should be >= n_clusters={self.n_clusters}.")
        seed = self._seed()
        n_init = self._n_init()
        init = self.init
        if callable(init):
            init = _wrap_callable(init, X if data.source != "numpy" else None, data, seed)
        elif not isinstance(init, str):
            init = prep.to_model(check_centers(init, self.n_clusters, data.n_features,
                                               data.dtype))
            if n_init != 1:
                warnings.warn(
                    "Explicit initial center position passed: performing only one init "
                    f"in {type(self).__name__} instead of n_init={n_init}.",
                    RuntimeWarning, stacklevel=2)
                n_init = 1
        result = fit_kmeans(
            data, self.n_clusters, init=init, n_init=n_init, max_iter=self.max_iter,
            tol=self.tol, seed=seed, oversampling_factor=self.oversampling_factor,
            init_rounds=self.init_rounds, persist=self.persist, verbose=self.verbose,
            bounds=self.algorithm == "hamerly", start=start, on_iteration=on_iteration,
            unit_centers=self.metric == "cosine")
        self._preprocessing = prep
        self.cluster_centers_ = prep.to_original(result.centers)
        self.labels_ = (compute(result.labels)[0] if data.source == "numpy"
                        else result.labels)
        self.inertia_ = float(result.inertia)
        self.n_iter_ = int(result.n_iter)
        self.inertia_history_ = result.inertia_history
        self.n_features_in_ = data.n_features
        self.timings_ = result.timings
        return self
