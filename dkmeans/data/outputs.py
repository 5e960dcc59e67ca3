"""Labels written to Zarr by the workers: whole or not at all, and never over
anything that is not dkmeans' own.

Before any work, the target is checked (:func:`labels_target`): it must be
absent, or a labels array dkmeans wrote (its ``zarr.json`` carries the
attribute ``{"dkmeans": {"kind": "labels", ...}}`` and the folder holds
nothing else) and ``overwrite`` asked for; never the input itself, inside
it, or around it. Anything else is refused with nothing touched.

The write (:func:`write_zarr_atomic`) holds the target's lease
(:mod:`dkmeans.data.leases`), so two writers never interleave: the chunks go to a
hidden staging array ``.NAME.tmp-<writer>``; once every chunk is checked
present, the array is swapped in. Locally that is two renames (the old
array aside to ``.NAME.old-*``, the new one in); on an object store the old
``zarr.json`` is deleted, the chunks copied server-side, every other object
under the target removed, and the new ``zarr.json``, which makes the array
visible, written last. Either way the target then holds exactly the new
array, and the writer reads back that it is its own. A reader sees the old
array or the new one, never a mixture; a write that fails or is killed
before the swap leaves the old array whole. A kill inside the swap leaves
no array at the target (an error for readers, never wrong data); the next
write removes what it left (``.NAME.tmp-*``, ``.NAME.old-*``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dkmeans.data.leases import lease
from dkmeans.data.storage import Location, check_output_shared, locate, protocols
from dkmeans.errors import InvalidInputError, OutputExistsError, WriteConflictError

#: The attribute that marks a Zarr array as labels dkmeans wrote.
MARK = "dkmeans"


def input_locations(X: Any, storage_options: dict | None = None) -> list[Location]:
    """Where an input lives, when it is a path or a Zarr array on a store."""
    if isinstance(X, (str, os.PathLike, Location)):
        return [locate(X, storage_options)]
    store = getattr(X, "store", None)
    root = getattr(store, "root", None)
    if root is not None:  # zarr's LocalStore
        return [locate(os.fspath(root))]
    fs, path = getattr(store, "fs", None), getattr(store, "path", None)
    if fs is not None and path is not None:  # zarr's FsspecStore
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

        sync = fs.sync_fs if isinstance(fs, AsyncFileSystemWrapper) else fs
        return [Location(sync, str(path).rstrip("/"))]
    return []


def _overlaps(a: Location, b: Location) -> bool:
    if set(protocols(a.fs)) != set(protocols(b.fs)):
        return False
    p, q = a.path.rstrip("/"), b.path.rstrip("/")
    return p == q or p.startswith(q + "/") or q.startswith(p + "/")


def _mark(loc: Location) -> dict | None:
    """The dkmeans attribute of the Zarr array at ``loc``, if it is one."""
    meta = loc.child("zarr.json")
    if not meta.exists():
        return None
    try:
        doc = json.loads(meta.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return None
    mark = (doc.get("attributes") or {}).get(MARK) if isinstance(doc, dict) else None
    return mark if isinstance(mark, dict) and mark.get("kind") == "labels" else None


def check_not_input(loc: Location, inputs: Sequence[Location]) -> None:
    """Raise unless ``loc`` is none of ``inputs``, nor inside one, nor holds one."""
    for src in inputs:
        if _overlaps(loc, src):
            raise OutputExistsError(
                f"The labels' target {loc.url!r} is the input {src.url!r}, or inside it, "
                "or holds it: writing there would destroy the data. Choose another path.")


def labels_target(loc: Location, inputs: Sequence[Location] = (), overwrite: bool = False,
                  ) -> None:
    """Check that labels may be written at ``loc`` (see the module's notes).

    Raises
    ------
    OutputExistsError
        The target is the input (or inside it, or holds it), holds anything
        but a dkmeans labels array, or holds one and ``overwrite`` is False.
    """
    check_not_input(loc, inputs)
    loc.fs.invalidate_cache()
    if not loc.exists():
        return
    what = "a file" if not loc.fs.isdir(loc.path) else None
    if what is None:
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in loc.fs.ls(loc.path, detail=False)}
        if _mark(loc) is None or not names <= {"zarr.json", "c"}:
            what = "something that is not a labels array dkmeans wrote"
    if what is not None:
        raise OutputExistsError(
            f"{loc.url!r} holds {what}; dkmeans writes labels only where nothing is, or "
            "over labels it wrote. Nothing was changed; choose another path.")
    if not overwrite:
        raise OutputExistsError(
            f"{loc.url!r} already holds labels; pass overwrite=True (on the command line "
            "--force) to replace them.")


def _fresh(loc: Location) -> Location:
    """``loc`` with the filesystem's listing cache dropped: the workers and
    zarr wrote through other filesystem objects, which this one's cached
    listings (s3fs keeps them) know nothing of."""
    loc.fs.invalidate_cache()
    return loc


def _remove(loc: Location) -> None:
    if _fresh(loc).fs.exists(loc.path):
        loc.fs.rm(loc.path, recursive=True)


def _leftovers(loc: Location) -> list[str]:
    """Staging and set-aside arrays of earlier writes to ``loc`` that were
    killed (only ever removed under the target's lease)."""
    prefixes = (f".{loc.name}.tmp-", f".{loc.name}.old-")
    _fresh(loc)
    try:
        names = loc.fs.ls(loc.parent.path, detail=False)
    except FileNotFoundError:
        return []
    return [p for p in names if p.rstrip("/").rsplit("/", 1)[-1].startswith(prefixes)]


def remove_leftovers(loc: Location) -> None:
    """Remove what killed writes to ``loc`` left beside it (call under its lease)."""
    for stale in _leftovers(loc):
        loc.fs.rm(stale, recursive=True)


def _files(loc: Location) -> set[str]:
    """Every file under ``loc``, relative to it."""
    if not _fresh(loc).exists():
        return set()
    base = loc.path.rstrip("/") + "/"
    return {p[len(base):] for p in loc.fs.find(loc.path)}


def _chunk_files(loc: Location) -> set[str]:
    return {f[2:] for f in _files(loc) if f.startswith("c/")}


def write_zarr_atomic(loc: Location, create: Callable[[Any, dict], Any],
                      write: Callable[[Any], Sequence[Any]], n_chunks: int,
                      inputs: Sequence[Location] = (), overwrite: bool = False) -> Location:
    """Write a Zarr array chunk by chunk into a staging folder, check every
    chunk is there, then swap it in at ``loc`` (see the module's notes).

    Parameters
    ----------
    loc : Location
        Where the array ends up.
    create : callable
        ``create(store, attributes)`` makes the (empty) array, with those
        attributes, in a zarr store and returns it.
    write : callable
        ``write(array)`` writes every chunk (on the workers) and returns once
        all have finished.
    n_chunks : int
        How many chunk files the array must have; one missing is an error.
    inputs : sequence of Location
        Where the data the labels are computed from lives (never overwritten).
    overwrite : bool
        Replace labels dkmeans wrote at ``loc`` before.
    """
    check_output_shared(loc)
    with lease(loc, "a labels array") as held:
        labels_target(loc, inputs, overwrite)
        remove_leftovers(loc)
        stage = loc.sibling(f".{loc.name}.tmp-{held.owner}")
        try:
            write(create(stage.zarr_store(), {MARK: {"kind": "labels",
                                                     "writer": held.owner}}))
            found = _chunk_files(stage)
            expected = {str(i) for i in range(n_chunks)}
            if found != expected:
                missing = sorted(expected - found, key=int)
                raise InvalidInputError(
                    f"Writing {loc.url!r}: {len(missing)} of {n_chunks} chunks are missing "
                    f"after the write (first: c/{missing[0]}); the workers may be writing "
                    "somewhere else. Nothing was replaced.")
            held.check()
            _swap_in(stage, loc)
        except BaseException:
            _remove(stage)
            raise
        _check_ours(loc, held.owner, n_chunks)
    return loc


def rename_into_place(stage: Location, loc: Location) -> None:
    """A local staging folder in place of ``loc`` by two renames: the old one
    aside to ``.NAME.old-*`` (removed after), the new one in."""
    old = None
    if loc.exists():
        old = loc.sibling(f".{loc.name}.old-{uuid.uuid4().hex}")
        os.rename(loc.path, old.path)
    os.rename(stage.path, loc.path)
    if old is not None:
        _remove(old)


def _swap_in(stage: Location, loc: Location) -> None:
    fs = loc.fs
    if loc.is_local:
        rename_into_place(stage, loc)
        return
    meta = _fresh(loc).child("zarr.json")
    if meta.exists():
        fs.rm_file(meta.path)  # the old array disappears whole before any chunk changes
    new = sorted(_chunk_files(stage))
    src = [stage.child(f"c/{c}").path for c in new]
    dst = [loc.child(f"c/{c}").path for c in new]
    if src:
        fs.copy(src, dst)
    stale = _files(loc) - {f"c/{c}" for c in new}
    if stale:
        fs.rm([loc.child(f).path for f in sorted(stale)])
    fs.copy(stage.child("zarr.json").path, meta.path)  # visible from here on
    _remove(stage)


def _check_ours(loc: Location, owner: str, n_chunks: int) -> None:
    """Raise unless the array at ``loc`` is this writer's, whole."""
    mark = _mark(_fresh(loc))
    if mark is None or mark.get("writer") != owner or \
            _chunk_files(loc) != {str(i) for i in range(n_chunks)}:
        raise WriteConflictError(f"{loc.url!r} is not the array this write made: another "
                                 "writer replaced it. Its result stands; rerun to write "
                                 "these labels.")


def write_labels(labels: Any, loc: Location, inputs: Sequence[Location] = (),
                 overwrite: bool = False) -> Location:
    """Store lazy labels as a Zarr array, chunk by chunk on the workers,
    atomically (:func:`write_zarr_atomic`).

    Parameters
    ----------
    labels : dask.array.Array of shape (n,), int32
    loc : Location
    inputs : sequence of Location
        Where the data lives (the target may be none of them).
    overwrite : bool
        Replace labels dkmeans wrote at ``loc`` before.
    """
    import zarr
    from dask.delayed import delayed

    from dkmeans.runner import compute_all

    sizes = labels.chunks[0]
    if len(set(sizes[:-1])) > 1 or sizes[-1] > sizes[0]:  # Zarr chunks are regular
        labels = labels.rechunk(max(sizes))
        sizes = labels.chunks[0]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def create(store: Any, attributes: dict) -> Any:
        return zarr.create_array(store, shape=labels.shape, chunks=(sizes[0],),
                                 dtype=labels.dtype, fill_value=-1, attributes=attributes,
                                 config={"write_empty_chunks": True})

    def write(z: Any) -> None:
        compute_all([delayed(_write_block, pure=False)(z, int(start), block)
                     for start, block in zip(starts, labels.to_delayed(), strict=True)])

    return write_zarr_atomic(loc, create, write, len(sizes), inputs, overwrite)


def _write_block(z: Any, start: int, block: np.ndarray) -> None:
    z[start : start + len(block)] = block
