"""Where data and results live: local paths and fsspec URLs, written atomically.

Every path dkmeans reads or writes goes through :func:`locate`, which turns a
local path (made absolute on the client, so workers with another working
directory see the same file) or an fsspec URL (``s3://``, ``gs://``,
``abfs://``, ``memory://``, ``file://``, ...) plus ``storage_options`` into a
:class:`Location`: the filesystem object and the path on it. A Location
pickles with its storage options, so the workers that read or write it need
no credentials of their own.

What is atomic, on every filesystem (object stores have no rename):

- One file (:func:`put_atomic`): a local file is written beside its target
  and renamed over it; an object is one PUT, which a reader sees whole or
  not at all.
- A Zarr array written by the workers (:func:`write_zarr_atomic`): the
  chunks go to a hidden sibling ``.NAME.tmp-*``; once every chunk is
  checked present, the array is swapped in. Locally that is two renames
  (the old array aside, the new one in); on an object store the old
  ``zarr.json`` is deleted, the chunks copied server-side, and the new
  ``zarr.json``, which makes the array visible, written last. A reader sees
  the old array or the new one, never a mixture; a write that fails or is
  killed before the swap leaves the old array whole (and a hidden staging
  folder that the next write to the same target removes). A kill inside the
  swap itself leaves no array at the target (an error for readers, never
  wrong data) and the complete new one in the staging folder.

Model directories build on :func:`put_atomic` (see :mod:`dkmeans.modelfile`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dkmeans.errors import InvalidInputError, InvalidParameterError


class NotSharedError(InvalidInputError):
    """A path the workers must read or write is not visible to them."""


@dataclass(frozen=True)
class Location:
    """A path on a filesystem: what every read and write of dkmeans goes through.

    Attributes
    ----------
    fs : fsspec.AbstractFileSystem
    path : str
        The path on ``fs``, without protocol; absolute for local files.
    options : dict
        The storage options ``fs`` was made with (handed to zarr and dask).
    """

    fs: Any
    path: str
    options: dict = field(default_factory=dict, compare=False)

    @property
    def is_local(self) -> bool:
        return "file" in _protocols(self.fs)

    @property
    def url(self) -> str:
        """The path as a user would write it: plain for local files, else a URL."""
        return self.path if self.is_local else self.fs.unstrip_protocol(self.path)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        return Location(self.fs, self.fs._parent(self.path), self.options)

    def child(self, name: str) -> Location:
        return Location(self.fs, f"{self.path.rstrip('/')}/{name}", self.options)

    def sibling(self, name: str) -> Location:
        return self.parent.child(name)

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def zarr_store(self, read_only: bool = False) -> Any:
        """A zarr store rooted here (local files: ``LocalStore``; else fsspec's)."""
        import zarr.storage

        if self.is_local:
            return zarr.storage.LocalStore(self.path, read_only=read_only)
        return zarr.storage.FsspecStore.from_url(self.url, storage_options=self.options or None,
                                                 read_only=read_only)

    def __str__(self) -> str:
        return self.url


def _protocols(fs: Any) -> tuple[str, ...]:
    p = fs.protocol
    return (p,) if isinstance(p, str) else tuple(p)


def locate(path: Any, storage_options: dict | None = None) -> Location:
    """A local path or fsspec URL, with its storage options, as a :class:`Location`.

    Parameters
    ----------
    path : str, os.PathLike or Location
    storage_options : dict, optional
        Passed to the filesystem (``endpoint_url``, ``key``, ``anon``, ...).

    Raises
    ------
    InvalidParameterError
        An unknown protocol, or one whose package is not installed (named).
    """
    if isinstance(path, Location):
        return path
    from fsspec.core import url_to_fs

    text = os.fspath(path)
    options = dict(storage_options or {})
    try:
        fs, stripped = url_to_fs(text, **options)
    except ImportError as err:
        raise InvalidParameterError(f"Cannot open {text!r}: {err}") from err
    except ValueError as err:  # fsspec: "Protocol not known: ..."
        raise InvalidParameterError(f"Cannot open {text!r}: {err}") from err
    return Location(fs, stripped, options)


def put_atomic(loc: Location, data: bytes) -> None:
    """Write one file whole or not at all (see the module's notes)."""
    if not loc.is_local:
        loc.fs.pipe_file(loc.path, data)
        return
    os.makedirs(os.path.dirname(loc.path), exist_ok=True)
    tmp = f"{loc.path}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, loc.path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------
# Can the workers see it?


def active_client() -> Any:
    """The ``distributed.Client`` that dask computations would use now, or
    None (no client, or another scheduler chosen with ``dask.config.set``)."""
    import dask

    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return None
    return client if dask.base.get_scheduler() == client.get else None


def _exists_here(fs: Any, path: str) -> bool:
    try:
        return bool(fs.exists(path))
    except Exception:  # no credentials, no network: the worker cannot see it
        return False


def _workers_missing(client: Any, loc: Location) -> list[str]:
    seen = client.run(_exists_here, loc.fs, loc.path)
    return sorted(addr for addr, ok in seen.items() if not ok)


def _not_shared(loc: Location, what: str, missing: list[str], n: int) -> NotSharedError:
    where = "the client's local disk" if loc.is_local else f"{loc.url}"
    return NotSharedError(
        f"{what} {loc.url!r} is not visible to {len(missing)} of the cluster's {n} workers "
        f"(e.g. {missing[0]}): it is on {where}, which they do not share. Use a path on a "
        "filesystem every worker mounts, or an object store URL (s3://..., gs://...) with "
        "storage_options.")


def check_input_shared(loc: Location, what: str = "Input") -> None:
    """On a ``distributed`` cluster, fail unless every worker sees ``loc``."""
    client = active_client()
    if client is None or not client.scheduler_info(n_workers=-1)["workers"]:
        return
    missing = _workers_missing(client, loc)
    if missing:
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        raise _not_shared(loc, what, missing, n)


def check_output_shared(loc: Location, what: str = "Output") -> None:
    """On a ``distributed`` cluster, fail unless every worker would write to
    the place the client will read: a probe file written beside ``loc`` by
    the client must be visible to each worker."""
    client = active_client()
    if client is None or not client.scheduler_info(n_workers=-1)["workers"]:
        return
    probe = loc.sibling(f".{loc.name}.probe-{uuid.uuid4().hex}")
    put_atomic(probe, b"dkmeans")
    try:
        missing = _workers_missing(client, probe)
    finally:
        probe.fs.rm_file(probe.path)
    if missing:
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        raise _not_shared(loc, what, missing, n)


# --------------------------------------------------------------------------
# Zarr arrays written chunk by chunk by the workers


def _fresh(loc: Location) -> Location:
    """``loc`` with the filesystem's listing cache dropped: the workers and
    zarr wrote through other filesystem objects, which this one's cached
    listings (s3fs keeps them) know nothing of."""
    loc.fs.invalidate_cache()
    return loc


def _remove(loc: Location) -> None:
    if _fresh(loc).fs.exists(loc.path):
        loc.fs.rm(loc.path, recursive=True)


def _stale_stages(loc: Location) -> list[str]:
    prefix = f".{loc.name}.tmp-"
    _fresh(loc)
    try:
        names = loc.fs.ls(loc.parent.path, detail=False)
    except FileNotFoundError:
        return []
    return [p for p in names if p.rstrip("/").rsplit("/", 1)[-1].startswith(prefix)]


def _chunk_files(loc: Location) -> set[str]:
    root = _fresh(loc).child("c")
    if not root.exists():
        return set()
    base = root.path.rstrip("/") + "/"
    return {p[len(base):] for p in loc.fs.find(root.path)}


def write_zarr_atomic(loc: Location, create: Callable[[Any], Any],
                      write: Callable[[Any], Sequence[Any]], n_chunks: int) -> Location:
    """Write a Zarr array chunk by chunk into a staging folder, check every
    chunk is there, then swap it in at ``loc`` (see the module's notes).

    Parameters
    ----------
    loc : Location
        Where the array ends up.
    create : callable
        ``create(store)`` makes the (empty) array in a zarr store and returns it.
    write : callable
        ``write(array)`` writes every chunk (on the workers) and returns once
        all have finished.
    n_chunks : int
        How many chunk files the array must have; one missing is an error.
    """
    check_output_shared(loc)
    for stale in _stale_stages(loc):  # left by a killed write
        loc.fs.rm(stale, recursive=True)
    stage = loc.sibling(f".{loc.name}.tmp-{uuid.uuid4().hex}")
    try:
        write(create(stage.zarr_store()))
        found = _chunk_files(stage)
        expected = {str(i) for i in range(n_chunks)}
        if found != expected:
            missing = sorted(expected - found, key=int)
            raise InvalidInputError(
                f"Writing {loc.url!r}: {len(missing)} of {n_chunks} chunks are missing after "
                f"the write (first: c/{missing[0]}); the workers may be writing somewhere "
                "else. Nothing was replaced.")
        _swap_in(stage, loc)
    except BaseException:
        _remove(stage)
        raise
    return loc


def _swap_in(stage: Location, loc: Location) -> None:
    fs = loc.fs
    if loc.is_local:
        old = None
        if loc.exists():
            old = loc.sibling(f".{loc.name}.old-{uuid.uuid4().hex}")
            os.rename(loc.path, old.path)
        os.rename(stage.path, loc.path)
        if old is not None:
            _remove(old)
        return
    meta = _fresh(loc).child("zarr.json")
    if meta.exists():
        fs.rm_file(meta.path)  # the old array disappears whole before any chunk changes
    new = sorted(_chunk_files(stage))
    src = [stage.child(f"c/{c}").path for c in new]
    dst = [loc.child(f"c/{c}").path for c in new]
    if src:
        fs.copy(src, dst)
    stale = _chunk_files(loc) - set(new)
    if stale:
        fs.rm([loc.child(f"c/{c}").path for c in stale])
    fs.copy(stage.child("zarr.json").path, meta.path)  # visible from here on
    _remove(stage)


def write_labels(labels: Any, loc: Location) -> Location:
    """Store lazy labels as a Zarr array, chunk by chunk on the workers,
    atomically (:func:`dkmeans.storage.write_zarr_atomic`).

    Parameters
    ----------
    labels : dask.array.Array of shape (n,), int32
    loc : Location
    """
    import zarr
    from dask.delayed import delayed

    from dkmeans.runner import compute_all

    sizes = labels.chunks[0]
    if len(set(sizes[:-1])) > 1 or sizes[-1] > sizes[0]:  # Zarr chunks are regular
        labels = labels.rechunk(max(sizes))
        sizes = labels.chunks[0]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def create(store: Any) -> Any:
        return zarr.create_array(store, shape=labels.shape, chunks=(sizes[0],),
                                 dtype=labels.dtype, fill_value=-1,
                                 config={"write_empty_chunks": True})

    def write(z: Any) -> None:
        compute_all([delayed(_write_block, pure=False)(z, int(start), block)
                     for start, block in zip(starts, labels.to_delayed(), strict=True)])

    return write_zarr_atomic(loc, create, write, len(sizes))


def _write_block(z: Any, start: int, block: np.ndarray) -> None:
    z[start : start + len(block)] = block


def read_npy_header(loc: Location) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a ``.npy`` file (C order only)."""
    from numpy.lib import format as npy

    with loc.fs.open(loc.path, "rb") as f:
        try:
            version = npy.read_magic(f)
            read = (npy.read_array_header_1_0 if version == (1, 0)
                    else npy.read_array_header_2_0)
            shape, fortran, dtype = read(f)
        except ValueError as err:
            raise InvalidInputError(f"{loc.url!r} is not a plain .npy array: {err}") from err
        if fortran or dtype.hasobject:
            raise InvalidInputError(f"{loc.url!r} is not a plain .npy array: dkmeans reads "
                                    "C-ordered numeric .npy files.")
        return tuple(shape), dtype, f.tell()


def read_npy_rows(loc: Location, offset: int, dtype: np.dtype, n_features: int,
                  start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a C-ordered ``.npy`` file (a ranged read)."""
    row = n_features * dtype.itemsize
    with loc.fs.open(loc.path, "rb") as f:
        f.seek(offset + start * row)
        buf = f.read((stop - start) * row)
    return np.frombuffer(buf, dtype=dtype).reshape(stop - start, n_features).copy()
