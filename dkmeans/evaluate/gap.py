"""The gap statistic (Tibshirani, Walther & Hastie 2001) over chunked data.

Reference data sets are drawn uniformly over the data's bounding box
(``"box"``) or over the box of its principal axes (``"pca"``, the paper's
recommendation: the box is aligned with the data's shape). Each is generated
block by block, on the workers, from counter-based streams keyed by the seed,
the reference and the global row: it has the data's chunks and never exists
anywhere whole, and the same seed gives the same references on any chunking.
They are clustered with the same settings as the data; then

    gap(k) = mean_b log W_ref(k, b) - log W(k),
    s_k = sd_b(log W_ref(k, b)) * sqrt(1 + 1 / B),

and the suggested k is the smallest with gap(k) >= gap(k+1) - s_{k+1}.
W(k) is the pooled within-cluster sum of squares: the inertia.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import dask.array as da
import numpy as np

from dkmeans.algorithms.seeding import stream_key
from dkmeans.data import Dataset
from dkmeans.errors import InvalidParameterError
from dkmeans.kernels import sampling
from dkmeans.runner import compute

_REFERENCE = 0x67617073  # "gaps": the references' random streams

REFERENCES = ("box", "pca")


@dataclass(frozen=True)
class Box:
    """Where references are drawn: ``mean + u @ axes.T`` with each ``u_f``
    uniform in ``[low_f, high_f)``."""

    mean: np.ndarray
    axes: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bounding_box(data: Dataset, reference: str = "box") -> Box:
    """The data's box, or its principal axes' box (one pass for the axes,
    one for the bounds)."""
    if reference not in REFERENCES:
        raise InvalidParameterError(f"gap_reference must be one of {REFERENCES}; got "
                                    f"{reference!r}.")
    d = data.n_features
    X = data.X.astype(np.float64)
    if reference == "box":
        mean, axes = np.zeros(d), np.eye(d)
    else:
        from dkmeans.evaluate.plots import principal_axes

        mean, axes = principal_axes(data.X, n_components=d)
    rotated = (X - mean) @ axes
    low, high = compute(rotated.min(axis=0), rotated.max(axis=0))
    return Box(mean, axes, np.asarray(low), np.asarray(high))


def reference_rows(box: Box, key: np.ndarray, start: int, n: int, dtype) -> np.ndarray:
    """Rows ``start .. start + n - 1`` of the reference drawn with ``key``."""
    d = len(box.low)
    u = sampling.row_uniforms(key, start * d, n * d).reshape(n, d)
    return (box.mean + (box.low + u * (box.high - box.low)) @ box.axes.T).astype(dtype)


def _reference_block(box: Box, key: np.ndarray, dtype: np.dtype,
                     block_info=None) -> np.ndarray:
    start, stop = block_info[None]["array-location"][0]
    return reference_rows(box, key, start, stop - start, dtype)


def reference_data(data: Dataset, box: Box, seed: int, b: int) -> Dataset:
    """Reference ``b``: the data's shape and chunks, rows uniform in ``box``,
    made block by block where the data's blocks are (for in-memory data,
    here). Unit weights."""
    key = stream_key(seed, _REFERENCE, b)
    if data.local is not None:
        local = reference_rows(box, key, 0, data.n_samples, data.dtype)
        return replace(data, X=da.from_array(local, chunks=data.X.chunks), weights=None,
                       local=local, local_weights=None)
    # no input array: a reference block is made from its position alone, not
    # from the data's block (which streamed data would read for nothing)
    X = da.map_blocks(_reference_block, box, key, data.dtype, chunks=data.X.chunks,
                      dtype=data.dtype, meta=np.empty((0, 0), data.dtype))
    ref = Dataset(X, None, data.source)
    # held like the data: drawing the rows again costs more than a Lloyd
    # pass over them, and a sweep makes hundreds of passes per reference
    return ref.persist() if data.persisted else ref


def gap_from(log_w: np.ndarray, ref_log_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gap(k) and s_k from log W (m,) and the references' log W (m, B)."""
    n_refs = ref_log_w.shape[1]
    gap = ref_log_w.mean(axis=1) - log_w
    return gap, ref_log_w.std(axis=1) * np.sqrt(1 + 1 / n_refs)


def choose_k(ks: np.ndarray, gap: np.ndarray, s: np.ndarray) -> int | None:
    """The smallest k with gap(k) >= gap(k+1) - s_{k+1}, evaluated only where
    k+1 was fitted too. When none qualifies: the last k for a run of
    consecutive ks (the convention of R's ``clusGap``, "the rule holds at
    K.max"), else None with a warning (the rule cannot be decided on the ks
    given)."""
    for i in range(len(ks) - 1):
        if ks[i + 1] == ks[i] + 1 and gap[i] >= gap[i + 1] - s[i + 1]:
            return int(ks[i])
    if np.all(np.diff(ks) == 1):
        return int(ks[-1])
    warnings.warn(f"The gap rule needs gap(k+1) beside gap(k); among ks {ks.tolist()} no k "
                  "with k+1 fitted satisfies it, so gap_k is None. Sweep consecutive ks "
                  "(e.g. range(1, 11)) to apply it.", UserWarning, stacklevel=3)
    return None
