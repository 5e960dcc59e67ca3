"""Turning what a user passes (numpy, dask, Zarr, a path) into row-chunked data.

Every algorithm works on a :class:`Dataset`: a dask array of shape
``(n_samples, n_features)`` chunked along rows only, float32 or float64, with
optional sample weights chunked the same way. Validation that needs only
metadata (shape, dtype, existence) happens here, before any pass; checks of
the values themselves (NaN, infinity, negative weights) happen in the first
pass over the data (:data:`dkmeans.passes.SCAN`), so chunked data is read once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize

from dkmeans.errors import InputNotFoundError, InputTypeError, InvalidInputError
from dkmeans.runner import Block

#: Target size of a block made from numpy input. Below glibc's 32 MiB mmap
#: threshold, so buffers are reused instead of page-faulted in on every pass.
TARGET_CHUNK_BYTES = 16 * 2**20

Source = Literal["numpy", "dask", "zarr"]


@dataclass(frozen=True)
class Dataset:
    """Row-chunked data and weights, ready for the passes.

    Attributes
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        float32 or float64, one chunk along the columns.
    weights : dask.array.Array of shape (n_samples,) or None
        float64, chunked like X's rows; None means unit weights.
    source : {"numpy", "dask", "zarr"}
        Where the data came from: decides what type results are returned as.
    persisted : bool
        Whether X already lives in memory (numpy input, or persisted).
    """

    X: da.Array
    weights: da.Array | None
    source: Source
    persisted: bool = False

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    def blocks(self) -> list[Block]:
        """The row blocks as graph nodes, with their first global row."""
        xs = self.X.to_delayed().ravel()
        ws = [None] * len(xs) if self.weights is None else list(self.weights.to_delayed())
        sizes = self.X.chunks[0]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        keep = (self.X, self.weights)  # persisted futures live as long as the blocks
        return [Block(x, w, int(o), int(s), keep) for x, w, o, s in zip(xs, ws, offsets, sizes,
                                                                         strict=True)]

    def persist(self) -> Dataset:
        """Load the data into (cluster) memory once, for many passes.

        On a ``distributed`` cluster the blocks are first merged to about two
        per worker thread (at most :data:`MAX_PERSISTED_CHUNK_BYTES` each):
        every task costs a round trip through the scheduler on every pass
        (measured on D1 with 2 workers: a pass took 84 ms over 16 blocks,
        68 ms over 4). Results do not change: random draws are keyed by the
        global row, not the block.
        """
        if self.persisted:
            return self
        ds = self
        threads = _distributed_threads()
        if threads:
            rows = _row_chunks_for_cluster(self.n_samples, self.n_features
                                           * self.X.dtype.itemsize, threads)
            if rows > max(self.X.chunks[0]):
                X = self.X.rechunk({0: rows})
                w = None if self.weights is None else self.weights.rechunk((X.chunks[0],))
                ds = replace(self, X=X, weights=w)
        if ds.weights is None:
            X, weights = ds.X.persist(), None
        else:
            X, weights = dask.persist(ds.X, ds.weights)
        return replace(ds, X=X, weights=weights, persisted=True)


#: Largest block made when merging blocks for a distributed cluster.
MAX_PERSISTED_CHUNK_BYTES = 128 * 2**20


def _row_chunks_for_cluster(n: int, row_bytes: int, threads: int) -> int:
    """Rows per block for persisted data on a cluster: two blocks per thread."""
    rows = math.ceil(n / (2 * threads))
    return max(1, min(rows, MAX_PERSISTED_CHUNK_BYTES // max(row_bytes, 1)))


def _distributed_threads() -> int:
    """Worker threads of the active ``distributed`` client, or 0 without one."""
    client = _active_client()
    if client is None:
        return 0
    return sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())


def _active_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _row_chunks_for(n: int, row_bytes: int) -> int:
    """Rows per block for in-memory data: ~16 MiB, and enough blocks for every core."""
    nbytes = n * row_bytes
    n_blocks = math.ceil(nbytes / TARGET_CHUNK_BYTES)
    if nbytes >= 4 * 2**20:
        n_blocks = max(n_blocks, 2 * (os.cpu_count() or 1))
    return max(1, math.ceil(n / max(n_blocks, 1)))


def _check_shape(shape: tuple, what: str) -> None:
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


def _float_dtype(dtype: np.dtype, what: str) -> np.dtype:
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
            f"{what} is a sparse matrix; dkmeans needs dense data. Sparse input is not "
            "supported: convert it with X.toarray() or cluster a dense chunked array.")
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


def _open_zarr(path: str | os.PathLike) -> Any:
    import zarr

    try:
        return zarr.open_array(path, mode="r")
    except FileNotFoundError as err:
        raise InputNotFoundError(f"No Zarr array at {os.fspath(path)!r}: {err}") from err
    except Exception as err:  # zarr raises several types for "not an array"
        raise InvalidInputError(
            f"Could not open {os.fspath(path)!r} as a Zarr array: {err}") from err


def _npy_block(path: str, block_info: dict | None = None) -> np.ndarray:
    (start, stop), _ = block_info[None]["array-location"]
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def open_npy(path: str | os.PathLike) -> da.Array:
    """A ``.npy`` file as a row-chunked dask array, read by memory map inside
    each task (the graph holds the path, not the data)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputNotFoundError(f"No .npy file at {path!r}.")
    try:
        header = np.load(path, mmap_mode="r")
    except ValueError as err:
        raise InvalidInputError(f"{path!r} is not a plain .npy array: {err}") from err
    _check_shape(header.shape, path)
    rows = _row_chunks_for(header.shape[0], header.shape[1] * header.itemsize)
    name = f"dkmeans-npy-{tokenize(path, os.path.getmtime(path))}"
    return da.map_blocks(_npy_block, path, dtype=header.dtype, name=name,
                         chunks=(da.core.normalize_chunks(rows, (header.shape[0],))[0],
                                 (header.shape[1],)))


_TABLE_SUFFIXES = (".parquet", ".csv")


def _table_files(path: str) -> tuple[str, list[str]] | None:
    """("parquet" | "csv", files) when ``path`` is such a file or a folder of them."""
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        for kind in ("parquet", "csv"):
            files = [os.path.join(path, n) for n in names if n.endswith(f".{kind}")]
            if files:
                return kind, files
        return None
    for kind in ("parquet", "csv"):
        if path.endswith(f".{kind}"):
            return kind, [path]
    return None


def open_table(path: str | os.PathLike, columns: list[str] | None = None) -> da.Array:
    """Parquet or CSV (a file or a folder of files) as a row-chunked float array.

    Read through ``dask.dataframe`` (pandas and pyarrow: ``pip install
    dkmeans[dataframe]``), one partition per block. ``columns`` picks and
    orders the features; every one must be numeric.
    """
    path = os.fspath(path)
    found = _table_files(path)
    if found is None:
        raise InputNotFoundError(f"No Parquet or CSV files at {path!r}.")
    kind, files = found
    try:
        import dask.dataframe as dd
    except ImportError as err:
        raise InputTypeError("Reading Parquet or CSV needs pandas and pyarrow: pip install "
                             "'dkmeans[dataframe]'.") from err
    df = dd.read_parquet(files) if kind == "parquet" else dd.read_csv(files)
    if columns:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InvalidInputError(f"Columns {missing} are not in {path!r}; it has "
                                    f"{list(df.columns)}.")
        df = df[list(columns)]
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    bad = [c for c, t in df.dtypes.items() if not (is_numeric_dtype(t) or is_bool_dtype(t))]
    if bad:
        raise InputTypeError(f"Columns {bad} of {path!r} are not numeric; choose numeric "
                             "features with columns=[...] (--columns).")
    # chunk sizes from the array itself: to_dask_array(lengths=True) can
    # disagree with dask-expr's merged partitions (seen with Parquet)
    return df.to_dask_array().compute_chunk_sizes()


def as_block(X: Any, what: str = "X") -> np.ndarray:
    """Validate in-memory input as a C-contiguous float32 / float64 array of
    shape (n, d): shape and dtype only, not the values."""
    X = _numpy_array(X, what)
    _check_shape(X.shape, what)
    return np.ascontiguousarray(X, dtype=_float_dtype(X.dtype, what))


def as_chunked(X: Any, what: str = "X", columns: list[str] | None = None,
               ) -> tuple[da.Array, Source]:
    """Wrap any supported input as a row-chunked float dask array.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array, or a path: Zarr array, ``.npy``
        file, or Parquet / CSV file or folder
    what : str
        Name used in error messages.
    columns : list of str, optional
        For Parquet / CSV input: the feature columns, in order.

    Returns
    -------
    X : dask.array.Array of shape (n, d), float32 or float64, one column chunk
    source : {"numpy", "dask", "zarr"}
    """
    if isinstance(X, (str, os.PathLike)):
        path = os.fspath(X)
        if path.endswith(".npy"):
            X = open_npy(path)
        elif _table_files(path) is not None:
            X = open_table(path, columns)
        else:
            X = _open_zarr(path)
    source: Source
    if type(X).__module__.startswith("zarr"):
        _check_shape(tuple(X.shape), what)
        source = "zarr"
        dtype = _float_dtype(np.dtype(X.dtype), what)
        zrows = X.chunks[0]
        rows = zrows * max(1, TARGET_CHUNK_BYTES // max(1, zrows * X.shape[1]
                                                          * X.dtype.itemsize))
        arr = da.from_zarr(X, chunks=(rows, X.shape[1]))
    elif isinstance(X, da.Array):
        source = "dask"
        _check_shape(X.shape, what)
        if any(math.isnan(c) for c in X.chunks[0]):
            raise InvalidInputError(
                f"{what} has unknown chunk sizes; call X.compute_chunk_sizes() first.")
        dtype = _float_dtype(np.dtype(X.dtype), what)
        arr = X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X
    else:
        source = "numpy"
        X = as_block(X, what)
        dtype = X.dtype
        rows = _row_chunks_for(X.shape[0], X.shape[1] * X.itemsize)
        arr = da.from_array(X, chunks=(rows, X.shape[1]))
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr, source


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


def as_dataset(X: Any, sample_weight: Any = None) -> Dataset:
    """Validate ``X`` and ``sample_weight`` and wrap them as a :class:`Dataset`."""
    arr, source = as_chunked(X)
    weights = as_weights(sample_weight, arr)
    return Dataset(arr, weights, source)


def memory_budget() -> int:
    """Bytes of memory the active scheduler's workers have, in total."""
    client = _active_client()
    if client is None:
        import psutil

        return int(psutil.virtual_memory().available)
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [w.get("memory_limit") or 0 for w in workers]
    if not all(limits):
        import psutil

        return int(psutil.virtual_memory().available)
    return int(sum(limits))
