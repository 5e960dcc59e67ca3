"""What the dkmeans estimators share once fitted, and their parameter checks.

:class:`BaseKMeans` gives :class:`~dkmeans.KMeans` and
:class:`~dkmeans.MiniBatchKMeans` predict, transform, score, anomaly scores,
the farthest rows, labels written to Zarr and model files; each estimator
lists its parameters in a table of (test, what is expected) checked at fit.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from dkmeans import kernels
from dkmeans.algorithms.apply import distances, nearest_cost, predict_labels
from dkmeans.data import Dataset, as_chunked
from dkmeans.data.preprocessing import Preprocessing
from dkmeans.data.sources import table_columns
from dkmeans.data.storage import Location
from dkmeans.data.validation import as_weights
from dkmeans.errors import InvalidInputError, InvalidParameterError
from dkmeans.estimators.modelfile import write_model_dir
from dkmeans.estimators.outputs import LabelOutputs
from dkmeans.estimators.params import check_parameters, fit_seed, plain
from dkmeans.runner import compute


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


def table_reading(estimator: Any, X: Any, storage_options: dict | None = None,
                  columns: list | None = None, sep: str | None = None, header: bool = True,
                  fitting: bool = False) -> dict:
    """How an estimator reads X when X is the path of a table (else ``{}``).

    At fit, the chosen columns' names become ``feature_names_in_`` (as for
    a DataFrame); after, a table read without ``columns`` is read by them.
    With ``missing="impute"``, a value that is not a number is read as
    missing.

    Returns
    -------
    dict
        Keyword arguments of :func:`dkmeans.open_array` (``columns``, ...).
    """
    if not isinstance(X, (str, os.PathLike, Location)):
        if columns is not None:
            raise InvalidParameterError("columns= picks the columns of a table file; pass "
                                        "an array with only the features instead.")
        return {}
    names = getattr(estimator, "feature_names_in_", None)
    if not fitting and columns is None and names is not None:
        columns = [str(c) for c in names]
    table = {"columns": columns, "sep": sep, "header": header}
    if getattr(estimator, "missing", "error") == "impute":
        table["non_numeric"] = "missing"
    if fitting:
        names = table_columns(X, storage_options, columns, sep, header)
        if names:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    return table


class BaseKMeans(LabelOutputs, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                  ClusterMixin, BaseEstimator):
    """What every dkmeans estimator does once fitted: predict, transform,
    score, write labels to Zarr, save; and parameter checks from a table."""

    #: name -> (test, what is expected), checked at fit time, in this order
    _parameters: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {}

    def _check_params(self) -> None:
        check_parameters(self, self._parameters)

    def _seed(self) -> int:
        return fit_seed(self.random_state)

    def _check_feature_names(self, X: Any, reset: bool) -> None:
        """Record (fit) or check (after) the column names of a table, as
        scikit-learn's estimators do (``feature_names_in_``). A path or a
        chunked array (dask, Zarr: how a table read by its columns arrives)
        has no names to check."""
        chunked = isinstance(X, da.Array) or hasattr(X, "store_path")
        if isinstance(X, (str, os.PathLike, Location)) or (chunked and not reset):
            return
        if hasattr(X, "columns") or (not reset and hasattr(self, "feature_names_in_")):
            validate_data(self, X, reset=reset, skip_check_array=True)
        elif reset and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _chunked(self, X: Any, storage_options: dict | None = None, **table: Any,
                 ) -> tuple[da.Array, bool]:
        """X checked against the fit and preprocessed as the fit's data was
        (a table read by ``table``, else by the fit's column names)."""
        check_is_fitted(self)
        self._check_feature_names(X, reset=False)
        arr, source = as_chunked(X, storage_options=storage_options,
                                 **table_reading(self, X, storage_options, **table))
        if arr.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {arr.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input.")
        return self._prep().apply(arr), source == "numpy"

    @property
    def _distance(self) -> str:
        """How rows are compared with centers: "manhattan" (k-medians) or
        "euclidean" (also for cosine, on unit rows)."""
        return "manhattan" if getattr(self, "metric", None) == "manhattan" else "euclidean"

    def _euclidean_only(self, what: str) -> None:
        if self._distance == "manhattan":
            raise InvalidParameterError(f"{what} is defined for metric='euclidean' or "
                                        "'cosine', not 'manhattan'.")

    def _prep(self) -> Preprocessing:
        return getattr(self, "_preprocessing", None) or Preprocessing()

    def _model_centers(self) -> np.ndarray:
        """The centers in the space the rows are compared in (scaled features)."""
        return self._prep().to_model(self.cluster_centers_)

    def predict(self, X: Any, storage_options: dict | None = None, *,
                columns: list | None = None, sep: str | None = None,
                header: bool = True) -> np.ndarray | da.Array:
        """Index of the nearest center of each row.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL (Zarr, .npy, \
Parquet / CSV), of shape (n_samples, n_features)
        storage_options : dict, optional
            For a URL: passed to fsspec (endpoint, credentials).
        columns, sep, header
            For a table: as :func:`dkmeans.open_array`; by default the
            columns named as at fit (``feature_names_in_``).

        Returns
        -------
        ndarray or dask array of shape (n_samples,), int32
            Numpy for in-memory X, else lazy, one chunk per chunk of X.
        """
        arr, in_memory = self._chunked(X, storage_options, columns=columns, sep=sep,
                                       header=header)
        labels = predict_labels(arr, self._model_centers(), self._distance)
        return compute(labels)[0] if in_memory else labels

    def _rows_out(self, X: Any, storage_options: dict | None, with_distance: bool,
                  table: dict) -> tuple[da.Array, da.Array | None]:
        """Lazy labels of X, and distances to the nearest center
        (:class:`~dkmeans.estimators.outputs.LabelOutputs`)."""
        arr, _ = self._chunked(X, storage_options, **table)
        labels = predict_labels(arr, self._model_centers(), self._distance)
        if not with_distance:
            return labels, None
        cost = nearest_cost(arr, self._model_centers(), self._distance)
        return labels, (cost if self._distance == "manhattan" else da.sqrt(cost))

    def anomaly_score(self, X: Any) -> np.ndarray | da.Array:
        """Distance from each row to its nearest center (L1 for
        ``metric="manhattan"``): large means unusual.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape (n_samples, n_features)

        Returns
        -------
        ndarray (for in-memory X) or lazy dask array of shape (n_samples,), float64
        """
        arr, in_memory = self._chunked(X)
        out = nearest_cost(arr, self._model_centers(), self._distance)
        if self._distance != "manhattan":
            out = da.sqrt(out)
        return compute(out)[0] if in_memory else out

    def farthest(self, X: Any, n: int = 10) -> FarthestRows:
        """The ``n`` rows farthest from their nearest center, in one pass.

        Each block keeps only its own ``n`` farthest rows (a partial
        selection), merged across blocks: the data is never sorted, and only
        ``n`` rows per block reach the client.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape (n_samples, n_features)
        n : int, default 10

        Returns
        -------
        FarthestRows
            Global row indices, the rows (as given, in original units),
            their distances and labels, farthest first.
        """
        from dkmeans.passes import FAR_ROWS
        from dkmeans.runner import run_pass

        if not (isinstance(n, numbers.Integral) and n >= 1):
            raise InvalidParameterError(f"n must be an integer >= 1; got {n!r}.")
        self._euclidean_only("farthest")
        arr, _ = self._chunked(X)
        top = run_pass(FAR_ROWS, Dataset(arr, None, "dask").blocks(), self._model_centers(),
                       int(n))
        rows = kernels.dense(top.rows)
        if not self._prep().is_identity:  # the rows as given, not as preprocessed
            raw, _ = as_chunked(X)
            rows = compute(raw[np.sort(top.index)])[0][np.argsort(np.argsort(top.index))]
        return FarthestRows(top.index, rows, np.sqrt(top.keys), top.labels)

    def transform(self, X: Any) -> np.ndarray | da.Array:
        """Euclidean distance from each row to each center (L1 for
        ``metric="manhattan"``).

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape (n_samples, n_features)

        Returns
        -------
        ndarray or lazy dask array of shape (n_samples, n_clusters), X's dtype
        """
        arr, in_memory = self._chunked(X)
        out = distances(arr, self._model_centers(), self._distance)
        return compute(out)[0] if in_memory else out

    def score(self, X: Any, y: None = None, sample_weight: Any = None) -> float:
        """Opposite of the (weighted) inertia of X under the fitted centers
        (of the sum of L1 distances for ``metric="manhattan"``).

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        arr, _ = self._chunked(X)
        d2 = nearest_cost(arr, self._model_centers(), self._distance)
        if sample_weight is not None:
            d2 = d2 * as_weights(sample_weight, arr)
        return -float(compute(d2.sum())[0])

    def save(self, path: Any, storage_options: dict | None = None,
             fingerprint: dict | None = None, overwrite: bool = False) -> Location:
        """Write the fitted model to the directory ``path`` (JSON and .npy, no
        pickle, atomic on any filesystem); :func:`dkmeans.load` reads it back.
        See :mod:`dkmeans.estimators.modelfile`.

        Parameters
        ----------
        path : str, path-like or fsspec URL
            Absent, an empty folder, or a dkmeans model (else OutputExistsError).
        storage_options : dict, optional
        fingerprint : dict, optional
            The training input's :func:`~dkmeans.estimators.modelfile.fingerprint`.
        overwrite : bool, default False
            Replace a dkmeans model already at ``path`` (as ``--force``).

        Returns
        -------
        Location
        """
        from dkmeans import __version__

        check_is_fitted(self)
        params, arrays = self._params_for_file()
        fitted, fitted_arrays = self._fitted_for_file()
        meta = {"dkmeans_version": __version__, "estimator": type(self).__name__,
                "state": "complete", "input_fingerprint": fingerprint, "params": params,
                "fitted": fitted}
        return write_model_dir(path, meta, {**arrays, **fitted_arrays}, storage_options,
                               overwrite)

    def _params_for_file(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The parameters as JSON values, and an array ``init`` apart."""
        params = {k: plain(v) for k, v in self.get_params().items()}
        arrays = {}
        init = self.init
        if callable(init):
            name = f"{getattr(init, '__module__', '?')}.{getattr(init, '__qualname__', '?')}"
            warnings.warn(f"init={name} is a callable: saved by name only; a loaded model "
                          "refits with the default init.", UserWarning, stacklevel=3)
            params["init"] = {"callable": name}
        elif not isinstance(init, str):
            arrays["init"] = np.asarray(init)
            params["init"] = {"array": "init"}
        if isinstance(self.random_state, np.random.RandomState):
            warnings.warn("random_state is a RandomState instance: saved as None.",
                          UserWarning, stacklevel=3)
            params["random_state"] = None
        return params, arrays

    def _fitted_for_file(self) -> tuple[dict, dict[str, np.ndarray]]:
        """What predicts (and continues) as JSON values and arrays."""
        fitted = {"n_features_in": int(self.n_features_in_), "inertia": float(self.inertia_),
                  "n_iter": int(self.n_iter_), "dtype": str(self.cluster_centers_.dtype),
                  "timings": {k: float(v) for k, v in getattr(self, "timings_", {}).items()}}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in"] = [str(v) for v in self.feature_names_in_]
        arrays = {"cluster_centers": self.cluster_centers_,
                  **{f"feature_{k}": v for k, v in self._prep().arrays().items()}}
        return fitted, arrays

    @classmethod
    def _from_file(cls, meta: dict, read: Callable[[str], np.ndarray], names: list[str],
                   ) -> BaseKMeans:
        """A fitted estimator from a model directory's metadata and arrays.

        ``read(name)`` returns an array; ``names`` lists those present.
        """
        params, fitted = dict(meta["params"]), meta["fitted"]
        init = params["init"]
        if isinstance(init, dict):
            params["init"] = (read("init") if "array" in init
                              else cls.__init__.__kwdefaults__["init"])
        model = cls(**params)
        centers = read("cluster_centers")
        expected = (params["n_clusters"], fitted["n_features_in"])
        if centers.shape != expected or str(centers.dtype) != fitted["dtype"]:
            raise InvalidInputError(
                f"cluster_centers has shape {centers.shape} and dtype {centers.dtype}; "
                f"the metadata says {expected} and {fitted['dtype']}.")
        model.cluster_centers_ = centers
        model._preprocessing = Preprocessing.from_arrays(
            {n.removeprefix("feature_"): read(n) for n in names if n.startswith("feature_")},
            unit=params.get("metric") == "cosine")
        model.inertia_ = float(fitted["inertia"])
        model.n_iter_ = int(fitted["n_iter"])
        model.n_features_in_ = int(fitted["n_features_in"])
        if "feature_names_in" in fitted:
            model.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        model.timings_ = dict(fitted.get("timings", {}))
        model._restore_fitted(fitted, read)
        return model

    def _restore_fitted(self, fitted: dict, read: Callable[[str], np.ndarray]) -> None:
        """What each estimator adds to :meth:`_from_file`."""

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
        tags.input_tags.sparse = True  # scipy.sparse X, read as CSR blocks
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
