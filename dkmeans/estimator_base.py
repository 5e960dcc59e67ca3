"""What the dkmeans estimators share once fitted, and their parameter checks.

:class:`_BaseKMeans` gives :class:`~dkmeans.KMeans` and
:class:`~dkmeans.MiniBatchKMeans` predict, transform, score, anomaly scores,
the farthest rows, labels written to Zarr and model files; each estimator
lists its parameters in a table of (test, what is expected) checked at fit.
"""

from __future__ import annotations

import numbers
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
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from dkmeans.data import Dataset, as_chunked, as_weights
from dkmeans.errors import InvalidInputError, InvalidParameterError
from dkmeans.fit import distances, nearest_sq_distances, predict_labels
from dkmeans.preprocessing import Preprocessing
from dkmeans.runner import compute


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# name -> (test, what is expected), checked at fit time, in this order.
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
