"""Labels written back as a table: one row per input row, by the workers,
whole or not at all, and never over anything that is not dkmeans' own.

The format follows the target's suffix (:func:`table_format`): ``.csv`` and
``.tsv`` are one text file, ``.parquet`` a Parquet dataset (a folder of part
files, as dask and Spark write them). Every row holds ``row`` (the input
row's number from 0), the input's key columns if asked for, ``label``, and
``distance`` (to the nearest center) if asked for.

Every block's part is written in parallel into a hidden staging folder
``.NAME.tmp-<writer>`` beside the target, under the target's lease
(:mod:`dkmeans.data.leases`). A text table's parts are then joined into one file
by a worker (the client never holds the rows) and moved into place; a
Parquet folder gets a marker file ``_dkmeans_labels.json`` (readers skip
names starting with ``_``) and is swapped in as a Zarr labels array is
(:mod:`dkmeans.data.outputs`). The target must be absent, or labels dkmeans
wrote (a text table whose header starts ``row`` and names ``label``; a
Parquet folder with the marker and part files only) and ``overwrite``
asked for; never the input, inside it or around it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np

from dkmeans.data.leases import lease
from dkmeans.data.outputs import check_not_input, remove_leftovers, rename_into_place
from dkmeans.data.storage import Location
from dkmeans.errors import InvalidParameterError, OutputExistsError

#: Table suffixes and their field separators (None: Parquet)
TABLE_FORMATS = {".csv": ",", ".tsv": "\t", ".parquet": None}

#: The marker file of a Parquet labels folder
MARKER = "_dkmeans_labels.json"


def table_format(loc: Location) -> str | None:
    """The table suffix of ``loc`` (``.csv``, ``.tsv``, ``.parquet``), None
    for ``.zarr``; any other suffix is an error naming the choices."""
    suffix = os.path.splitext(loc.name)[1].lower()
    if suffix in TABLE_FORMATS:
        return suffix
    if suffix == ".zarr":
        return None
    raise InvalidParameterError(
        f"Labels go to a Zarr array (.zarr) or a table (.csv, .tsv, .parquet), chosen by "
        f"the target's suffix; {loc.url!r} has {suffix or 'none'}.")


def _ours(loc: Location, fmt: str) -> bool:
    """Whether ``loc`` holds a labels table dkmeans wrote."""
    if fmt == ".parquet":
        if not loc.fs.isdir(loc.path):
            return False
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in loc.fs.ls(loc.path, detail=False)}
        return MARKER in names and all(n == MARKER or (n.startswith("part-") and
                                                       n.endswith(".parquet")) for n in names)
    if loc.fs.isdir(loc.path):
        return False
    with loc.fs.open(loc.path, "rb") as f:
        first = f.readline(4096).decode("utf-8", "replace").rstrip("\r\n")
    fields = first.split(TABLE_FORMATS[fmt])
    return fields[:1] == ["row"] and "label" in fields


def table_target(loc: Location, fmt: str, inputs: Sequence[Location] = (),
                 overwrite: bool = False) -> None:
    """Check that a labels table may be written at ``loc``.

    Raises
    ------
    OutputExistsError
        The target is the input (or inside it, or holds it), holds anything
        but a labels table dkmeans wrote, or holds one and ``overwrite`` is
        False.
    """
    check_not_input(loc, inputs)
    loc.fs.invalidate_cache()
    if not loc.exists():
        return
    if not _ours(loc, fmt):
        raise OutputExistsError(
            f"{loc.url!r} holds something that is not a labels table dkmeans wrote; dkmeans "
            "writes labels only where nothing is, or over labels it wrote. Nothing was "
            "changed; choose another path.")
    if not overwrite:
        raise OutputExistsError(f"{loc.url!r} already holds labels; pass overwrite=True (on "
                                "the command line --force) to replace them.")


def block_frame(start: int, labels: np.ndarray, distance: np.ndarray | None,
                keys: Any) -> Any:
    """One block's rows of the table: ``row``, the keys, ``label``, ``distance``."""
    import pandas as pd

    columns = {"row": np.arange(start, start + len(labels), dtype=np.int64)}
    if keys is not None:
        if len(keys) != len(labels):
            raise InvalidParameterError("The key columns were read in other blocks than the "
                                        "features; write the labels without keys.")
        columns.update({str(c): keys[c].to_numpy() for c in keys.columns})
    columns["label"] = labels
    if distance is not None:
        columns["distance"] = distance
    return pd.DataFrame(columns)


def _write_part(stage: Location, i: int, frame: Any, fmt: str) -> int:
    """Write one block's rows into the staging folder; their number."""
    path = stage.child(f"part-{i:06d}{fmt}").path
    with stage.fs.open(path, "wb") as f:
        if fmt == ".parquet":
            frame.to_parquet(f, index=False)
        else:
            f.write(frame.to_csv(sep=TABLE_FORMATS[fmt], index=False,
                                 header=i == 0).encode())
    return len(frame)


def _join_parts(stage: Location, n: int, fmt: str, out: Location) -> None:
    """One text file from the staging folder's parts, in order (on a worker)."""
    with out.fs.open(out.path, "wb") as f:
        for i in range(n):
            with stage.fs.open(stage.child(f"part-{i:06d}{fmt}").path, "rb") as part:
                shutil.copyfileobj(part, f, 2**20)


def write_labels_table(frames: Sequence[Any], loc: Location, fmt: str,
                       inputs: Sequence[Location] = (), overwrite: bool = False) -> Location:
    """Write lazy per-block frames (``dask.delayed`` of :func:`block_frame`)
    as a labels table at ``loc`` (see the module's notes).

    Parameters
    ----------
    frames : sequence of dask Delayed
        One pandas DataFrame per block, in row order.
    loc : Location
    fmt : {".csv", ".tsv", ".parquet"}
    inputs : sequence of Location
        Where the data lives (the target may be none of them).
    overwrite : bool
        Replace a labels table dkmeans wrote at ``loc``.
    """
    from dask.delayed import delayed

    from dkmeans.data.storage import check_output_shared
    from dkmeans.runner import compute_all

    check_output_shared(loc)
    with lease(loc, "a labels table") as held:
        table_target(loc, fmt, inputs, overwrite)
        remove_leftovers(loc)
        stage = loc.sibling(f".{loc.name}.tmp-{held.owner}")
        try:
            stage.fs.makedirs(stage.path, exist_ok=True)
            compute_all([delayed(_write_part, pure=False)(stage, i, frame, fmt)
                         for i, frame in enumerate(frames)])
            held.check()
            if fmt == ".parquet":
                stage.child(MARKER).fs.pipe_file(stage.child(MARKER).path, json.dumps(
                    {"dkmeans": {"kind": "labels", "writer": held.owner}}).encode())
                _swap_folder(stage, loc)
            else:
                joined = loc.sibling(f".{loc.name}.tmp-{held.owner}{fmt}")
                compute_all([delayed(_join_parts, pure=False)(stage, len(frames), fmt,
                                                              joined)])
                held.check()
                _move_file(joined, loc)
        finally:
            for left in (stage, loc.sibling(f".{loc.name}.tmp-{held.owner}{fmt}")):
                left.fs.invalidate_cache()
                if left.fs.exists(left.path):
                    left.fs.rm(left.path, recursive=True)
    return loc


def _move_file(src: Location, dst: Location) -> None:
    """``src`` to ``dst`` in one step: a rename locally, a server-side copy
    (one object replaced whole) on an object store."""
    if dst.is_local:
        os.replace(src.path, dst.path)
    else:
        dst.fs.copy(src.path, dst.path)


def _swap_folder(stage: Location, loc: Location) -> None:
    """The staging folder in place of ``loc``: two renames locally; on an
    object store the old marker goes first (the folder stops being a whole
    labels table), the parts are replaced, and the new marker comes last."""
    fs = loc.fs
    fs.invalidate_cache()
    if loc.is_local:
        rename_into_place(stage, loc)
        return
    if loc.exists():
        fs.rm(loc.path, recursive=True)
    parts = [p for p in fs.ls(stage.path, detail=False) if not p.endswith(MARKER)]
    fs.copy(parts, [loc.child(p.rsplit("/", 1)[-1]).path for p in parts])
    fs.copy(stage.child(MARKER).path, loc.child(MARKER).path)
