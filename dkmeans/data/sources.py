"""Inputs given as a path or URL: Zarr arrays, ``.npy`` files, tables.

Every path goes through :func:`dkmeans.data.storage.locate`, so a local path, a
``file://`` URL and an object store URL (``s3://``, ``gs://``, ...) are
read the same way; the storage options travel with the tasks. On a
``distributed`` cluster a path the workers cannot see is refused before any
work starts (:func:`dkmeans.data.storage.check_input_shared`).
"""

from __future__ import annotations

import math
from typing import Any

import dask.array as da
import numpy as np

from dkmeans.data.sparse_zarr import is_sparse_group, open_sparse_zarr
from dkmeans.data.storage import (
    Location,
    check_input_shared,
    locate,
    read_npy_header,
    read_npy_rows,
)
from dkmeans.errors import (
    InputNotFoundError,
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
)

#: Suffixes read as tables, with the separator each implies by default.
TABLE_SUFFIXES = {".parquet": None, ".csv": ",", ".tsv": "\t", ".txt": "\t"}


def open_path(path: Any, storage_options: dict | None = None,
              columns: list | None = None, sep: str | None = None,
              header: bool = True, non_numeric: str = "error") -> Any:
    """A path or URL as a zarr.Array or a row-chunked dask array.

    Parameters
    ----------
    path : str, os.PathLike or Location
        A Zarr array, a Zarr group holding a sparse matrix
        (:mod:`~dkmeans.data.sparse_zarr`), a ``.npy`` file, or a table
        (Parquet, CSV, TSV; a file or a folder of files).
    storage_options : dict, optional
    columns, sep, header, non_numeric
        For tables: see :func:`open_table`.
    """
    loc = locate(path, storage_options)
    if loc.path.endswith(".npy"):
        arr = open_npy(loc)
    elif table_files(loc) is not None:
        arr = open_table(loc, columns, sep=sep, header=header, non_numeric=non_numeric)
    elif loc.fs.isfile(loc.path):  # a Zarr array is a folder
        raise InputTypeError(
            f"{loc.url!r} is a file dkmeans cannot tell the kind of by its name: it reads "
            "Zarr arrays (folders), .npy files and tables named .parquet, .csv, .tsv or "
            ".txt. Rename it (a CSV: name.csv), or open it yourself and pass the array.")
    elif is_sparse_group(loc):
        arr = open_sparse_zarr(loc)
    else:
        arr = open_zarr(loc)
    check_input_shared(loc)
    return arr


def open_zarr(loc: Location) -> Any:
    """The Zarr array at ``loc``, opened read-only."""
    import zarr

    try:
        return zarr.open_array(store=loc.zarr_store(read_only=True), mode="r")
    except FileNotFoundError as err:
        raise InputNotFoundError(f"No Zarr array at {loc.url!r}: {err}") from err
    except OSError:  # the store failed, after its retries: not a missing array
        raise
    except Exception as err:  # zarr raises several types for "not an array"
        if not loc.exists():
            raise InputNotFoundError(f"No Zarr array at {loc.url!r}: nothing is there."
                                     ) from err
        raise InvalidInputError(f"Could not open {loc.url!r} as a Zarr array: {err}") from err


#: Target size of a block read from a ``.npy`` file.
NPY_BLOCK_BYTES = 16 * 2**20


def _npy_block(loc: Location, offset: int, dtype: np.dtype, n_features: int,
               version: str, block_info: dict | None = None) -> np.ndarray:
    """Rows of a ``.npy`` file; ``version`` (its modification time) is unused
    here but part of the task's key, so a rewritten file gets new keys."""
    (start, stop), _ = block_info[None]["array-location"]
    return read_npy_rows(loc, offset, dtype, n_features, start, stop)


def open_npy(loc: Location) -> da.Array:
    """A ``.npy`` file as a row-chunked dask array, each task reading its
    rows by a ranged read (the graph holds the location, not the data)."""
    if not loc.fs.isfile(loc.path):
        raise InputNotFoundError(f"No .npy file at {loc.url!r}.")
    shape, dtype, offset = read_npy_header(loc)
    if len(shape) != 2:
        raise InvalidInputError(f"{loc.url!r} holds an array of shape {shape}; expected "
                                "(n_samples, n_features).")
    info = loc.fs.info(loc.path)
    expected = offset + math.prod(shape) * dtype.itemsize
    if info.get("size") != expected:
        raise InvalidInputError(
            f"{loc.url!r}: its header says shape {shape} {dtype} ({expected:,} bytes with "
            f"the header) but the file has {info.get('size'):,} bytes: truncated, still "
            "being written, or not a .npy file.")
    rows = max(1, min(shape[0], NPY_BLOCK_BYTES // max(1, shape[1] * dtype.itemsize)))
    version = str(info.get("mtime") or info.get("LastModified") or info.get("ETag"))
    # keys: dask tokenizes every argument (the location with its storage
    # options, the layout, the version)
    return da.map_blocks(_npy_block, loc, offset, dtype, shape[1], version, dtype=dtype,
                         token="dkmeans-npy",
                         chunks=(da.core.normalize_chunks(rows, (shape[0],))[0], (shape[1],)))


def _suffix(path: str) -> str | None:
    return next((s for s in TABLE_SUFFIXES if path.endswith(s)), None)


def table_files(loc: Location) -> tuple[str, list[str]] | None:
    """(suffix, files) when ``loc`` is a table file or a folder of them."""
    if loc.fs.isdir(loc.path):
        names = sorted(loc.fs.ls(loc.path, detail=False))
        for suffix in TABLE_SUFFIXES:
            files = [n for n in names if n.endswith(suffix)]
            if files:
                return suffix, files
        return None
    suffix = _suffix(loc.path)
    return None if suffix is None else (suffix, [loc.path])


def _pick(df: Any, columns: list | None, where: str) -> Any:
    """Columns by name, or by position (integers, or digit strings on a table
    whose columns are not named so)."""
    if not columns:
        return df
    names = list(df.columns)
    picked, missing = [], []
    for c in columns:
        if c in names:
            picked.append(c)
        elif isinstance(c, (int, np.integer)) or (isinstance(c, str) and c.isdigit()):
            i = int(c)
            if not 0 <= i < len(names):
                raise InvalidInputError(f"Column position {i} is out of range for {where}: "
                                        f"it has {len(names)} columns.")
            picked.append(names[i])
        else:
            missing.append(c)
    if missing:  # every one, so a typo is fixed in one go
        raise InvalidInputError(f"Columns {missing} are not in {where}; it has {names}.")
    return df[picked]


def open_table(loc: Location, columns: list | None = None, sep: str | None = None,
               header: bool = True, non_numeric: str = "error") -> da.Array:
    """Parquet, CSV or TSV (a file or a folder of files) as a row-chunked float array.

    Read through ``dask.dataframe`` (pandas and pyarrow: ``pip install
    dkmeans[dataframe]``), one partition per block.

    Parameters
    ----------
    loc : Location
    columns : list of str or int, optional
        The features, in order: names, or positions counted from 0.
    sep : str, optional
        Field separator of text tables; by default ``,`` for ``.csv`` and a
        tab for ``.tsv`` and ``.txt``.
    header : bool
        Whether the first line of a text table names the columns; without,
        columns are picked by position.
    non_numeric : {"error", "missing"}
        A value of a chosen column that is not a number (``"12,5"``): an
        error naming its column, row and value, or missing (NaN, for
        ``missing="impute"``). ``n/a``, ``NA`` and empty fields are missing
        either way.
    """
    if non_numeric not in ("error", "missing"):
        raise InvalidParameterError(
            f"non_numeric must be 'error' or 'missing'; got {non_numeric!r}.")
    read = _table_reader(loc, columns, sep, header)
    df = read()
    if non_numeric == "error" and _not_numeric(df):
        raise not_numbers(read(dtype=str), _not_numeric(df), loc.url, columns is not None)
    try:
        arr = _as_array(df, non_numeric)
    except ValueError as err:  # text past the first rows, which dask guessed types from
        if "dtype" not in str(err):
            raise
        if non_numeric == "missing":
            arr = _as_array(read(dtype=str), non_numeric)
        else:
            raise not_numbers(read(dtype=str), list(df.columns), loc.url,
                              columns is not None) from None
    if any(math.isnan(c) for c in arr.chunks[0]):
        raise InvalidInputError(f"Could not count the rows of {loc.url!r}.")
    return arr


def _table_reader(loc: Location, columns: list | None, sep: str | None,
                  header: bool) -> Any:
    """A function reading the table at ``loc`` as a dask DataFrame of the
    chosen columns (keyword arguments go to ``read_csv``)."""
    found = table_files(loc)
    if found is None:
        raise InputNotFoundError(f"No Parquet, CSV or TSV files at {loc.url!r}.")
    suffix, files = found
    if not all(loc.fs.exists(f) for f in files):
        raise InputNotFoundError(f"No such table file: {loc.url!r}.")
    try:
        import dask.dataframe as dd
    except ImportError as err:
        raise InputTypeError("Reading Parquet or CSV needs pandas and pyarrow: pip install "
                             "'dkmeans[dataframe]'.") from err
    urls = [loc.fs.unstrip_protocol(f) if not loc.is_local else f for f in files]

    def read(**kwargs: Any) -> Any:
        options = loc.options or None
        if suffix == ".parquet":
            return _pick(dd.read_parquet(urls, storage_options=options), columns,
                         repr(loc.url))
        df = dd.read_csv(urls, sep=sep or TABLE_SUFFIXES[suffix],
                         header=0 if header else None, storage_options=options, **kwargs)
        if not header:
            df.columns = [str(i) for i in range(len(df.columns))]
        return _pick(df, columns, repr(loc.url))

    return read


def table_columns(path: Any, storage_options: dict | None = None,
                  columns: list | None = None, sep: str | None = None,
                  header: bool = True) -> list[str] | None:
    """The names of the columns a read of the table at ``path`` picks (its
    features' names, as ``feature_names_in_`` records them); None when
    ``path`` is not a table, or its columns have no names (no header).

    Parameters
    ----------
    path : str, os.PathLike or Location
    storage_options : dict, optional
    columns, sep, header
        As for :func:`open_table`.
    """
    loc = locate(path, storage_options)
    if not header or loc.path.endswith(".npy") or table_files(loc) is None:
        return None
    return [str(c) for c in _table_reader(loc, columns, sep, header)().columns]


def _as_array(df: Any, non_numeric: str) -> da.Array:
    """The table's columns as a float array, its row chunks counted."""
    if non_numeric == "missing":
        df = df.map_partitions(_numbers, meta={c: np.float64 for c in df.columns})
    # chunk sizes from the array itself: to_dask_array(lengths=True) can
    # disagree with dask-expr's merged partitions (seen with Parquet)
    return df.to_dask_array().compute_chunk_sizes()


def _not_numeric(df: Any) -> list:
    """The columns whose type is not a number (nor a boolean)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return [c for c, t in df.dtypes.items() if not (is_numeric_dtype(t) or is_bool_dtype(t))]


def _numbers(part: Any) -> Any:
    """One partition as float64 columns, what is not a number NaN."""
    import pandas as pd

    return part.apply(lambda col: pd.to_numeric(col, errors="coerce")).astype(np.float64)


def _first_not_number(part: Any) -> tuple[int, dict]:
    """A partition's length, and per column its first value that is not a
    number (position in the partition, value); missing values are not."""
    import pandas as pd

    found = {}
    for name in part.columns:
        col = part[name]
        bad = col.notna() & pd.to_numeric(col, errors="coerce").isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            found[name] = (i, str(col.iloc[i]))
    return len(part), found


def not_numbers(text: Any, columns: list, url: str, chosen: bool) -> InputTypeError:
    """The error for a table whose chosen columns hold values that are not
    numbers: the first such value's column, row (from 0, after the header)
    and text, and what to do.

    Parameters
    ----------
    text : dask.dataframe.DataFrame
        The table read as text (the chosen columns).
    columns : list
        The columns to look in.
    url : str
    chosen : bool
        Whether the user named the columns (else all were taken).
    """
    import dask

    parts = dask.compute(*[dask.delayed(_first_not_number)(p)
                           for p in text[columns].to_delayed()])
    start, first = 0, {}
    for n, found in parts:
        for name, (i, value) in found.items():
            first.setdefault(name, (start + i, value))
        start += n
    if not first:
        return InputTypeError(f"Columns {columns} of {url!r} could not be read as numbers.")
    name, (row, value) = min(first.items(), key=lambda item: item[1][0])
    others = sorted(set(first) - {name})
    also = f" (and columns {others})" if others else ""
    pick = "" if chosen else (" If it is not a feature, choose the feature columns with "
                              "--columns / columns=[...] (names, or positions from 0).")
    return InputTypeError(
        f"Column {name!r} of {url!r} holds {value!r} at row {row}, which is not a number"
        f"{also}. Fix the file, or, if such values mean missing, read them as missing and "
        f"impute them: --missing impute on the command line, open_array(..., "
        f"non_numeric=\"missing\") with missing=\"impute\" in Python.{pick}")


def table_keys(path: Any, keys: list, storage_options: dict | None = None,
               sep: str | None = None, header: bool = True) -> Any:
    """Key columns of a table (any type: ids, names), as a dask DataFrame
    read in the same partitions as its features (:func:`open_table`)."""
    loc = locate(path, storage_options)
    if table_files(loc) is None:
        raise InvalidParameterError(f"Key columns come from a table (Parquet, CSV, TSV); "
                                    f"{loc.url!r} is not one.")
    return _table_reader(loc, keys, sep, header)()
