"""Labels written where the data lives, for every estimator: a Zarr array
(:meth:`LabelOutputs.predict_to_zarr`, written by :mod:`dkmeans.data.outputs`)
or a table (:meth:`LabelOutputs.predict_to_table`, :mod:`dkmeans.data.labels_table`)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dkmeans.data.labels_table import block_frame, table_format, write_labels_table
from dkmeans.data.outputs import input_locations, write_labels
from dkmeans.data.storage import Location, locate
from dkmeans.errors import InvalidParameterError


class LabelOutputs:
    """Labels to Zarr or a table, for an estimator with a method
    ``_rows_out(X, storage_options, with_distance, table)`` giving lazy
    labels of X (and distances to the nearest center, or None)."""

    def predict_to_zarr(self, X: Any, path: Any, storage_options: dict | None = None,
                        overwrite: bool = False) -> Location:
        """Write each row's label (nearest center, most probable component)
        to a Zarr array.

        For data larger than memory: the labels are computed and written
        chunk by chunk on the workers (one Zarr chunk per block of X), never
        gathered, into a hidden staging array beside ``path``, swapped in
        whole once every chunk is there (:mod:`dkmeans.data.outputs`).

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, \
of shape (n_samples, n_features)
        path : str, path-like or fsspec URL (``s3://bucket/labels.zarr``)
            Where the Zarr array goes: nothing may be there but labels
            dkmeans wrote, and never X itself. A relative path is made
            absolute here, on the client. On a cluster whose workers cannot
            see it, an error is raised before anything is computed.
        storage_options : dict, optional
            Passed to fsspec for ``path`` (and for X, if X is a URL).
        overwrite : bool, default False
            Replace labels dkmeans wrote at ``path`` before.

        Returns
        -------
        Location
            Where the array was written (``str()`` gives its path or URL).

        Raises
        ------
        OutputExistsError
            ``path`` holds anything else, or labels and ``overwrite`` is False.
        """
        labels, _ = self._rows_out(X, storage_options, False, {})
        return write_labels(labels.astype(np.int32), locate(path, storage_options),
                            input_locations(X, storage_options), overwrite)


    def predict_to_table(self, X: Any, path: Any, *, keys: list | None = None,
                         with_distance: bool = False, storage_options: dict | None = None,
                         overwrite: bool = False, columns: list | None = None,
                         sep: str | None = None, header: bool = True) -> Location:
        """Write each row's label as a table: one row per row of X.

        Computed and written block by block on the workers (never gathered),
        into a staging folder swapped in whole (:mod:`dkmeans.data.labels_table`).

        Parameters
        ----------
        X : array-like, dask array, zarr.Array, or a path or URL, of shape \
(n_samples, n_features)
        path : str, path-like or fsspec URL
            ``.csv``, ``.tsv`` (one text file) or ``.parquet`` (a Parquet
            dataset folder): absent, or labels dkmeans wrote, never X itself.
        keys : list of str, optional
            Columns of the table X copied beside each label (ids, names);
            every row also has ``row``, its number from 0.
        with_distance : bool, default=False
            Add ``distance``: to the nearest center, in the space the rows
            are compared in (standardized with ``scale=True``).
        storage_options : dict, optional
        overwrite : bool, default=False
            Replace a labels table dkmeans wrote at ``path``.
        columns, sep, header
            For a table X: as :meth:`predict`.

        Returns
        -------
        Location
        """
        import dask

        from dkmeans.data.sources import table_keys

        loc = locate(path, storage_options)
        fmt = table_format(loc)
        if fmt is None:
            raise InvalidParameterError(f"{loc.url!r} is a Zarr path: predict_to_zarr "
                                        "writes labels there.")
        table = {"columns": columns, "sep": sep, "header": header}
        labels, distance = self._rows_out(X, storage_options, with_distance, table)
        key_parts = [None] * labels.numblocks[0]
        if keys and not isinstance(X, (str, os.PathLike, Location)):
            raise InvalidParameterError("keys= copies columns of a table file X; X here is "
                                        "an array (every row has its number, 'row').")
        if keys:
            key_parts = table_keys(X, list(keys), storage_options, sep, header).to_delayed()
            if len(key_parts) != labels.numblocks[0]:
                raise InvalidParameterError("The key columns were read in other blocks than "
                                            "the features; write the labels without keys.")
        starts = np.concatenate([[0], np.cumsum(labels.chunks[0])[:-1]])
        dist = distance.to_delayed() if distance is not None else [None] * len(starts)
        frames = [dask.delayed(block_frame)(int(s), lab, d, k) for s, lab, d, k in
                  zip(starts, labels.to_delayed(), dist, key_parts, strict=True)]
        return write_labels_table(frames, loc, fmt, input_locations(X, storage_options),
                                  overwrite)
