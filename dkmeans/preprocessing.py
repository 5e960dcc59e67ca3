"""Streaming preprocessing: feature scaling, mean imputation, unit-length rows.

:class:`StandardScaler` learns per-feature means and standard deviations in
one pass, merging per-chunk moments pairwise (Chan et al.), so it is stable
far from the origin; NaNs are skipped, so the same pass gives the means a
missing value is imputed with. Every transform is lazy (``map_blocks``), so
:class:`~dkmeans.KMeans` applies it chunk by chunk inside its own passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from dkmeans.data import as_chunked
from dkmeans.runner import Block, Pass, run_pass


@dataclass(frozen=True)
class FeatureMoments:
    """Per-feature count of finite values, mean and centred sum of squares."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray


def feature_moments_chunk(x, w, offset: int) -> FeatureMoments:
    finite = np.isfinite(x)
    count = finite.sum(axis=0).astype(np.float64)
    xs = np.where(finite, x, 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, xs.sum(axis=0) / count, 0.0)
    dev = np.where(finite, xs - mean, 0.0)
    return FeatureMoments(count, mean, (dev * dev).sum(axis=0))


def feature_moments_combine(parts: Sequence[FeatureMoments]) -> FeatureMoments:
    count, mean, m2 = parts[0].count.copy(), parts[0].mean.copy(), parts[0].m2.copy()
    for p in parts[1:]:
        n = count + p.count
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, p.count / n, 0.0)
        delta = p.mean - mean
        m2 += p.m2 + delta * delta * count * share
        mean += delta * share
        count = n
    return FeatureMoments(count, mean, m2)


FEATURE_MOMENTS = Pass("dkmeans-feature-moments", feature_moments_chunk,
                       feature_moments_combine)


def feature_moments(X: da.Array) -> FeatureMoments:
    """One pass over chunked X: per-feature moments of the finite values."""
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
    blocks = [Block(x, None, int(o), int(n), (X,))
              for x, o, n in zip(X.to_delayed().ravel(), offsets, X.chunks[0], strict=True)]
    return run_pass(FEATURE_MOMENTS, blocks)


def _impute_block(x: np.ndarray, fill: np.ndarray) -> np.ndarray:
    missing = np.isnan(x)
    if not missing.any():
        return x
    return np.where(missing, fill.astype(x.dtype), x)


def _scale_block(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return ((x - mean) / scale).astype(x.dtype, copy=False)


def _unit_rows_block(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    norms[norms == 0] = 1.0  # a zero row stays zero
    return (x / norms[:, None]).astype(x.dtype, copy=False)


def impute(X: da.Array, fill: np.ndarray) -> da.Array:
    """Replace NaNs by ``fill`` (per feature), lazily."""
    return X.map_blocks(_impute_block, fill, dtype=X.dtype)


def unit_rows(X: da.Array) -> da.Array:
    """Every row divided by its Euclidean length (zero rows stay zero), lazily."""
    return X.map_blocks(_unit_rows_block, dtype=X.dtype)


class StandardScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardize features over chunked data, learned in one pass.

    Like :class:`sklearn.preprocessing.StandardScaler` (population standard
    deviation; a constant feature gets scale 1, so it is centred, not divided
    by zero). NaNs are ignored when learning, and kept by ``transform``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    var_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
    n_samples_seen_ : ndarray of shape (n_features,)
        Finite values seen per feature.
    n_features_in_ : int
    """

    def fit(self, X: Any, y: None = None) -> StandardScaler:
        arr, _ = as_chunked(X)
        m = feature_moments(arr)
        self.n_samples_seen_ = m.count.astype(np.int64)
        self.mean_ = m.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            self.var_ = np.where(m.count > 0, m.m2 / m.count, 0.0)
        scale = np.sqrt(self.var_)
        # constant features: scikit-learn's rule (scale 1 when the variance is
        # at the level of rounding of the mean)
        tiny = scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(self.mean_), 1.0)
        self.scale_ = np.where(tiny, 1.0, scale)
        self.n_features_in_ = arr.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray | da.Array:
        check_is_fitted(self)
        arr, source = as_chunked(X)
        out = arr.map_blocks(_scale_block, self.mean_, self.scale_, dtype=arr.dtype)
        return out.compute() if source == "numpy" else out

    def inverse_transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(X) * self.scale_ + self.mean_


@dataclass(frozen=True)
class Preprocessing:
    """What an estimator does to rows before clustering them, and back.

    Applied in this order: NaN -> ``fill``; ``(x - mean) / scale``; rows to
    unit length. Each part is optional (None / False).
    """

    fill: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    unit: bool = False

    @classmethod
    def learn(cls, X: da.Array, *, scale: bool, impute: bool, unit: bool) -> Preprocessing:
        """Learn the means and scales the options need (one pass, or none)."""
        if not (scale or impute):
            return cls(unit=unit)
        scaler = StandardScaler().fit(X)
        return cls(fill=scaler.mean_ if impute else None,
                   mean=scaler.mean_ if scale else None,
                   scale=scaler.scale_ if scale else None, unit=unit)

    @property
    def is_identity(self) -> bool:
        return self.fill is None and self.mean is None and not self.unit

    def apply(self, X: da.Array) -> da.Array:
        """The rows as the clustering sees them (lazy)."""
        if self.fill is not None:
            X = impute(X, self.fill)
        if self.mean is not None:
            X = X.map_blocks(_scale_block, self.mean, self.scale, dtype=X.dtype)
        return unit_rows(X) if self.unit else X

    def to_original(self, centers: np.ndarray) -> np.ndarray:
        """Centers from the clustering's space back to the data's units."""
        if self.mean is None:
            return centers
        return (centers * self.scale + self.mean).astype(centers.dtype)

    def to_model(self, centers: np.ndarray) -> np.ndarray:
        """Centers in the data's units into the clustering's space."""
        if self.mean is None:
            return centers
        return ((centers - self.mean) / self.scale).astype(centers.dtype)
