"""Where data and results live: local paths and fsspec URLs, written atomically.

Every path dkmeans reads or writes goes through :func:`locate`, which turns a
local path (made absolute on the client, so workers with another working
directory see the same file) or an fsspec URL (``s3://``, ``gs://``,
``abfs://``, ``memory://``, ``file://``, ...) plus ``storage_options`` into a
:class:`Location`: the filesystem object and the path on it. A Location
pickles with its storage options (a task carries any credentials given in
them; none given, workers use their own); its ``repr`` never shows them.

One file is written atomically on every filesystem (:func:`put_atomic`): a
local file is written beside its target and renamed over it; an object is
one PUT, which a reader sees whole or not at all. Model directories build
on it (:mod:`dkmeans.estimators.modelfile`); labels written by the workers are
swapped in whole (:mod:`dkmeans.data.outputs`).
"""

from __future__ import annotations

import os
import uuid
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
    # never printed: storage options may hold credentials
    options: dict = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    @property
    def is_local(self) -> bool:
        return "file" in protocols(self.fs)

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


def protocols(fs: Any) -> tuple[str, ...]:
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
    if text.startswith(("s3://", "s3a://")):
        options = with_s3_retries(options)
    try:
        fs, stripped = url_to_fs(text, **options)
    except ImportError as err:
        raise InvalidParameterError(f"Cannot open {text!r}: {err}") from err
    except ValueError as err:  # fsspec: "Protocol not known: ..."
        raise InvalidParameterError(f"Cannot open {text!r}: {err}") from err
    return Location(fs, stripped, options)


#: botocore's retries for S3 unless the storage options set their own: its
#: "standard" mode (exponential backoff with jitter, on throttling, 5xx and
#: dropped connections) with more attempts than its default 3, so a store
#: that sheds load (503 SlowDown) slows a job down rather than failing it.
S3_RETRIES = {"max_attempts": 10, "mode": "standard"}


def with_s3_retries(options: dict) -> dict:
    """``options`` with :data:`S3_RETRIES` unless they say how to retry."""
    config = dict(options.get("config_kwargs") or {})
    if "retries" in config:
        return options
    return {**options, "config_kwargs": {**config, "retries": dict(S3_RETRIES)}}


def put_atomic(loc: Location, data: bytes, mode: int | None = None) -> None:
    """Write one file whole or not at all (see the module's notes).

    ``mode``: the permission bits of a new local file (a replaced model's,
    so a private model stays private); by default the process's umask decides.
    """
    if not loc.is_local:
        loc.fs.pipe_file(loc.path, data)
        return
    os.makedirs(os.path.dirname(loc.path), exist_ok=True)
    tmp = f"{loc.path}.tmp-{uuid.uuid4().hex}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600 if mode is not None else 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), mode)
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


#: Storage option names that hold credentials (fsspec's S3, GCS, Azure, HTTP)
SECRET_OPTIONS = frozenset({"key", "secret", "token", "password", "session_token",
                            "account_key", "sas_token", "client_secret", "connection_string",
                            "credentials"})


def warn_if_secrets_in_clear(loc: Location, client: Any) -> None:
    """Warn when ``loc``'s credentials would ride in tasks over plain TCP to
    a scheduler off this machine."""
    from urllib.parse import urlsplit

    address = getattr(getattr(client, "scheduler", None), "address", "") or ""
    if not (SECRET_OPTIONS & set(loc.options)) or not address.startswith("tcp://"):
        return
    host = urlsplit(address).hostname or ""
    if host == "localhost" or host.startswith("127.") or host == "::1":
        return
    import warnings

    warnings.warn(f"Storage credentials for {loc.url} travel in the tasks over plain tcp:// "
                  f"to {address}: use a tls:// scheduler, or leave the credentials out so "
                  "the workers use their own.", UserWarning, stacklevel=3)


def check_input_shared(loc: Location, what: str = "Input") -> None:
    """On a ``distributed`` cluster, fail unless every worker sees ``loc``."""
    client = active_client()
    if client is None or not client.scheduler_info(n_workers=-1)["workers"]:
        return
    warn_if_secrets_in_clear(loc, client)
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
    warn_if_secrets_in_clear(loc, client)
    probe = loc.sibling(f".{loc.name}.probe-{uuid.uuid4().hex}")
    put_atomic(probe, b"dkmeans")
    try:
        missing = _workers_missing(client, probe)
    finally:
        probe.fs.rm_file(probe.path)
    if missing:
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        raise _not_shared(loc, what, missing, n)


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
