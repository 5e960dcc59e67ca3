"""The scikit-learn compatible :class:`MiniBatchKMeans`.

Like :class:`~dkmeans.KMeans`, ``__init__`` only stores its arguments and
``fit`` validates them against a table; the algorithm is
:func:`dkmeans.algorithms.fit_minibatch.fit_minibatch_kmeans` (epochs of batches streamed from
the source) and, for :meth:`MiniBatchKMeans.partial_fit`, the single step
:func:`dkmeans.algorithms.minibatch.update_centers` on the block given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from dkmeans import kernels
from dkmeans.algorithms.fit_minibatch import fit_minibatch_kmeans, init_from_sample
from dkmeans.algorithms.minibatch import MiniBatchState, StepRules, update_centers
from dkmeans.data import as_dataset
from dkmeans.data.preprocessing import SHIFT_PROBE_ROWS, Preprocessing, needs_shift, prepare
from dkmeans.data.validation import as_block, as_block_weights, as_sparse_block
from dkmeans.errors import InvalidInputError, InvalidParameterError, not_finite
from dkmeans.estimators.base import BaseKMeans, table_reading
from dkmeans.estimators.params import (
    KMEANS_PARAMETERS,
    PREPROCESSING,
    check_centers,
    is_int,
    is_real,
)
from dkmeans.progress import show_progress
from dkmeans.runner import compute

_MB_PARAMETERS = {
    **{name: KMEANS_PARAMETERS[name] for name in ("n_clusters", "init", "n_init", "max_iter",
                                            "random_state", "verbose")},
    "batch_size": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "compute_labels": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "tol": (lambda v: is_real(v) and 0 <= v < np.inf, "a finite number >= 0"),
    "max_no_improvement": (lambda v: v is None or (is_int(v) and v >= 0),
                           "None or an integer >= 0"),
    "init_size": (lambda v: v is None or (is_int(v) and v >= 1), "None or an integer >= 1"),
    "reassignment_ratio": (lambda v: is_real(v) and 0 <= v < np.inf,
                           "a finite number >= 0"),
    "progress": KMEANS_PARAMETERS["progress"],
    **PREPROCESSING,
}


class MiniBatchKMeans(BaseKMeans):
    """Mini-batch k-means over chunked data, streamed in bounded memory.

    Each epoch reads every block once, in a random order and in groups of a
    few blocks whose rows are shuffled together into batches; each batch
    moves the centers it touches with a per-center learning rate that falls
    as the center's seen weight grows (Sculley 2010, as
    :class:`sklearn.cluster.MiniBatchKMeans`). Starved centers are moved to
    random rows, and the run stops early once a smoothed batch inertia
    stops improving. Blocks are read and decompressed in parallel on the
    workers while the batch steps run; only the centers move between tasks.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"k-means++", "random", "k-means||"}, array of shape (n_clusters, n_features) \
or callable, default="k-means++"
        ``"k-means++"``: weighted k-means++ refined by Lloyd on a sample of
        ``init_size`` rows (drawn in the first pass, so seeding needs no more
        memory than the sample); ``"random"``: ``n_clusters`` rows of that
        sample; ``"k-means||"``: k-means|| over the whole data (about 7 more
        passes, keeping no per-row state). A callable is called as
        ``init(sample, n_clusters, random_state)``.
    max_iter : int, default=100
        Maximum number of epochs (passes over the data).
    batch_size : int, default=1024
        Rows per batch. On chunked data the cost per batch is small, but
        larger batches (10^4-10^5) give steadier steps on large data.
    verbose : int, default=0
    compute_labels : bool, default=True
        After fitting, compute the inertia over all rows (one more pass) and
        ``labels_`` (lazy for chunked input). Without, ``inertia_`` is the
        smoothed batch inertia scaled to the data's total weight.
    random_state : int, RandomState instance or None, default=None
    tol : float, default=0.0
        Stop when the squared center shift of one batch is at most ``tol``
        times the mean feature variance (0 disables it).
    max_no_improvement : int or None, default=10
        Stop after this many batches without a lower smoothed inertia.
    init_size : int or None, default=None
        Rows sampled for seeding; None is ``3 * batch_size`` (at least
        ``3 * n_clusters``), at most the number of rows.
    n_init : "auto" or int, default="auto"
        Seedings tried on the sample, best inertia on it kept; "auto" is 1
        for "k-means++" and "k-means||", 3 otherwise.
    reassignment_ratio : float, default=0.01
        Centers whose seen weight is below this share of the largest are
        moved onto random rows of a batch (every ``10 * n_clusters`` rows).
    progress : bool, default=False
        Show a bar per pass over the data (``tqdm.auto``).
    scale : bool, default=False
        Standardize every feature first, as :class:`KMeans` does (one more
        pass; centers in X's units). ``fit`` only: ``partial_fit`` sees each
        batch once and cannot learn the scales.
    missing : {"error", "impute"}, default="error"
        NaN is an error naming its row, or the feature's mean (as
        :class:`KMeans`; ``fit`` only, as ``scale``).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray or dask array of shape (n_samples,), int32
        Only with ``compute_labels``; a lazy dask array for chunked input.
    inertia_ : float
    n_iter_ : int
        Epochs begun. A batch never spans two groups of blocks, so an epoch
        has a few more, smaller batches than scikit-learn's ``ceil(n_samples
        / batch_size)``.
    n_steps_ : int
        Batches processed.
    n_passes_read_ : float
        Passes' worth of rows read from the source by ``fit``: the first
        pass, the epochs (whole groups of blocks) and, with
        ``compute_labels``, the final pass.
    n_features_in_ : int
    timings_ : dict

    See Also
    --------
    sklearn.cluster.MiniBatchKMeans : the in-memory estimator this one mirrors.
    KMeans : full-batch Lloyd; more passes, exact centers.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.2, size=(200, 2)) for c in (0, 4)])
    >>> from dkmeans import MiniBatchKMeans
    >>> mb = MiniBatchKMeans(2, batch_size=100, random_state=0).fit(X)
    >>> sorted(np.round(mb.cluster_centers_[:, 0]).astype(int).tolist())
    [0, 4]
    >>> mb = mb.partial_fit(X[:100])  # one more step, on new rows
    """

    _parameters = _MB_PARAMETERS

    def __init__(self, n_clusters: int = 8, *, init: Any = "k-means++", max_iter: int = 100,
                 batch_size: int = 1024, verbose: int = 0, compute_labels: bool = True,
                 random_state: Any = None, tol: float = 0.0,
                 max_no_improvement: int | None = 10, init_size: int | None = None,
                 n_init: int | str = "auto", reassignment_ratio: float = 0.01,
                 progress: bool = False, scale: bool = False,
                 missing: str = "error") -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.progress = progress
        self.scale = scale
        self.missing = missing

    def _resolve_n_init(self) -> int:
        if self.n_init != "auto":
            return int(self.n_init)
        if isinstance(self.init, str):
            return 3 if self.init == "random" else 1
        return 3 if callable(self.init) else 1

    def _resolve_init_size(self, n_samples: int) -> int:
        """scikit-learn's rule: 3 x batch_size, at least 3 x n_clusters, at
        most the number of rows."""
        size = self.init_size
        if size is None:
            size = 3 * self.batch_size
            if size < self.n_clusters:
                size = 3 * self.n_clusters
        elif size < self.n_clusters:
            warnings.warn(f"init_size={size} should be larger than n_clusters="
                          f"{self.n_clusters}. Setting it to min(3*n_clusters, n_samples)",
                          RuntimeWarning, stacklevel=3)
            size = 3 * self.n_clusters
        return min(size, n_samples)

    def _init(self, n_features: int, dtype: np.dtype, prep: Preprocessing) -> Any:
        """The init argument checked: a name, centers, or a wrapped callable,
        centers mapped into the space the clustering runs in (``prep``)."""
        init = self.init
        if callable(init):
            user = init

            def init(sample, k, run):  # the user's callable sees rows in X's units
                centers = user(prep.to_original(sample), k,
                               np.random.RandomState(self._seed_ + run))
                return prep.to_model(check_centers(centers, k, n_features, dtype))
        elif not isinstance(init, str):
            init = prep.to_model(check_centers(init, self.n_clusters, n_features, dtype))
            if self.n_init not in ("auto", 1):
                warnings.warn(
                    "Explicit initial center position passed: performing only one init "
                    f"in {type(self).__name__} instead of n_init={self.n_init}.",
                    RuntimeWarning, stacklevel=3)
        return init

    def _rules(self, n_samples: int, mean_variance: float = 0.0) -> StepRules:
        return StepRules(self.reassignment_ratio, self.tol * mean_variance,
                         self.max_no_improvement, min(self.batch_size, n_samples),
                         n_samples, self._seed_)

    def fit(self, X: Any, y: None = None, sample_weight: Any = None, *,
            storage_options: dict | None = None, columns: list | None = None,
            sep: str | None = None, header: bool = True) -> MiniBatchKMeans:
        """Compute the centers by streaming X in mini-batches.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL (Zarr, .npy, \
Parquet / CSV), of shape (n_samples, n_features)
        y : None
            Ignored.
        sample_weight : array-like or dask array of shape (n_samples,), default=None
        storage_options : dict, optional
            When X is a URL: passed to fsspec.
        columns, sep, header
            When X is a table (Parquet, CSV, TSV): as :meth:`KMeans.fit`.

        Returns
        -------
        MiniBatchKMeans
            The fitted estimator.
        """
        return self._fit(X, sample_weight, storage_options=storage_options,
                         table={"columns": columns, "sep": sep, "header": header})

    def _fit(self, X: Any, sample_weight: Any = None, on_window: Any = None,
             storage_options: dict | None = None,
             table: dict | None = None) -> MiniBatchKMeans:
        """:meth:`fit`, calling ``on_window(state, epoch)`` after each window
        of groups (progress reports; the fault tests use it)."""
        self._check_params()
        self._check_feature_names(X, reset=True)
        data = as_dataset(X, sample_weight, storage_options, table_reading(
            self, X, storage_options, **(table or {}), fitting=True))
        n = data.n_samples
        if n < self.n_clusters:
            raise InvalidInputError(f"n_samples={n} should be >= n_clusters={self.n_clusters}.")
        data, prep = prepare(data, scale=self.scale, missing=self.missing)
        self._seed_ = self._seed()
        self._n_init = self._resolve_n_init()
        self._init_size = self._resolve_init_size(n)
        init = self._init(data.n_features, data.dtype, prep)
        with show_progress(self.progress):
            result = self._fit_result(data, init, n, on_window)
        return self._set_fitted(result, data, prep)

    def _fit_result(self, data: Any, init: Any, n: int, on_window: Any) -> Any:
        return fit_minibatch_kmeans(
            data, self.n_clusters, init=init, n_init=self._n_init, max_iter=self.max_iter,
            batch_size=min(self.batch_size, n), tol=self.tol,
            max_no_improvement=self.max_no_improvement,
            reassignment_ratio=self.reassignment_ratio, init_size=self._init_size,
            seed=self._seed_, compute_labels=self.compute_labels, verbose=self.verbose,
            on_window=on_window)

    def _set_fitted(self, result: Any, data: Any, prep: Preprocessing) -> MiniBatchKMeans:
        state = result.run.state
        self._state = state
        self._preprocessing = prep
        self.cluster_centers_ = prep.to_original(state.centers)
        self.inertia_ = result.inertia
        if result.labels is not None:
            self.labels_ = (compute(result.labels)[0] if data.source == "numpy"
                            else result.labels)
        self.n_iter_ = result.run.n_epochs
        self.n_steps_ = state.n_steps
        self.n_passes_read_ = result.n_passes_read
        self.n_features_in_ = data.n_features
        self.timings_ = result.timings
        return self

    def partial_fit(self, X: Any, y: None = None, sample_weight: Any = None,
                    ) -> MiniBatchKMeans:
        """Update the centers with one mini-batch held in memory.

        The first call seeds the centers from this batch (``init_size`` rows
        of it); every call is one step of the same update ``fit`` uses, so
        feeding ``fit``'s batches here in order gives ``fit``'s centers.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            A block of rows, e.g. read from a file or a queue.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_rows,), default=None

        Returns
        -------
        MiniBatchKMeans
            The fitted estimator.
        """
        self._check_feature_names(X, reset=not hasattr(self, "_state"))
        x = as_sparse_block(X) if kernels.is_sparse(X) else as_block(X)
        w = as_block_weights(sample_weight, x.shape[0])
        # (sparse x is never filled: that would make it dense)
        imputed = (hasattr(self, "_state") and self._prep().fill is not None
                   and not kernels.is_sparse(x))
        bad = kernels.first_nonfinite_row(np.nan_to_num(x, nan=0.0, posinf=np.inf,
                                                        neginf=-np.inf) if imputed else x)
        if bad >= 0:
            raise not_finite(bad, where=" of this batch")
        if not hasattr(self, "_state"):
            self._start_partial(x, w)
        elif x.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input.")
        prep = self._prep()
        x = prep.apply_block(x.astype(self._state.centers.dtype, copy=False))
        self._state, _ = update_centers(self._state, x, w,
                                        self._rules(max(x.shape[0], self.n_clusters)))
        self.cluster_centers_ = prep.to_original(self._state.centers)
        self.n_steps_ = self._state.n_steps
        if self.compute_labels:
            labels, d2 = kernels.nearest(x, self._state.centers)
            self.labels_ = labels
            self.inertia_ = float(d2 @ (np.ones(x.shape[0]) if w is None else w))
        return self

    def _start_partial(self, x: np.ndarray, w: np.ndarray | None) -> None:
        self._check_params()
        if self.scale or self.missing != "error":
            raise InvalidParameterError(
                "partial_fit learns no scaling or imputation (it sees each batch once): "
                "fit() does (scale=True, missing='impute'), or pass batches scaled by a "
                "dkmeans.StandardScaler fitted on the whole data.")
        if x.shape[0] < self.n_clusters:
            raise InvalidInputError(f"The first batch has {x.shape[0]} rows; it should have "
                                    f"at least n_clusters={self.n_clusters}.")
        self._seed_ = self._seed()
        prep = Preprocessing(shift=None if kernels.is_sparse(x)  # a shift would densify
                             else needs_shift(x[:SHIFT_PROBE_ROWS]))
        init = self._init(x.shape[1], x.dtype, prep)
        x = prep.apply_block(x)
        if isinstance(init, str):
            rng = np.random.default_rng(self._seed_)
            size = self._init_size = self._resolve_init_size(x.shape[0])
            p = None if w is None else w / w.sum()
            sample = kernels.rows(x, np.sort(rng.choice(x.shape[0], size=size, replace=False,
                                                         p=p)))
            name = "k-means++" if init == "k-means||" else init
            self._n_init = self._resolve_n_init()
            centers = init_from_sample(sample, self.n_clusters, name, self._n_init,
                                       self._seed_)
        elif callable(init):
            centers = init(x, self.n_clusters, 0)
        else:
            centers = init
        self._preprocessing = prep
        self._state = MiniBatchState.start(np.asarray(centers, dtype=x.dtype))
        self.n_features_in_ = x.shape[1]
        self.n_iter_ = 0

    # ----------------------------------------------------------- model files

    def _fitted_for_file(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The mini-batch state too, so ``partial_fit`` continues a loaded model."""
        fitted, arrays = super()._fitted_for_file()
        state = {k: v for k, v in asdict(self._state).items()
                 if k not in ("centers", "counts")}
        fitted["n_steps"] = int(self._state.n_steps)
        fitted["state"] = {k: (None if isinstance(v, float) and math.isnan(v)
                               else v.item() if isinstance(v, np.generic) else v)
                           for k, v in state.items()}
        fitted["seed"] = int(self._seed_)
        arrays["state_centers"] = self._state.centers
        arrays["state_counts"] = self._state.counts
        return fitted, arrays

    def _restore_fitted(self, fitted: dict, read: Callable[[str], np.ndarray]) -> None:
        self.n_steps_ = int(fitted["n_steps"])
        if "state" not in fitted:  # format 1: centers only; partial_fit starts afresh
            return
        scalars = {k: (math.nan if v is None else v) for k, v in fitted["state"].items()}
        self._state = MiniBatchState(read("state_centers"), read("state_counts"), **scalars)
        self._seed_ = int(fitted["seed"])
