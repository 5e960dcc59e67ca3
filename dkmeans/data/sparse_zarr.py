"""Sparse matrices in Zarr: AnnData's CSR layout, read as CSR blocks.

Zarr has no sparse array. A CSR matrix is stored as a group of three 1-D
arrays, ``data`` (the values), ``indices`` (their columns) and ``indptr``
(where each row starts, n + 1 of them), with the attributes
``encoding-type: csr_matrix`` and ``shape: [n, d]``: the layout AnnData
writes, so its ``.zarr`` stores' ``X`` (and ``layers``) open here too.
:func:`save_sparse_zarr` writes it; a path to such a group is input like a
dense Zarr array, streamed block by block: each task reads its rows' slice
of ``indptr``, then of ``data`` and ``indices``.
"""

from __future__ import annotations

import itertools
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from dkmeans.data.storage import Location, locate
from dkmeans.data.validation import as_sparse_block, float_dtype
from dkmeans.errors import InvalidInputError

ENCODING = {"encoding-type": "csr_matrix", "encoding-version": "0.1.0"}

#: Non-zeros per block read (values and column indices: ~24 MB of float64).
BLOCK_NONZEROS = 1 << 21
#: Non-zeros per Zarr chunk written by :func:`save_sparse_zarr`.
CHUNK_NONZEROS = 1 << 20


def is_sparse_group(loc: Location) -> bool:
    """Whether ``loc`` holds a Zarr group in the CSR layout."""
    import zarr

    try:
        group = zarr.open_group(store=loc.zarr_store(read_only=True), mode="r")
    except Exception:  # not a group (an array, nothing): not ours to judge here
        return False
    return group.attrs.get("encoding-type") == ENCODING["encoding-type"]


def _read_rows(loc: Location, start: int, stop: int, n_features: int, dtype: np.dtype,
               version: str) -> sp.csr_matrix:
    """Rows ``start:stop`` as CSR; ``version`` only keys the task."""
    import zarr

    group = zarr.open_group(store=loc.zarr_store(read_only=True), mode="r")
    indptr = np.asarray(group["indptr"][start : stop + 1], dtype=np.int64)
    lo, hi = int(indptr[0]), int(indptr[-1])
    data = np.asarray(group["data"][lo:hi], dtype=dtype)
    indices = np.asarray(group["indices"][lo:hi])
    return sp.csr_matrix((data, indices, indptr - lo), shape=(stop - start, n_features))


def open_sparse_zarr(loc: Location) -> da.Array:
    """The CSR group at ``loc`` as a dask array of CSR blocks of about
    :data:`BLOCK_NONZEROS` non-zeros, each task reading its own rows.

    Raises
    ------
    InvalidInputError
        A group whose arrays do not make a CSR matrix of its shape (named).
    """
    import zarr

    group = zarr.open_group(store=loc.zarr_store(read_only=True), mode="r")
    n, d = (int(v) for v in group.attrs["shape"])
    indptr = np.asarray(group["indptr"][:], dtype=np.int64)
    nnz = int(group["data"].shape[0])
    if (len(indptr) != n + 1 or indptr[0] != 0 or indptr[-1] != nnz
            or group["indices"].shape[0] != nnz or (np.diff(indptr) < 0).any()):
        raise InvalidInputError(
            f"{loc.url!r} is not a CSR matrix of shape ({n}, {d}): indptr has "
            f"{len(indptr)} entries from {indptr[0]} to {indptr[-1]}, data {nnz} values, "
            f"indices {group['indices'].shape[0]}.")
    dtype = float_dtype(np.dtype(group["data"].dtype), repr(loc.url))
    # rows cut where the running non-zeros cross multiples of BLOCK_NONZEROS
    cuts = np.searchsorted(indptr, np.arange(BLOCK_NONZEROS, nnz, BLOCK_NONZEROS))
    bounds = np.unique(np.r_[0, cuts, n])
    bounds = bounds[(bounds >= 0) & (bounds <= n)]
    # a rewritten group has other row starts, or another layout: other keys
    version = tokenize(indptr, nnz, str(group["data"].dtype), dict(group.attrs))
    name = "dkmeans-csr-" + tokenize(loc, version, bounds)
    dsk = {(name, i, 0): (_read_rows, loc, int(a), int(b), d, dtype, version)
           for i, (a, b) in enumerate(itertools.pairwise(bounds))}
    chunks = (tuple(int(b - a) for a, b in itertools.pairwise(bounds)) or (0,),
              (d,))
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name, chunks,
                    meta=sp.csr_matrix((0, d), dtype=dtype))


def save_sparse_zarr(X: Any, path: Any, storage_options: dict | None = None) -> Location:
    """Write a sparse matrix as a Zarr group in the CSR layout that dkmeans
    (and AnnData) reads, for fits that stream it from storage.

    Parameters
    ----------
    X : scipy.sparse matrix, or dask array of scipy.sparse blocks
        A dask array is written block by block, each computed in turn (one
        block in this process's memory at a time).
    path : str, os.PathLike or fsspec URL
        Where the group goes; nothing may be there yet.
    storage_options : dict, optional

    Returns
    -------
    Location
        Where it was written.

    Raises
    ------
    InvalidInputError
        Something is already at ``path`` (it is never replaced).
    """
    import zarr

    loc = locate(path, storage_options)
    if loc.exists():
        raise InvalidInputError(f"{loc.url!r} already exists; dkmeans never replaces data. "
                                "Remove it or choose another path.")
    blocks = ([X.blocks[i, 0] for i in range(X.numblocks[0])] if isinstance(X, da.Array)
              else [X])
    first = as_sparse_block(blocks[0].compute() if isinstance(X, da.Array) else X)
    group = zarr.open_group(store=loc.zarr_store(), mode="w-")
    arrays = {name: group.create_array(name, shape=(0,), dtype=dtype, chunks=(CHUNK_NONZEROS,))
              for name, dtype in (("data", first.dtype), ("indices", np.int64))}
    indptr, total = [np.zeros(1, dtype=np.int64)], 0
    for i, block in enumerate(blocks):
        x = first if i == 0 else as_sparse_block(block.compute())
        for name, values in (("data", x.data), ("indices", x.indices)):
            arrays[name].resize((total + x.nnz,))
            arrays[name][total : total + x.nnz] = values
        indptr.append(x.indptr[1:].astype(np.int64) + total)
        total += x.nnz
    group.create_array("indptr", data=np.concatenate(indptr))
    # the layout's attributes last: a write cut short leaves a group that
    # is not read as a matrix (is_sparse_group), never a truncated one
    group.attrs.update({**ENCODING, "shape": [int(X.shape[0]), int(X.shape[1])]})
    return loc
