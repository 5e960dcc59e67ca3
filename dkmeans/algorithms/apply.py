"""Fitted models applied to data, lazily: labels, distances, ambiguity and
soft assignments of centers, and a Gaussian mixture's densities, one task
per block (nothing runs until computed)."""

from __future__ import annotations

import numbers
from typing import Any

import dask.array as da
import numpy as np
from scipy.special import logsumexp

from dkmeans import kernels
from dkmeans.errors import InvalidParameterError, not_finite
from dkmeans.kernels import medians, mixture


def check_finite_block(x: np.ndarray, block_info: dict | None) -> None:
    bad = kernels.first_nonfinite_row(x)
    if bad >= 0:
        row = bad + (block_info[0]["array-location"][0][0] if block_info else 0)
        raise not_finite(row, "a model fitted with missing=\"error\"")


def _nearest_block(x: np.ndarray, centers: np.ndarray, metric: str, part: int,
                   block_info=None) -> np.ndarray:
    """Each row's nearest center (``part`` 0) or its cost (1: the squared
    distance, or the L1 distance for ``metric="manhattan"``)."""
    check_finite_block(x, block_info)
    if metric == "manhattan":
        return medians.nearest_l1(x, centers)[part]
    return kernels.nearest(x, centers)[part]


def _distance_block(x: np.ndarray, centers: np.ndarray, metric: str = "euclidean",
                    block_info=None) -> np.ndarray:
    check_finite_block(x, block_info)
    if metric == "manhattan":
        return medians.l1_distances(x, centers).astype(x.dtype)
    return kernels.pairwise_distances(x, centers)


def predict_labels(X: da.Array, centers: np.ndarray, metric: str = "euclidean") -> da.Array:
    """Index of the nearest center of every row (by L1 distance for
    ``metric="manhattan"``): lazy, shape (n,), int32."""
    return X.map_blocks(_nearest_block, centers, metric, 0, dtype=np.int32, drop_axis=1,
                        token="dkmeans-predict")


def nearest_cost(X: da.Array, centers: np.ndarray, metric: str = "euclidean") -> da.Array:
    """Each row's share of the objective: the squared distance to its
    nearest center, or (``"manhattan"``) the L1 distance: lazy, (n,), float64."""
    return X.map_blocks(_nearest_block, centers, metric, 1, dtype=np.float64, drop_axis=1,
                        token="dkmeans-nearest-cost")


def distances(X: da.Array, centers: np.ndarray, metric: str = "euclidean") -> da.Array:
    """Euclidean (or L1) distance from every row to every center: lazy, (n, k),
    X's dtype."""
    return X.map_blocks(_distance_block, centers, metric, dtype=X.dtype,
                        chunks=(X.chunks[0], (centers.shape[0],)), token="dkmeans-transform")


def _ambiguity_block(x: np.ndarray, centers: np.ndarray, block_info=None) -> np.ndarray:
    check_finite_block(x, block_info)
    _, d1, d2 = kernels.nearest_two(x, centers)
    return ambiguity_of(d1, d2)


def ambiguity_of(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """``sqrt(d1 / d2)`` from squared distances to the nearest and second
    nearest centers: the distance ratio, 0 on a center, 1 on the boundary
    between two (also when both are 0: two centers coincide), 0 with a single
    center (``d2`` inf)."""
    near, second = np.sqrt(d1), np.sqrt(d2)
    out = np.ones_like(near)
    np.divide(near, second, out=out, where=second > 0)
    return out


def ambiguity(X: da.Array, centers: np.ndarray) -> da.Array:
    """Ambiguity of every row's assignment (:func:`ambiguity_of`): lazy, (n,), float64."""
    return X.map_blocks(_ambiguity_block, centers, dtype=np.float64, drop_axis=1,
                        token="dkmeans-ambiguity")


def _proba_block(x: np.ndarray, centers: np.ndarray, temperature: float,
                 block_info=None) -> np.ndarray:
    check_finite_block(x, block_info)
    return responsibilities(kernels.sqdist(x, centers), temperature)


def responsibilities(d2: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of ``exp(-d2 / (2 temperature))``, normalised to sum to 1 (computed
    from the smallest distance of each row, so no row underflows to 0/0).

    Parameters
    ----------
    d2 : ndarray of shape (n, k)
        Squared distances to the centers.
    temperature : float, > 0

    Returns
    -------
    ndarray of shape (n, k), float64
    """
    logits = -(d2 - d2.min(axis=1, keepdims=True)) / (2.0 * temperature)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def checked_temperature(temperature: Any, default: float) -> float:
    """``temperature`` for :func:`soft_assignments`, or the model's
    ``default`` (its within-cluster variance) for None.

    Raises
    ------
    InvalidParameterError
        Naming the value, unless a finite number > 0 (or None with a
        positive default).
    """
    if temperature is None:
        if not default > 0:
            raise InvalidParameterError(
                "This model has no positive within-cluster variance (inertia 0, or a "
                "model file without it): pass temperature= explicitly.")
        return float(default)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not (
            np.isfinite(temperature) and temperature > 0):
        raise InvalidParameterError(
            f"temperature must be a finite number > 0; got {temperature!r}.")
    return float(temperature)


def soft_assignments(X: da.Array, centers: np.ndarray, temperature: float) -> da.Array:
    """:func:`responsibilities` of every row: lazy, (n, k), float64."""
    return X.map_blocks(_proba_block, centers, float(temperature), dtype=np.float64,
                        chunks=(X.chunks[0], (centers.shape[0],)), token="dkmeans-proba")


# ---------------------------------------------------------- Gaussian mixtures


def mixture_rows_block(x: np.ndarray, fn, log_weights, means, prec_chol, covariance_type,
                       block_info=None) -> np.ndarray:
    """``fn`` of a block's weighted log densities under a Gaussian mixture."""
    check_finite_block(x, block_info)
    return fn(mixture.weighted_log_prob(x, log_weights, means, prec_chol, covariance_type))


def log_density(wlp: np.ndarray) -> np.ndarray:
    return logsumexp(wlp, axis=1)


def posterior(wlp: np.ndarray) -> np.ndarray:
    return np.exp(wlp - logsumexp(wlp, axis=1)[:, None])


def most_probable(wlp: np.ndarray) -> np.ndarray:
    return wlp.argmax(axis=1)
