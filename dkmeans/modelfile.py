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
(:func:`dkmeans.storage.put_atomic`: a rename locally, one PUT on an
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
from typing import Any

import numpy as np

from dkmeans.errors import InputNotFoundError, InvalidInputError
from dkmeans.storage import Location, locate, put_atomic

FORMAT = "dkmeans-model"
#: Version of the model directory layout this dkmeans writes; it reads 1 too.
FORMAT_VERSION = 2
META = "model.json"
#: The estimators a model directory may hold.
ESTIMATORS = ("KMeans", "MiniBatchKMeans", "GaussianMixture")


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def write_model_dir(path: Any, meta: dict, arrays: dict[str, np.ndarray],
                    storage_options: dict | None = None) -> Location:
    """Write ``meta`` (plus an ``arrays`` index) and the arrays at ``path``.

    Parameters
    ----------
    path : str, os.PathLike, URL or Location
    meta : dict
        JSON-serialisable metadata; ``format`` and ``format_version`` are set here.
    arrays : dict of str to ndarray
    storage_options : dict, optional

    Returns
    -------
    Location
    """
    loc = locate(path, storage_options)
    index, blobs = {}, {}
    for name, arr in arrays.items():
        data = _npy_bytes(arr)
        digest = hashlib.sha256(data).hexdigest()
        index[name] = {"file": f"{name}-{digest[:12]}.npy", "sha256": digest}
        blobs[index[name]["file"]] = data
    for file, data in blobs.items():
        put_atomic(loc.child(file), data)
    for file, data in blobs.items():
        if loc.fs.size(loc.child(file).path) != len(data):
            raise InvalidInputError(f"Writing {loc.child(file).url!r}: the stored size does "
                                    "not match what was written. The previous model is kept.")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "arrays": index}
    put_atomic(loc.child(META), json.dumps(meta, indent=2).encode())
    _remove_unreferenced(loc, set(blobs))
    return loc


def _remove_unreferenced(loc: Location, keep: set[str]) -> None:
    """Arrays of earlier saves, and temporaries of killed ones."""
    loc.fs.invalidate_cache()
    for p in loc.fs.ls(loc.path, detail=False):
        name = p.rstrip("/").rsplit("/", 1)[-1]
        if name != META and name not in keep and (name.endswith(".npy") or ".tmp-" in name):
            loc.fs.rm(p, recursive=True)


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
        meta = json.loads(meta_loc.read_bytes())
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


def read_array(path: Any, meta: dict, name: str, storage_options: dict | None = None,
               ) -> np.ndarray:
    """One array of a model directory, checked against its sha256."""
    loc = locate(path, storage_options)
    entry = meta.get("arrays", {}).get(name) if meta.get("format_version", 1) >= 2 \
        else {"file": f"{name}.npy"}
    if entry is None:
        raise InvalidInputError(f"Model directory {loc.url!r} lacks the array {name!r}.")
    file = loc.child(entry["file"])
    try:
        data = file.read_bytes()
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
