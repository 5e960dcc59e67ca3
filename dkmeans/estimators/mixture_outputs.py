"""What a fitted ``GaussianMixture`` gives for new rows: densities,
posteriors, labels, scores, information criteria and samples."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from dkmeans.algorithms.apply import log_density, mixture_rows_block, most_probable, posterior
from dkmeans.data import as_chunked
from dkmeans.data.preprocessing import impute
from dkmeans.errors import InvalidInputError, InvalidParameterError
from dkmeans.estimators.base import table_reading
from dkmeans.estimators.params import is_int
from dkmeans.runner import compute


class MixtureOutputs:
    """The per-row outputs of a fitted mixture (``GaussianMixture``'s base:
    it sets ``weights_``, ``means_``, ``covariances_``,
    ``precisions_cholesky_``, ``covariance_type`` and ``_fill``)."""

    def _per_row(self, X: Any, block_fn, columns: int | None, dtype=np.float64):
        """``block_fn(x)`` on every block: numpy for in-memory X, else lazy."""
        check_is_fitted(self)
        arr, source = as_chunked(X, **table_reading(self, X))
        if arr.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {arr.shape[1]} features, but GaussianMixture is expecting "
                f"{self.n_features_in_} features as input.")
        if self._fill is not None:
            arr = impute(arr, self._fill)
        args = (np.log(self.weights_), self.means_, self.precisions_cholesky_,
                self.covariance_type)
        if columns is None:
            out = arr.map_blocks(mixture_rows_block, block_fn, *args, dtype=dtype, drop_axis=1)
        else:
            out = arr.map_blocks(mixture_rows_block, block_fn, *args, dtype=dtype,
                                 chunks=(arr.chunks[0], (columns,)))
        return compute(out)[0] if source == "numpy" else out

    def score_samples(self, X: Any) -> np.ndarray | da.Array:
        """Log density of each row under the mixture.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
            A table path reads the columns the mixture was fitted on.

        Returns
        -------
        ndarray or dask array of shape (n_samples,)
            Numpy for in-memory X, else a lazy dask array, one chunk per chunk of X.
        """
        return self._per_row(X, log_density, None)

    def predict_proba(self, X: Any) -> np.ndarray | da.Array:
        """Posterior probability of each component for each row.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
            A table path reads the columns the mixture was fitted on.

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_components)
            Rows sum to 1; numpy for in-memory X, else lazy.
        """
        return self._per_row(X, posterior, self.n_components)

    def predict(self, X: Any) -> np.ndarray | da.Array:
        """Most probable component of each row.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
            A table path reads the columns the mixture was fitted on.

        Returns
        -------
        ndarray or dask array of shape (n_samples,), int64
            Numpy for in-memory X, else lazy.

        Examples
        --------
        >>> import numpy as np
        >>> from dkmeans import GaussianMixture
        >>> X = np.array([[0.0, 0.1], [0.2, 0.0], [9.8, 10.0], [10.1, 9.9]])
        >>> gm = GaussianMixture(2, covariance_type="spherical", random_state=0).fit(X)
        >>> labels = gm.predict(X)
        >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
        True
        """
        return self._per_row(X, most_probable, None, np.int64)

    def _rows_out(self, X: Any, storage_options: dict | None, with_distance: bool,
                  table: dict) -> tuple[da.Array, None]:
        """Lazy most probable components of X (:class:`LabelOutputs`)."""
        if with_distance:
            raise InvalidParameterError("A mixture's rows have probabilities, not distances: "
                                        "write its labels without with_distance.")
        arr, _ = as_chunked(X, storage_options=storage_options,
                            **table_reading(self, X, storage_options, **table))
        return da.asarray(self.predict(arr)).astype(np.int32), None

    def score(self, X: Any, y: None = None) -> float:
        """Mean log density of the rows.

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
            A table path reads the columns the mixture was fitted on.
        y : ignored

        Returns
        -------
        float
        """
        return float(compute(da.asarray(self.score_samples(X)).mean())[0])

    def _n_parameters(self) -> int:
        k, d = self.means_.shape
        cov = {"full": k * d * (d + 1) / 2, "diag": k * d, "spherical": k}[self.covariance_type]
        return int(cov + k * d + k - 1)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on X (lower is better).

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
            A table path reads the columns the mixture was fitted on.

        Returns
        -------
        float
        """
        n = as_chunked(X)[0].shape[0]
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on X (lower is better).

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
            A table path reads the columns the mixture was fitted on.

        Returns
        -------
        float
        """
        n = as_chunked(X)[0].shape[0]
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture (the same draws as scikit-learn's
        for the same parameters and ``random_state``).

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each row was drawn from.
        """
        check_is_fitted(self)
        if not (is_int(n_samples) and n_samples >= 1):
            raise InvalidParameterError(f"Invalid value for 'n_samples': {n_samples!r}; "
                                        "expected an int >= 1.")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        if self.covariance_type == "full":
            rows = [rng.multivariate_normal(m, c, int(s))
                    for m, c, s in zip(self.means_, self.covariances_, counts, strict=True)]
        else:
            scale = np.sqrt(self.covariances_)
            if self.covariance_type == "spherical":
                scale = scale[:, None] * np.ones(self.means_.shape[1])
            rows = [m + rng.standard_normal(size=(s, len(m))) * sd
                    for m, sd, s in zip(self.means_, scale, counts, strict=True)]
        labels = np.concatenate([np.full(s, j, dtype=int) for j, s in enumerate(counts)])
        return np.vstack(rows), labels
