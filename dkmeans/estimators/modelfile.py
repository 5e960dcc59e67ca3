"""The model directory: JSON metadata and ``.npy`` arrays, without pickle.

Layout (format version 2), at a local path or any fsspec URL::

    MODEL_DIR/
      model.json                       format, version, estimator, state
                                       ("complete" or "checkpoint"), input
                                       fingerprint, parameters, fitted values,
                                       and the arrays: file name and sha256
      cluster_centers-<sha12>.npy      (n_clusters, n_features), X's dtype
      ...                              feature scaling, mini-batch counts, init

(JSON floats round-trip exactly: Python writes the shortest repr.)

A save writes each array under a name derived from its content, checks
that each is there whole, then writes ``model.json`` in one atomic step
(:func:`dkmeans.data.storage.put_atomic`: a rename locally, one PUT on an
object store) and only then removes the arrays the old ``model.json``
named. So a reader, and a job killed at any moment, sees the previous model
or the new one, whole, on any filesystem. Loading reads with
``allow_pickle=False`` and checks every array against its sha256.
Format version 1 (arrays named ``NAME.npy``, no checksums) is still read.

This module knows nothing of the estimators: they turn themselves into
(parameters, fitted values, arrays) and back; :func:`dkmeans.load` picks
the class.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import stat
import warnings
from typing import Any

import numpy as np

from dkmeans.data.leases import is_lock_name, lease
from dkmeans.data.storage import Location, locate, put_atomic
from dkmeans.errors import (
    DKMeansError,
    InputNotFoundError,
    InvalidInputError,
    OutputExistsError,
    WriteConflictError,
)

FORMAT = "dkmeans-model"
#: Version of the model directory layout this dkmeans writes; it reads 1 too.
FORMAT_VERSION = 2
META = "model.json"
#: Names that look like a file's, not a folder's: a model written there warns
FILE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".json", ".npy", ".npz", ".bin", ".model")
#: The estimators a model directory may hold.
ESTIMATORS = ("KMeans", "MiniBatchKMeans", "GaussianMixture")
#: The largest ``model.json`` read: metadata of a few thousand centers' worth
#: of history is kilobytes; anything near this is not one of ours.
MAX_META_BYTES = 64 * 2**20

#: The names the writer gives: arrays by their content, and the temporaries
#: of a write killed before its rename.
_ARRAY_NAME = re.compile(r"(?P<name>[a-z_]+)-(?P<sha>[0-9a-f]{12})\.npy")
_TEMP_NAME = re.compile(r"(model\.json|[a-z_]+-[0-9a-f]{12}\.npy)\.tmp-[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def v1_array_names(meta: dict) -> list[str]:
    """The arrays a format-1 directory holds, from its parameters."""
    params = meta["params"]
    names = ["cluster_centers"]
    if params.get("missing") == "impute":
        names.append("feature_fill")
    if params.get("scale"):
        names += ["feature_mean", "feature_scale"]
    if isinstance(params.get("init"), dict) and "array" in params["init"]:
        names.append("init")
    return names


def _named_files(meta: dict | None) -> set[str]:
    """The array files a model's metadata names."""
    if meta is None:
        return set()
    if meta.get("format_version", 1) >= 2:
        return {e["file"] for e in meta.get("arrays", {}).values()
                if isinstance(e, dict) and isinstance(e.get("file"), str)}
    return {f"{name}.npy" for name in v1_array_names(meta)}


def model_target(loc: Location) -> dict | None:
    """Check that a model may be written at ``loc``: nothing there, an empty
    folder, or a dkmeans model directory (with leftovers of its own killed
    writes). Returns the metadata of the model or checkpoint there, if any.

    Raises
    ------
    OutputExistsError
        ``loc`` is a file, or a folder holding anything else; nothing is
        touched.
    """
    loc.fs.invalidate_cache()
    if not loc.exists():
        return None
    if not loc.fs.isdir(loc.path):
        raise OutputExistsError(f"{loc.url!r} is a file, not a model directory; nothing was "
                                "written. Choose another path for the model.")
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in loc.fs.ls(loc.path, detail=False)]
    meta = None
    if META in names:
        try:
            meta = read_meta(loc)
        except DKMeansError as err:
            raise OutputExistsError(
                f"{loc.url!r} holds a {META} that is not a readable dkmeans model ({err}); "
                "nothing was written. Choose another path for the model.") from err
    named = _named_files(meta)
    foreign = sorted(n for n in names if n != META and n not in named
                     and not _ARRAY_NAME.fullmatch(n) and not _TEMP_NAME.fullmatch(n)
                     and not is_lock_name(n))
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more"
                                           if len(foreign) > 3 else "")
        raise OutputExistsError(
            f"{loc.url!r} holds files that are not a dkmeans model's ({listed}): a model "
            "directory must be absent, empty or a dkmeans model. Nothing was written; "
            "choose another path for the model.")
    return meta


def _local_mode(loc: Location) -> int | None:
    """The permission bits of a local file, so a private model stays private."""
    if not loc.is_local:
        return None
    try:
        return stat.S_IMODE(os.stat(loc.path).st_mode)
    except FileNotFoundError:
        return None


def write_model_dir(path: Any, meta: dict, arrays: dict[str, np.ndarray],
                    storage_options: dict | None = None, overwrite: bool = False,
                    ) -> Location:
    """Write ``meta`` (plus an ``arrays`` index) and the arrays at ``path``.

    Under the target's lease (:mod:`dkmeans.data.leases`), after
    :func:`model_target` has accepted what is there. The arrays of the model
    it replaces, and only those, are removed once the new ``model.json`` is
    in place and read back as this writer's.

    Parameters
    ----------
    path : str, os.PathLike, URL or Location
    meta : dict
        JSON-serialisable metadata; ``format`` and ``format_version`` are set here.
    arrays : dict of str to ndarray
    storage_options : dict, optional
    overwrite : bool, default False
        Replace a model or checkpoint already at ``path``; without it, one
        there is an error.

    Returns
    -------
    Location

    Raises
    ------
    OutputExistsError
        ``path`` holds something else, or a model and ``overwrite`` is False.
    WriteConflictError
        Another writer held the directory too long, or took it over.
    """
    loc = locate(path, storage_options)
    if posixpath.splitext(loc.name)[1].lower() in FILE_SUFFIXES:
        warnings.warn(f"A model is a folder (model.json and .npy files): {loc.url!r} is "
                      "written as one, though its name looks like a file's.", UserWarning,
                      stacklevel=3)
    with lease(loc, "a model directory") as held:
        previous = model_target(loc)
        if previous is not None and not overwrite:
            raise OutputExistsError(
                f"{loc.url!r} already holds a {previous.get('state', 'complete')} "
                f"{previous.get('estimator')} model; pass overwrite=True (on the command "
                "line --force) to replace it.")
        mode = _local_mode(loc.child(META))
        index, blobs = {}, {}
        for name, arr in arrays.items():
            data = _npy_bytes(arr)
            digest = hashlib.sha256(data).hexdigest()
            index[name] = {"file": f"{name}-{digest[:12]}.npy", "sha256": digest}
            blobs[index[name]["file"]] = data
        for file, data in blobs.items():
            put_atomic(loc.child(file), data, mode)
        loc.fs.invalidate_cache()
        for file, data in blobs.items():  # read back whole: small, and the only proof
            if loc.child(file).read_bytes() != data:
                raise InvalidInputError(f"Writing {loc.child(file).url!r}: what is stored "
                                        "is not what was written. The previous model is "
                                        "kept.")
        text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
                           "arrays": index}, indent=2).encode()
        held.check()
        put_atomic(loc.child(META), text, mode)
        loc.fs.invalidate_cache()
        if loc.child(META).read_bytes() != text:
            raise WriteConflictError(f"{loc.child(META).url!r} changed under this write: "
                                     "another writer's model stands there.")
        held.check()
        for file in _named_files(previous) - set(blobs):
            if loc.child(file).exists():
                loc.fs.rm_file(loc.child(file).path)
    return loc


def _read_regular(loc: Location, cap: int, what: str) -> bytes:
    """The bytes of a regular file (never a link, device or pipe) of at most
    ``cap`` bytes."""
    if loc.is_local:
        try:
            fd = os.open(loc.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise
        except OSError as err:  # ELOOP: a symbolic link
            raise InvalidInputError(f"{loc.url!r} is not a regular file ({err.strerror}); "
                                    f"refusing to read it as {what}.") from err
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InvalidInputError(f"{loc.url!r} is not a regular file; refusing to "
                                        f"read it as {what}.")
            if info.st_size > cap:
                raise InvalidInputError(f"{loc.url!r} has {info.st_size:,} bytes, more than "
                                        f"{what} can hold ({cap:,}); refusing to read it.")
            return f.read(cap + 1)
    info = loc.fs.info(loc.path)
    if info.get("type") != "file":
        raise InvalidInputError(f"{loc.url!r} is not a file; refusing to read it as {what}.")
    if (info.get("size") or 0) > cap:
        raise InvalidInputError(f"{loc.url!r} has {info['size']:,} bytes, more than {what} "
                                f"can hold ({cap:,}); refusing to read it.")
    return loc.read_bytes()


def read_meta(path: Any, storage_options: dict | None = None) -> dict:
    """The checked metadata of a model directory or checkpoint."""
    loc = locate(path, storage_options)
    meta_loc = loc.child(META)
    loc.fs.invalidate_cache()  # another process may have written it since we listed
    if not meta_loc.exists():
        if not loc.fs.isdir(loc.path):
            raise InputNotFoundError(f"No model directory at {loc.url!r}.")
        raise InputNotFoundError(f"{loc.url!r} has no {META}: not a dkmeans model directory.")
    try:
        meta = json.loads(_read_regular(meta_loc, MAX_META_BYTES, "model metadata"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{meta_loc.url!r} is not valid JSON (truncated or "
                                f"corrupt?): {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        named = meta.get("format") if isinstance(meta, dict) else None
        raise InvalidInputError(f"{loc.url!r} is not a dkmeans model: its {META} names format "
                                f"{named!r}, expected {FORMAT!r}.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InvalidInputError(
            f"{loc.url!r} has model format version {version!r}; this dkmeans reads versions "
            f"up to {FORMAT_VERSION}. Upgrade dkmeans to load it.")
    if meta.get("estimator") not in ESTIMATORS:
        raise InvalidInputError(f"{loc.url!r} holds a {meta.get('estimator')!r}; this dkmeans "
                                f"loads {' and '.join(ESTIMATORS)} models.")
    return meta


def _max_array_bytes(meta: dict) -> int:
    """The most bytes an array of this model can take: k x d x d float64
    (a mixture's precisions), with room for headers."""
    params, fitted = meta.get("params") or {}, meta.get("fitted") or {}
    k = params.get("n_clusters", params.get("n_components"))
    d = fitted.get("n_features_in")
    if not all(isinstance(v, int) and v >= 1 for v in (k, d)):
        raise InvalidInputError("The model's metadata lacks its number of clusters or "
                                "features, or mistypes them.")
    return 8 * k * max(d * d, 1) + 8 * (k + d) + 4096


def _array_entry(loc: Location, meta: dict, name: str) -> dict:
    """The file and checksum of array ``name``, checked to be of the writer's form."""
    if meta.get("format_version", 1) < 2:
        if not re.fullmatch(r"[a-z_]+", name):
            raise InvalidInputError(f"Bad array name {name!r}.")
        return {"file": f"{name}.npy"}
    entry = (meta.get("arrays") or {}).get(name)
    if entry is None:
        raise InvalidInputError(f"Model directory {loc.url!r} lacks the array {name!r}.")
    file = entry.get("file") if isinstance(entry, dict) else None
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    if not (isinstance(digest, str) and _SHA256.fullmatch(digest)
            and file == f"{name}-{digest[:12]}.npy"):
        raise InvalidInputError(
            f"{loc.child(META).url!r} names array {name!r} as {file!r} with checksum "
            f"{digest!r}; a dkmeans model names it {name}-<first 12 of its sha256>.npy, "
            "with the sha256. Refusing to read it.")
    return entry


def read_array(path: Any, meta: dict, name: str, storage_options: dict | None = None,
               ) -> np.ndarray:
    """One array of a model directory: a regular file inside it, of the
    writer's name and at most the size the model's shape allows, checked
    against its sha256."""
    loc = locate(path, storage_options)
    entry = _array_entry(loc, meta, name)
    file = loc.child(entry["file"])
    try:
        data = _read_regular(file, _max_array_bytes(meta), f"array {name!r}")
    except FileNotFoundError as err:
        raise InvalidInputError(f"Model directory {loc.url!r} lacks {entry['file']}.") from err
    if "sha256" in entry and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise InvalidInputError(f"{file.url!r} does not match its sha256 in {META} "
                                "(truncated or replaced).")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:  # ValueError too for pickled objects
        raise InvalidInputError(f"{file.url!r} is not a plain numeric array (truncated or "
                                f"holding objects): {err}") from err


def fingerprint(X: Any, storage_options: dict | None = None) -> dict:
    """What identifies an input, so a resumed job refuses different data:
    shape, dtype and a hash of its first and last 1,024 rows."""
    from dkmeans.data import as_chunked
    from dkmeans.runner import compute

    arr, _ = as_chunked(X, storage_options=storage_options)
    head, tail = compute(arr[:1024], arr[-1024:])
    digest = hashlib.sha256(np.ascontiguousarray(head).tobytes()
                            + np.ascontiguousarray(tail).tobytes()).hexdigest()
    return {"shape": [int(v) for v in arr.shape], "dtype": str(arr.dtype),
            "sample_sha256": digest}
