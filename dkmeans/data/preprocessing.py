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

from dkmeans import kernels
from dkmeans.data.dataset import as_chunked
from dkmeans.runner import Block, Pass, compute, run_pass


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


def _unit_rows_block(x: Any) -> Any:
    if kernels.is_sparse(x):  # scaled in place of its non-zeros: stays sparse
        x = kernels.as_csr(x).copy()
        norms = np.sqrt(kernels.csr_row_sqnorms(x))
        norms[norms == 0] = 1.0
        x.data = (x.data / np.repeat(norms, np.diff(x.indptr))).astype(x.dtype, copy=False)
        return x
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    norms[norms == 0] = 1.0  # a zero row stays zero
    return (x / norms[:, None]).astype(x.dtype, copy=False)


def impute(X: da.Array, fill: np.ndarray) -> da.Array:
    """Replace NaNs by ``fill`` (per feature), lazily."""
    return X.map_blocks(_impute_block, fill, dtype=X.dtype)


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


#: Rows read from the start of X to decide whether to shift it (see
#: :meth:`Preprocessing.learn`): the same rows whatever the chunking.
SHIFT_PROBE_ROWS = 1024

#: Shift X when its probe rows' mean lies farther from the origin than this
#: many of their standard deviations (summed over features).
SHIFT_RATIO = 4.0


def needs_shift(head: np.ndarray) -> np.ndarray | None:
    """The mean of ``head`` if the data sits far from the origin for its spread.

    The kernels find the nearest center through ``|x|^2 - 2 x.c + |c|^2``:
    exact in real numbers, but for data such as ``1e8 + small integers`` the
    three terms cancel and every distance rounds to the same value (k-means++
    then stops early, argmin picks arbitrary centers). Subtracting a point
    near the data makes the terms as small as the spread. Data already near
    the origin is left alone, so it pays nothing for this.
    """
    rows = head
    bad, mean, m2, _ = kernels.column_scan(rows) if len(rows) else (-1, None, None, None)
    if bad >= 0:  # bad rows are for the scan to report: leave them out
        rows = head[np.isfinite(head).all(axis=1)]
        bad, mean, m2, _ = kernels.column_scan(rows) if len(rows) else (-1, None, None, None)
    if not len(rows):
        return None
    var = m2 / len(rows)
    if not (np.isfinite(mean).all() and np.isfinite(var).all()):
        return None
    if (mean @ mean) > SHIFT_RATIO**2 * var.sum() + np.finfo(np.float64).tiny:
        return mean
    return None


def _shift_block(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return x - shift.astype(x.dtype)


def _apply_block(x: np.ndarray, prep: Preprocessing) -> np.ndarray:
    return prep.apply_block(x)


@dataclass(frozen=True)
class Preprocessing:
    """What an estimator does to rows before clustering them, and back.

    Applied in this order: NaN -> ``fill``; ``x - shift``; ``(x - mean) /
    scale``; rows to unit length. Each part is optional (None / False).
    ``shift`` is only numerical (see :func:`needs_shift`): distances, inertia
    and labels do not depend on it.
    """

    fill: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    unit: bool = False
    shift: np.ndarray | None = None

    @classmethod
    def learn(cls, X: da.Array, *, scale: bool, impute: bool, unit: bool,
              head: np.ndarray | None = None) -> Preprocessing:
        """Learn the means and scales the options need (one pass, or none),
        and a numerical shift from the first rows (``head``, if already in
        memory) when neither scaling nor unit rows bring the data near the
        origin."""
        shift = None
        if not (scale or unit or kernels.is_sparse(X._meta)):  # a shift would densify
            if head is None:
                head = np.asarray(compute(X[:SHIFT_PROBE_ROWS])[0])
            shift = needs_shift(head[:SHIFT_PROBE_ROWS])
        if not (scale or impute):
            return cls(unit=unit, shift=shift)
        scaler = StandardScaler().fit(X)
        return cls(fill=scaler.mean_ if impute else None,
                   mean=scaler.mean_ if scale else None,
                   scale=scaler.scale_ if scale else None, unit=unit, shift=shift)

    @property
    def is_identity(self) -> bool:
        return (self.fill is None and self.mean is None and not self.unit
                and self.shift is None)

    def impute(self, X: da.Array) -> da.Array:
        """Only the imputation: the rows in the data's units, without NaN (lazy)."""
        return X if self.fill is None else impute(X, self.fill)

    def apply(self, X: da.Array) -> da.Array:
        """The rows as the clustering sees them (lazy): :meth:`apply_block` on
        every block, in one task per block."""
        if self.is_identity:
            return X
        return X.map_blocks(_apply_block, self, dtype=X.dtype, token="dkmeans-preprocess")

    def apply_block(self, x: np.ndarray) -> np.ndarray:
        """:meth:`apply` on one in-memory block."""
        if self.fill is not None:
            x = _impute_block(x, self.fill)
        if self.shift is not None:
            x = _shift_block(x, self.shift)
        if self.mean is not None:
            x = _scale_block(x, self.mean, self.scale)
        return _unit_rows_block(x) if self.unit else x

    def to_original(self, centers: np.ndarray) -> np.ndarray:
        """Centers from the clustering's space back to the data's units."""
        out = centers.astype(np.float64)
        if self.mean is not None:
            out = out * self.scale + self.mean
        if self.shift is not None:
            out = out + self.shift
        return out.astype(centers.dtype)

    def to_model(self, centers: np.ndarray) -> np.ndarray:
        """Centers in the data's units into the clustering's space."""
        out = centers.astype(np.float64)
        if self.shift is not None:
            out = out - self.shift
        if self.mean is not None:
            out = (out - self.mean) / self.scale
        return out.astype(centers.dtype)

    def arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays by name (model files)."""
        return {name: getattr(self, name) for name in ("fill", "mean", "scale", "shift")
                if getattr(self, name) is not None}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], unit: bool) -> Preprocessing:
        return cls(unit=unit, **{name: arrays.get(name)
                                 for name in ("fill", "mean", "scale", "shift")})


def prepare(data: Any, *, scale: bool = False, missing: str = "error",
            metric: str = "euclidean",
            metrics: tuple[str, ...] = ("euclidean", "cosine", "manhattan"),
            ) -> tuple[Any, Preprocessing]:
    """The rows as a fit with these options clusters them, and how.

    What every entry point that fits (the estimators, :func:`dkmeans.sweep`,
    :func:`dkmeans.stability`, the gap statistic's references) does first,
    so the same options mean the same rows everywhere.

    Parameters
    ----------
    data : dkmeans.data.dataset.Dataset
    scale : bool
        Standardize every feature (one pass for the moments).
    missing : {"error", "impute"}
        NaN stays (and a later pass names its row), or becomes the
        feature's mean (learned in the same pass).
    metric : {"euclidean", "cosine", "manhattan"}
        ``"cosine"`` makes every row unit length.
    metrics : tuple of str
        The metrics the caller fits with (:func:`dkmeans.sweep` and
        :func:`dkmeans.stability` fit k-means: not ``"manhattan"``).

    Returns
    -------
    data : Dataset
        Preprocessed, lazily (at once for in-memory data).
    prep : Preprocessing
        What was done, to map centers back (:meth:`Preprocessing.to_original`).
    """
    from dkmeans.errors import InvalidParameterError

    if missing not in ("error", "impute"):
        raise InvalidParameterError(f"missing must be 'error' or 'impute'; got {missing!r}.")
    if not isinstance(scale, (bool, np.bool_)):
        raise InvalidParameterError(f"scale must be True or False; got {scale!r}.")
    if metric not in metrics:
        raise InvalidParameterError(f"metric must be one of {list(metrics)}; got {metric!r}.")
    if scale and metric == "cosine":
        raise InvalidParameterError("scale=True with metric='cosine': rows are scaled to "
                                    "unit length already; choose one.")
    if kernels.is_sparse(data.X._meta) and (scale or missing == "impute"):
        what = "scale=True centres every column" if scale else "missing='impute' fills NaNs"
        raise InvalidParameterError(
            f"{what}, which would make sparse X dense; scale or fill it beforehand (e.g. "
            "scikit-learn's MaxAbsScaler keeps it sparse), or pass dense X.")
    prep = Preprocessing.learn(data.X, scale=bool(scale), impute=missing == "impute",
                               unit=metric == "cosine", head=data.local)
    return data.preprocessed(prep), prep
