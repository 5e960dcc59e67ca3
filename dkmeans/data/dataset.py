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
import uuid
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np

from dkmeans.data.sources import open_path
from dkmeans.data.storage import Location, active_client
from dkmeans.data.validation import (
    as_block,
    as_block_weights,
    as_sparse_block,
    as_weights,
    check_shape,
    float_dtype,
)
from dkmeans.data.workers import wait_for_workers
from dkmeans.errors import InputTypeError, InvalidInputError
from dkmeans.kernels import is_sparse
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
    local : ndarray of shape (n_samples, n_features) or None
        Small numpy input on a local scheduler, as the passes see it: then
        every pass runs directly on it in this thread (see
        :data:`LOCAL_MAX_BYTES`), not through a task graph.
    local_weights : ndarray of shape (n_samples,) or None
    """

    X: da.Array
    weights: da.Array | None
    source: Source
    persisted: bool = False
    local: np.ndarray | None = field(default=None, repr=False)
    local_weights: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    @property
    def sparse(self) -> bool:
        """Whether the blocks are ``scipy.sparse`` matrices (CSR)."""
        return is_sparse(self.X._meta)

    def memory_bytes(self) -> float:
        """Bytes the rows take in memory: their size if dense; if sparse
        (dask counts a CSR block as dense: 32 GB for 48 MB of text features),
        the first block's non-zeros (values and column indices) per row
        times the rows, counted where the block is."""
        if not self.sparse:
            return float(self.X.nbytes)
        return self._sparse_row_bytes * self.n_samples

    @cached_property
    def _sparse_row_bytes(self) -> float:
        # computed once per dataset: choosing to persist and sizing the
        # seeding sample both ask, and streamed data would read the block twice
        first = self.X.blocks[0]
        nnz = dask.delayed(_stored_nonzeros)(first.to_delayed().ravel()[0])
        return int(dask.compute(nnz)[0]) * (self.X.dtype.itemsize + 4) / max(
            first.shape[0], 1)

    def require_dense(self, what: str) -> None:
        """Raise :class:`~dkmeans.errors.InputTypeError` naming ``what`` if
        the data is sparse."""
        if self.sparse:
            raise InputTypeError(
                f"X is a sparse matrix; {what} needs dense data (k-means with "
                "metric='euclidean' or 'cosine' and mini-batch k-means take sparse X). "
                "Convert it with X.toarray() if it fits in memory.")

    def blocks(self) -> list[Block]:
        """The row blocks as graph nodes (or in-memory arrays, for
        :attr:`local` data), with their first global row."""
        if self.local is not None:
            return [Block(self.local, self.local_weights, 0, len(self.local))]
        xs = self.X.to_delayed().ravel()
        ws = [None] * len(xs) if self.weights is None else list(self.weights.to_delayed())
        sizes = self.X.chunks[0]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        keep = (self.X, self.weights)  # persisted futures live as long as the blocks
        return [Block(x, w, int(o), int(s), keep) for x, w, o, s in zip(xs, ws, offsets, sizes,
                                                                         strict=True)]

    def preprocessed(self, prep: Any) -> Dataset:
        """The data as ``prep`` (a :class:`~dkmeans.data.preprocessing.Preprocessing`)
        makes it: lazily for X, at once for :attr:`local` data."""
        local = None if self.local is None else prep.apply_block(self.local)
        return replace(self, X=prep.apply(self.X), local=local)

    def persist(self) -> Dataset:
        """Load the data into (cluster) memory once, for many passes.

        On a ``distributed`` cluster the blocks are first merged to about two
        per worker thread (at most :data:`MAX_PERSISTED_CHUNK_BYTES` each):
        every task costs a round trip through the scheduler on every pass
        (measured on D1 with 2 workers: a pass took 84 ms over 16 blocks,
        68 ms over 4). Results do not change: random draws are keyed by the
        global row, not the block.
        """
        if self.persisted or self.local is not None:
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


def _stored_nonzeros(block: Any) -> int:
    return int(block.nnz)


#: numpy input up to this size, on a local scheduler, is clustered in this
#: thread without a task graph. A pass through dask's threaded scheduler
#: costs a few milliseconds, which at this size is as much as the second
#: core gains (benchmarks/README.md, "Small fits", has the crossover).
LOCAL_MAX_BYTES = TARGET_CHUNK_BYTES

#: Largest block made when merging blocks for a distributed cluster.
MAX_PERSISTED_CHUNK_BYTES = 128 * 2**20


def _row_chunks_for_cluster(n: int, row_bytes: int, threads: int) -> int:
    """Rows per block for persisted data on a cluster: two blocks per thread."""
    rows = math.ceil(n / (2 * threads))
    return max(1, min(rows, MAX_PERSISTED_CHUNK_BYTES // max(row_bytes, 1)))


def _distributed_threads() -> int:
    """Worker threads of the active ``distributed`` client, or 0 without one."""
    client = active_client()
    if client is None:
        return 0
    return sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())


def _row_chunks_for(n: int, row_bytes: int) -> int:
    """Rows per block for in-memory data: ~16 MiB, and enough blocks for every core."""
    nbytes = n * row_bytes
    n_blocks = math.ceil(nbytes / TARGET_CHUNK_BYTES)
    if nbytes >= 4 * 2**20:
        n_blocks = max(n_blocks, 2 * (os.cpu_count() or 1))
    return max(1, math.ceil(n / max(n_blocks, 1)))


#: Non-zeros' bytes per block of in-memory sparse data, in blocks of a
#: multiple of the cores: each block costs k x d more in every pass (the
#: centers transposed, the sums zeroed, rounded, added), so fewer, larger
#: blocks than dense data's. 200,000 TF-IDF rows, k = 50: 1.14 s a fit in 4
#: blocks, 0.94 s in 2 (benchmarks/README.md).
SPARSE_BLOCK_BYTES = 64 * 2**20


def _sparse_row_chunks(n: int, row_bytes: int) -> int:
    cores = os.cpu_count() or 1
    n_blocks = cores * math.ceil(math.ceil(n * row_bytes / SPARSE_BLOCK_BYTES) / cores)
    return max(1, math.ceil(n / n_blocks))


def _lazy(X: Any) -> bool:
    return type(X).__module__.partition(".")[0] in ("dask", "xarray", "zarr")


def as_chunked(X: Any, what: str = "X", columns: list | None = None,
               storage_options: dict | None = None, sep: str | None = None,
               header: bool = True, non_numeric: str = "error") -> tuple[da.Array, Source]:
    """Wrap any supported input as a row-chunked float dask array.

    Parameters
    ----------
    X : array-like, dask array, zarr.Array, xarray.DataArray, or a path or
        fsspec URL: Zarr array, ``.npy`` file, or Parquet / CSV / TSV file
        or folder (:func:`dkmeans.data.sources.open_path`)
    what : str
        Name used in error messages.
    columns : list of str or int, optional
        For table input: the feature columns, in order (names or positions).
    storage_options : dict, optional
        For a URL: passed to fsspec; they travel with the tasks.
    sep, header, non_numeric
        For tables: see :func:`dkmeans.data.sources.open_table`.

    Returns
    -------
    X : dask.array.Array of shape (n, d), float32 or float64, one column chunk
    source : {"numpy", "dask", "zarr"}
        numpy input on a ``distributed`` cluster is scattered to the workers
        once (blocks of the returned array are futures there), not embedded
        in every task graph.
    """
    if isinstance(X, (str, os.PathLike, Location)):
        X = open_path(X, storage_options, columns, sep=sep, header=header,
                      non_numeric=non_numeric)
    if type(X).__module__.startswith("dask") and hasattr(X, "to_dask_array"):
        X = X.to_dask_array(lengths=True)  # a dask DataFrame: its partitions become blocks
    if type(X).__module__.startswith("xarray"):
        if X.ndim != 2:
            raise InvalidInputError(f"{what} is a {X.ndim}-D DataArray with dims {X.dims}; "
                                    "expected 2 dims (samples, features).")
        X = X.data  # a dask or numpy array; Zarr-backed DataArrays are dask
    source: Source
    if type(X).__module__.startswith("zarr"):
        check_shape(tuple(X.shape), what)
        source = "zarr"
        dtype = float_dtype(np.dtype(X.dtype), what)
        zrows = X.chunks[0]
        rows = zrows * max(1, TARGET_CHUNK_BYTES // max(1, zrows * X.shape[1]
                                                          * X.dtype.itemsize))
        arr = da.from_zarr(X, chunks=(rows, X.shape[1]))
    elif isinstance(X, da.Array):
        source = "dask"
        check_shape(X.shape, what)
        if any(math.isnan(c) for c in X.chunks[0]):
            raise InvalidInputError(
                f"{what} has unknown chunk sizes; call X.compute_chunk_sizes() first.")
        dtype = float_dtype(np.dtype(X.dtype), what)
        arr = X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X
    elif is_sparse(X):
        source = "numpy"  # in memory: results come back as numpy arrays
        X = as_sparse_block(X, what)
        # rows by their non-zeros (value and column index), not their width
        row_bytes = max(1, -(-X.nnz * (X.dtype.itemsize + 4) // max(X.shape[0], 1)))
        threads = _distributed_threads()
        rows = (_row_chunks_for_cluster(X.shape[0], row_bytes, threads) if threads
                else _sparse_row_chunks(X.shape[0], row_bytes))
        arr, dtype = row_blocks(X, rows, scatter=bool(threads)), X.dtype
    else:
        source = "numpy"
        X = as_block(X, what)
        dtype = X.dtype
        threads = _distributed_threads()
        if threads:
            arr = row_blocks(X, _row_chunks_for_cluster(X.shape[0], X.shape[1] * X.itemsize,
                                                         threads), scatter=True)
        else:
            arr = row_blocks(X, _row_chunks_for(X.shape[0], X.shape[1] * X.itemsize))
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr, source


def open_array(path: Any, storage_options: dict | None = None, columns: list | None = None,
               sep: str | None = None, header: bool = True,
               non_numeric: str = "error") -> da.Array:
    """A path or URL as the row-chunked float dask array dkmeans clusters.

    Use it to hand data in object storage to any function or method that
    takes an array (``transform``, ``score``, the metrics, ...).

    Parameters
    ----------
    path : str, os.PathLike or fsspec URL
        A Zarr array, a ``.npy`` file, or a table (Parquet, CSV, TSV).
    storage_options : dict, optional
        Passed to fsspec; they travel to the workers with the tasks.
    columns, sep, header, non_numeric
        For tables: see :func:`dkmeans.data.sources.open_table`.

    Returns
    -------
    dask.array.Array of shape (n_samples, n_features), float32 or float64

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import dkmeans
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.save(f"{folder}/X.npy", np.arange(12.0).reshape(6, 2))
    ...     X = dkmeans.open_array(f"{folder}/X.npy")
    ...     (X.shape, X.dtype.name, float(X.sum().compute()))
    ((6, 2), 'float64', 66.0)
    """
    return as_chunked(path, "X", columns, storage_options, sep, header, non_numeric)[0]


def row_blocks(X: Any, rows: int, scatter: bool = False) -> da.Array:
    """numpy (or CSR) rows as a dask array of ``rows``-row blocks: views of X in the
    graph (dask's ``from_array`` copies a numpy array whole, then hashes it
    for a name: 0.4 s per 256 MB), or with ``scatter`` sent to the cluster's
    workers once, as futures."""
    from dask.highlevelgraph import HighLevelGraph

    starts = range(0, X.shape[0], rows)
    # random keys, as for every pass (runner.run_pass): the same rows scattered
    # again while the cluster still releases their last copy would otherwise
    # reuse its keys, and distributed cancels such tasks ("lost dependencies");
    # and X is only read, never changed, during the fit that made them
    name = f"dkmeans-{'scattered' if scatter else 'rows'}-{uuid.uuid4().hex}"
    # each block under its own key in the array, as a persisted array's are,
    # so a pass's task depends on the data itself and runs where it is
    dsk = {(name, i, 0): X[s : s + rows] for i, s in enumerate(starts)}
    if scatter:
        dsk = active_client().scatter(dsk)
    chunks = (tuple(min(rows, X.shape[0] - s) for s in starts), (X.shape[1],))
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name,
                    chunks, meta=X[:0])


def as_dataset(X: Any, sample_weight: Any = None, storage_options: dict | None = None,
               table: dict | None = None) -> Dataset:
    """Validate ``X`` and ``sample_weight`` and wrap them as a :class:`Dataset`.

    On a ``distributed`` cluster with no worker yet, waits for one first (a
    fit's first computation would otherwise wait forever).
    """
    client = active_client()
    if client is not None:
        wait_for_workers(client)
    if client is None and not (isinstance(X, (str, os.PathLike, Location)) or _lazy(X)
                               or is_sparse(X)):
        local = as_block(X)
        if local.nbytes <= LOCAL_MAX_BYTES:
            return _local_dataset(local, sample_weight)
    arr, source = as_chunked(X, storage_options=storage_options, **(table or {}))
    return Dataset(arr, as_weights(sample_weight, arr), source, persisted=is_sparse(X))


def _local_dataset(local: np.ndarray, sample_weight: Any) -> Dataset:
    """Small numpy data whose passes all run on ``local`` itself."""
    w = as_block_weights(sample_weight, len(local))
    # the dask arrays only describe the rows (shape, dtype) as one block
    arr = row_blocks(local, max(len(local), 1))
    weights = None if w is None else da.Array({(f"{arr.name}-w", 0): w}, f"{arr.name}-w",
                                              ((len(w),),), meta=w[:0])
    return Dataset(arr, weights, "numpy", persisted=True, local=local, local_weights=w)
