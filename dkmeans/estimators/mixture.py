"""``GaussianMixture``: scikit-learn's Gaussian mixture, fitted by EM over
chunked data (:mod:`dkmeans.algorithms.mixture`), one pass per iteration."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from dkmeans.algorithms.fit import fit_kmeans, should_persist
from dkmeans.algorithms.mixture import (
    MixtureParameters,
    MixtureResult,
    MixtureUnits,
    check_initial_parameters,
    em,
    fit_mixture,
    spherical_scaling_error,
)
from dkmeans.data import as_dataset
from dkmeans.data.preprocessing import Preprocessing, prepare
from dkmeans.data.storage import Location
from dkmeans.errors import InvalidInputError, InvalidParameterError
from dkmeans.estimators import mixture_file
from dkmeans.estimators.base import table_reading
from dkmeans.estimators.mixture_outputs import MixtureOutputs
from dkmeans.estimators.modelfile import write_model_dir
from dkmeans.estimators.outputs import LabelOutputs
from dkmeans.estimators.params import PREPROCESSING, check_parameters, fit_seed, is_int, is_real
from dkmeans.kernels import mixture as kernels
from dkmeans.progress import chain

#: Largest k x d x d a full-covariance fit accepts, in float64 values: every
#: block's partial result holds one d x d matrix per component.
FULL_MAX_VALUES = 2**25


def _positive_int(v: Any) -> bool:
    return is_int(v) and v >= 1


def _non_negative(v: Any) -> bool:
    return is_real(v) and v >= 0


_PARAMETERS = {
    "n_components": (_positive_int, "an int >= 1"),
    "covariance_type": (lambda v: v in kernels.COVARIANCE_TYPES,
                        f"one of {kernels.COVARIANCE_TYPES}"),
    "tol": (_non_negative, "a float >= 0"),
    "reg_covar": (_non_negative, "a float >= 0"),
    "max_iter": (lambda v: _positive_int(v) or v == 0, "an int >= 0"),
    "n_init": (_positive_int, "an int >= 1"),
    "init_params": (lambda v: v in ("kmeans", "k-means||"), "'kmeans' or 'k-means||'"),
    "persist": (lambda v: v in (True, False, "auto"), "True, False or 'auto'"),
    **PREPROCESSING,
}


#: Parameters saved as arrays beside the model's JSON
_ARRAY_PARAMETERS = ("weights_init", "means_init", "precisions_init")


class GaussianMixture(MixtureOutputs, LabelOutputs, DensityMixin, BaseEstimator):
    """A Gaussian mixture fitted by EM over chunked data.

    Each EM iteration is one pass over the data: every block computes its
    responsibilities and the weighted sums the M step needs (per component:
    weight, sums about the current mean, and squares or outer products),
    and only those are reduced. Larger-than-memory data is streamed
    (``persist="auto"``), on any Dask scheduler. Names, defaults and results
    follow :class:`sklearn.mixture.GaussianMixture` (same parameters from
    the same initial values, iteration by iteration).

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "diag", "spherical"}, default="full"
        ``"full"`` keeps a d x d matrix per component in every block's
        partial result: it accepts k x d x d up to :data:`FULL_MAX_VALUES`
        (d = 724 for k = 64, d = 2,896 for k = 4); use ``"diag"`` beyond.
    tol : float, default=1e-3
        Stop when the mean log-likelihood changes by less than this.
    reg_covar : float, default=1e-6
        Added to the covariances' diagonals.
    max_iter : int, default=100
    n_init : int, default=1
        Runs from different k-means seeds; the highest lower bound wins.
        With ``means_init`` every run would start alike, so one runs.
    init_params : {"kmeans", "k-means||"}, default="kmeans"
        Both start from dkmeans' :class:`~dkmeans.KMeans` (k-means||
        seeding, then Lloyd): each row in the component of its center.
    weights_init : array of shape (n_components,), optional
    means_init : array of shape (n_components, n_features), optional
        Initial means: no k-means runs; weights and covariances not given come
        from each row in the component of its nearest mean (scikit-learn's from
        its own k-means' labels).
    precisions_init : array, optional
        Inverse covariances: (k, d, d), (k, d) or (k,) by covariance type.
    random_state : int, RandomState or None
    persist : bool or "auto", default="auto"
        As for :class:`~dkmeans.KMeans`.
    verbose : int, default=0
    scale : bool, default=False
        Fit in standardized units (every feature to mean 0, standard
        deviation 1; one more pass), as :class:`~dkmeans.KMeans`: the
        k-means start and ``reg_covar`` then treat features alike. The
        fitted mixture is reported in X's units (means, covariances,
        log-likelihoods); not with ``covariance_type="spherical"``, which
        stops being spherical in X's units.
    missing : {"error", "impute"}, default="error"
        NaN is an error naming its row, or the feature's mean, in fit and
        in every method after it.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood (per unit of sample weight) of the best run's
        last iteration.
    lower_bounds_ : list of float
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.2, size=(200, 2)) for c in (0, 4)])
    >>> from dkmeans import GaussianMixture
    >>> gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    >>> sorted(np.round(gm.means_[:, 0]).astype(int).tolist())
    [0, 4]
    >>> gm.predict_proba(X).shape
    (400, 2)
    """

    #: What NaN becomes per feature (``missing="impute"``), once fitted
    _fill: np.ndarray | None = None

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans", weights_init: Any = None,
                 means_init: Any = None, precisions_init: Any = None,
                 random_state: Any = None, persist: bool | str = "auto",
                 verbose: int = 0, scale: bool = False, missing: str = "error") -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.persist = persist
        self.verbose = verbose
        self.scale = scale
        self.missing = missing

    # -------------------------------------------------------------- fit

    def fit(self, X: Any, y: None = None, sample_weight: Any = None, *,
            storage_options: dict | None = None, columns: list | None = None,
            sep: str | None = None, header: bool = True) -> GaussianMixture:
        """Fit the mixture by EM.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            A row of weight w counts as w copies of it.
        storage_options : dict, optional
            When X is a URL: passed to fsspec; they travel with the tasks.
            (Other methods take the URL as :func:`dkmeans.open_array` opens it.)
        columns, sep, header
            When X is a table (Parquet, CSV, TSV): as :meth:`KMeans.fit`.

        Returns
        -------
        self
        """
        return self._fit(X, sample_weight, storage_options,
                         table={"columns": columns, "sep": sep, "header": header})

    def _fit(self, X: Any, sample_weight: Any = None, storage_options: dict | None = None,
             start: MixtureResult | None = None,
             on_iteration: Callable[[MixtureResult], None] | None = None,
             table: dict | None = None) -> GaussianMixture:
        """:meth:`fit`, optionally continuing from ``start`` (a checkpoint's
        parameters and lower bounds) and reporting every iteration (the
        command line's checkpoints)."""
        check_parameters(self, _PARAMETERS)
        data = as_dataset(X, sample_weight, storage_options, table_reading(
            self, X, storage_options, **(table or {}), fitting=True))
        data.require_dense("GaussianMixture")
        k, d = self.n_components, data.n_features
        if data.n_samples < k:
            raise InvalidInputError(f"Expected n_samples >= n_components but got "
                                    f"n_components = {k}, n_samples = {data.n_samples}.")
        if self.covariance_type == "full" and k * d * d > FULL_MAX_VALUES:
            raise InvalidParameterError(
                f"covariance_type='full' with {k} components of {d} features holds "
                f"{k * d * d:,} values per block, over {FULL_MAX_VALUES:,}; use 'diag'.")
        if self.scale and self.covariance_type == "spherical":
            raise spherical_scaling_error()
        weights, means, precisions = check_initial_parameters(
            k, d, self.covariance_type, self.weights_init, self.means_init, self.precisions_init)
        data, prep = prepare(data, scale=self.scale, missing=self.missing)
        units = MixtureUnits(prep.scale, prep.mean, self.covariance_type)
        means, precisions = units.initial(means, precisions)
        if should_persist(data, self.persist):
            data = data.persist()
        hook = chain(on_iteration, self._report if self.verbose else None)
        options = {"tol": self.tol, "reg_covar": self.reg_covar, "max_iter": self.max_iter,
                   "on_iteration": hook and (lambda r: hook(units.to_data(r)))}
        if start is not None:
            start = units.to_model(start)
            result = em(data.blocks(), start.params, self.covariance_type,
                        history=start.lower_bounds, **options)
        else:
            result = fit_mixture(
                data.blocks(), k, self.covariance_type,
                centers=((lambda run: means) if means is not None
                         else self._kmeans(data, fit_seed(self.random_state))),
                n_init=1 if means is not None else self.n_init, weights_init=weights,
                precisions_init=precisions, **options)
        self._set_state(units.to_data(result), d)
        self._fill = prep.fill
        if not self.converged_ and self.max_iter > 0:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", ConvergenceWarning, stacklevel=2)
        return self

    def fit_predict(self, X: Any, y: None = None, sample_weight: Any = None):
        """:meth:`fit`, then :meth:`predict` on the same X.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        ndarray or dask array of shape (n_samples,), int64
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _kmeans(self, data, seed: int):
        """Initial means of run ``run``: dkmeans' k-means on the data (shifted
        to near the origin when far from it, as :class:`~dkmeans.KMeans` does)."""
        prep = Preprocessing.learn(data.X, scale=False, impute=False, unit=False,
                                   head=data.local)
        shifted = data.preprocessed(prep)

        def centers(run: int) -> np.ndarray:
            fit = fit_kmeans(shifted, self.n_components, init="k-means||",
                             seed=(seed + 7919 * run) % 2**31, persist=self.persist,
                             init_size="auto")
            return prep.to_original(fit.centers).astype(np.float64)

        return centers

    def _report(self, result: MixtureResult) -> None:
        print(f"Iteration {result.n_iter}: lower bound {result.lower_bound:.6f}", flush=True)

    def _set_state(self, result: MixtureResult, n_features: int) -> None:
        """The fitted attributes from an EM result (see :meth:`_state`)."""
        self._set(result.params)
        self.converged_, self.n_iter_ = result.converged, result.n_iter
        self.lower_bound_, self.lower_bounds_ = result.lower_bound, list(result.lower_bounds)
        self.n_features_in_ = n_features

    def _set(self, params: MixtureParameters) -> None:
        self.weights_, self.means_ = params.weights, params.means
        self.covariances_, self.precisions_cholesky_ = params.covariances, params.prec_chol
        self.precisions_ = kernels.precisions_from_cholesky(params.prec_chol,
                                                            self.covariance_type)

    # ----------------------------------------------------- model files

    def save(self, path: Any, storage_options: dict | None = None,
             fingerprint: dict | None = None, state: str = "complete",
             overwrite: bool = False) -> Location:
        """Write the fitted mixture to the model directory ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            A local path or an fsspec URL; written as :meth:`dkmeans.KMeans.save` writes.
        storage_options : dict, optional
            Passed to fsspec for a URL.
        fingerprint : dict, optional
            The input's fingerprint, which ``dkmeans fit --resume`` compares.
        state : {"complete", "checkpoint"}
            ``"checkpoint"`` marks an unfinished fit, which only ``--resume`` reads.
        overwrite : bool, default False
            Replace an existing dkmeans model there (never anything else).

        Returns
        -------
        Location
            Where the model was written.
        """
        check_is_fitted(self)
        meta, arrays = mixture_file.meta_and_arrays(self, fingerprint, state,
                                                    _ARRAY_PARAMETERS, self._fill)
        return write_model_dir(path, meta, arrays, storage_options, overwrite)

    def _params_for_file(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The parameters as JSON values, and the initial arrays apart."""
        return mixture_file.params_for_file(self, _ARRAY_PARAMETERS)

    def _state(self) -> MixtureResult:
        """The fitted state, as a checkpoint resumes from it."""
        return MixtureResult(MixtureParameters(self.weights_, self.means_, self.covariances_,
                                               self.precisions_cholesky_),
                             self.converged_, self.n_iter_, self.lower_bound_,
                             list(self.lower_bounds_))

    @classmethod
    def _from_file(cls, meta: dict, read, names: list[str]) -> GaussianMixture:
        params, mixture, fill = mixture_file.read_fitted(meta, read)
        fitted = meta["fitted"]
        model = cls(**params)
        model._set(mixture)
        model._fill = fill
        model.n_features_in_, model.n_iter_ = fitted["n_features_in"], int(fitted["n_iter"])
        model.converged_ = bool(fitted["converged"])
        model.lower_bound_ = float(fitted["lower_bound"])
        model.lower_bounds_ = [float(v) for v in fitted["lower_bounds"]]
        if "feature_names_in" in fitted:
            model.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        return model
