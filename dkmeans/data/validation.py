"""In-memory input checked: shape and dtype of X, and sample weights (also
chunked like X's rows)."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from dkmeans.errors import InputTypeError, InvalidInputError
from dkmeans.kernels import as_csr


def check_shape(shape: tuple, what: str) -> None:
    if len(shape) != 2:
        raise InvalidInputError(
            f"Expected a 2-D array of shape (n_samples, n_features) for {what}, got a "
            f"{len(shape)}-D array of shape {shape}. Reshape your data either using "
            "array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample.")
    if shape[0] == 0:
        raise InvalidInputError(
            f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is "
            f"required for {what}.")
    if shape[1] == 0:
        raise InvalidInputError(
            f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is "
            f"required for {what}.")


def float_dtype(dtype: np.dtype, what: str) -> np.dtype:
    """float32 and float64 stay as they are; other real numbers become float64."""
    if dtype.kind == "c":
        raise InvalidInputError(
            f"Complex data not supported: {what} has dtype {dtype}; k-means needs real "
            "numbers.")
    if dtype.kind not in "biuf":
        raise InputTypeError(
            f"{what} has dtype {dtype}; expected real numbers (bool, integer or float).")
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _numpy_array(X: Any, what: str) -> np.ndarray:
    if hasattr(X, "tocsr") or hasattr(X, "todense"):
        raise InputTypeError(
            f"{what} is a sparse matrix; this needs dense data (fit, predict, "
            "transform and score take sparse X). Convert it with X.toarray().")
    arr = np.asarray(X)
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise InputTypeError(
                f"{what} has dtype object with entries that are not numbers: {err}"
            ) from err
    if arr.dtype.kind in "USV":
        raise InputTypeError(
            f"{what} has dtype {arr.dtype}; expected real numbers (bool, integer or "
            "float), not strings or bytes.")
    return arr


def as_block(X: Any, what: str = "X") -> np.ndarray:
    """Validate in-memory input as a C-contiguous float32 / float64 array of
    shape (n, d): shape and dtype only, not the values."""
    X = _numpy_array(X, what)
    check_shape(X.shape, what)
    return np.ascontiguousarray(X, dtype=float_dtype(X.dtype, what))


def _weights_shape(w: Any, n: int) -> None:
    if w.ndim != 1 or w.shape[0] != n:
        raise InvalidInputError(
            f"sample_weight has shape {tuple(w.shape)}; expected ({n},), one weight per "
            "row of X.")
    if np.dtype(w.dtype).kind not in "biuf":
        raise InputTypeError(f"sample_weight has dtype {w.dtype}; expected real numbers.")


def as_block_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """Check in-memory sample weights for ``n`` rows: shape, dtype and values.

    Returns
    -------
    ndarray of shape (n,), float64, or None for unit weights
    """
    if sample_weight is None:
        return None
    w = _numpy_array(sample_weight, "sample_weight")
    if w.ndim == 0:  # a scalar weight applies to every row
        w = np.full(n, float(w))
    _weights_shape(w, n)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError(
            f"sample_weight must be finite and non-negative; found {w[i]} at index {i}.")
    if not w.sum() > 0:
        raise InvalidInputError("sample_weight sums to zero; at least one row must have a "
                                "positive weight.")
    return w.astype(np.float64)


def as_weights(sample_weight: Any, X: da.Array) -> da.Array | None:
    """Check sample weights against X and chunk them like X's rows.

    Values (negative, NaN) of chunked weights are checked in the first pass;
    in-memory weights are checked here, at once.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, da.Array):
        _weights_shape(sample_weight, X.shape[0])
        return sample_weight.astype(np.float64).rechunk((X.chunks[0],))
    w = as_block_weights(sample_weight, X.shape[0])
    return da.from_array(w, chunks=(X.chunks[0],))


def as_sparse_block(X: Any, what: str = "X") -> Any:
    """Validate an in-memory ``scipy.sparse`` matrix as CSR of float32 /
    float64 (integers and booleans become float64; CSC and COO are
    converted once): shape and dtype only, not the values."""
    check_shape(X.shape, what)
    X = as_csr(X)
    dtype = float_dtype(np.dtype(X.dtype), what)
    return X.astype(dtype) if X.dtype != dtype else X
